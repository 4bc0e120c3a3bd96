"""GPT.sample (task (e)): the tempered distribution it draws from, the seed, cropping to block_size, errors."""

import math

import pytest
import torch


@pytest.fixture
def model(nb):
    m = nb.GPT(nb.GPTConfig(vocab_size=65, block_size=12, n_block=2, n_head=2, n_embd=32, dropout=0.0))
    for p in m.parameters():  # larger weights than the init: peaked, varied distributions
        torch.nn.init.normal_(p, std=0.3)
    return m.eval()


def greedy(model, idx, n):
    with torch.no_grad():
        for _ in range(n):
            logits = model(idx[:, -model.config.block_size :])
            idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx


def test_each_token_is_drawn_from_the_softmax_of_the_last_logits_over_tau(model, monkeypatch):
    idx = torch.randint(0, 65, (3, 5))
    drawn_from, multinomial = [], torch.multinomial
    monkeypatch.setattr(torch, "multinomial", lambda probs, *a, **k: drawn_from.append(probs) or multinomial(
        probs, *a, **k))
    out = model.sample(idx, 2, temperature=0.7)
    with torch.no_grad():
        first = torch.softmax(model(idx)[:, -1] / 0.7, -1)
        second = torch.softmax(model(out[:, :-1])[:, -1] / 0.7, -1)
    assert torch.allclose(drawn_from[0], first, rtol=0, atol=1e-6)
    assert torch.allclose(drawn_from[1], second, rtol=0, atol=1e-6)  # conditioned on the first draw


def test_tiny_temperature_is_greedy_argmax(model):
    idx = torch.randint(0, 65, (3, 4))
    out = model.sample(idx, 20, temperature=1e-4)
    assert torch.equal(out, greedy(model, idx, 20))
    assert out.dtype == torch.int64 and out.shape == (3, 24)


def test_the_same_seed_gives_the_same_text_another_seed_another(model):
    idx = torch.zeros(2, 1, dtype=torch.long)
    torch.manual_seed(1)
    a = model.sample(idx, 30)
    torch.manual_seed(1)
    b = model.sample(idx, 30)
    torch.manual_seed(2)
    c = model.sample(idx, 30)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_temperature_flattens_or_sharpens_the_distribution(model):
    idx = torch.zeros(400, 1, dtype=torch.long)
    distinct = []
    for tau in (0.05, 1.0, 5.0):
        torch.manual_seed(0)
        distinct.append(len(set(model.sample(idx, 1, temperature=tau)[:, 1].tolist())))
    assert distinct[0] < distinct[1] < distinct[2]


def test_long_prompts_are_cropped_to_block_size(model):
    idx = torch.randint(0, 65, (1, 40))
    out = model.sample(idx, 5, temperature=1e-4)
    assert torch.equal(out[:, :40], idx)
    assert torch.equal(out, greedy(model, idx, 5))


def test_sampling_builds_no_graph_and_keeps_the_mode(model):
    model.train()
    out = model.sample(torch.zeros(1, 1, dtype=torch.long), 3)
    assert model.training and not out.requires_grad


def test_zero_new_tokens_returns_the_prompt(model):
    idx = torch.randint(0, 65, (2, 5))
    assert torch.equal(model.sample(idx, 0), idx)


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.inf, math.nan])
def test_a_bad_temperature_is_a_clear_error(model, temperature):
    with pytest.raises(ValueError, match=rf"temperature must be positive and finite, got {temperature}"):
        model.sample(torch.zeros(2, 1, dtype=torch.long), 3, temperature=temperature)


def test_unknown_prompt_characters_are_rejected_before_sampling(vocab):
    with pytest.raises(ValueError, match="'€'"):
        vocab.encode("ROMEO€")
