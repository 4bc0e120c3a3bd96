"""GPT.sample: temperature, reproducibility, cropping to block_size, errors."""

import pytest
import torch


@pytest.fixture
def model(nb):
    cfg = nb.GPTConfig(block_size=12, vocab_size=65, n_layer=2, n_head=2, n_embd=32)
    m = nb.GPT(cfg)
    for p in m.parameters():  # larger weights than the init: peaked, varied distributions
        torch.nn.init.normal_(p, std=0.3)
    return m


def greedy(model, idx, n):
    with torch.no_grad():
        for _ in range(n):
            logits, _ = model(idx[:, -model.config.block_size :])
            idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx


def test_tiny_temperature_is_greedy_argmax(model):
    idx = torch.randint(0, 65, (3, 4))
    out = model.sample(idx, 20, temperature=1e-4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, greedy(model.eval(), idx, 20))
    assert out.dtype == torch.int64 and out.shape == (3, 24)


def test_same_seed_same_text_other_seed_other_text(model):
    idx = torch.zeros(2, 1, dtype=torch.long)
    a = model.sample(idx, 30, generator=torch.Generator().manual_seed(1))
    b = model.sample(idx, 30, generator=torch.Generator().manual_seed(1))
    c = model.sample(idx, 30, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_every_row_is_drawn_at_its_own_temperature(model, monkeypatch):
    idx = torch.randint(0, 65, (1, 5)).expand(4, -1)
    taus = torch.tensor([1.5, 0.5, 1.0, 0.1])
    drawn_from, multinomial = [], torch.multinomial
    monkeypatch.setattr(torch, "multinomial", lambda probs, *a, **k: drawn_from.append(probs) or multinomial(
        probs, *a, **k))
    model.sample(idx, 1, temperature=taus)
    with torch.no_grad():
        logits = model.eval()(idx)[0][:, -1]
    for row, tau in enumerate(taus):
        assert torch.allclose(drawn_from[0][row], torch.softmax(logits[row] / tau, -1), rtol=0, atol=1e-6)


def test_one_temperature_per_row(model):
    idx = torch.randint(0, 65, (1, 3)).expand(3, -1)
    taus = torch.tensor([1.5, 1e-4, 1.0])
    out = model.sample(idx, 25, temperature=taus, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[1], greedy(model.eval(), idx[:1], 25)[0])  # the tiny-tau row is greedy
    same = model.sample(idx, 25, temperature=torch.tensor([0.7] * 3), generator=torch.Generator().manual_seed(3))
    assert torch.equal(same, model.sample(idx, 25, temperature=0.7, generator=torch.Generator().manual_seed(3)))


def test_temperature_flattens_or_sharpens_the_distribution(model):
    idx = torch.zeros(400, 1, dtype=torch.long)
    distinct = [len(set(model.sample(idx, 1, temperature=t, generator=torch.Generator().manual_seed(0))[:, 1].tolist()))
                for t in (0.05, 1.0, 5.0)]
    assert distinct[0] < distinct[1] < distinct[2]


def test_long_prompts_are_cropped_to_block_size(model):
    idx = torch.randint(0, 65, (1, 40))
    out = model.sample(idx, 5, temperature=1e-4)
    assert torch.equal(out[:, :40], idx)
    assert torch.equal(out, greedy(model.eval(), idx, 5))


def test_sample_restores_mode_and_builds_no_graph(model):
    model.train()
    out = model.sample(torch.zeros(1, 1, dtype=torch.long), 3)
    assert model.training and not out.requires_grad
    model.eval()
    model.sample(torch.zeros(1, 1, dtype=torch.long), 3)
    assert not model.training


def test_zero_new_tokens_returns_the_prompt(model):
    idx = torch.randint(0, 65, (2, 5))
    assert torch.equal(model.sample(idx, 0), idx)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("inf"), float("nan"), torch.tensor([1.0, 0.0]),
                                         torch.tensor([1.0, 1.0, 1.0])])
def test_a_bad_temperature_is_a_clear_error(model, temperature):
    with pytest.raises(ValueError, match=r"temperature must be finite and > 0, one value or one per row of idx \(2\)"):
        model.sample(torch.zeros(2, 1, dtype=torch.long), 3, temperature=temperature)


def test_unknown_prompt_characters_are_rejected_before_sampling(vocab):
    with pytest.raises(ValueError, match="'€'"):
        vocab.encode("ROMEO€")


def test_sampled_ids_can_train_the_model_afterwards(model):
    out = model.sample(torch.zeros(2, 1, dtype=torch.long), 8)
    assert not out.is_inference()
    model.train()
    _, loss = model(out[:, :-1], out[:, 1:])
    loss.backward()  # would fail on an inference tensor saved for backward
    assert model.lm_head.weight.grad is not None
