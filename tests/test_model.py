"""The graded classes, loaded from the notebook's `model` cells, checked against references and invariants."""

import math

import pytest
import torch
import torch.nn.functional as F
from reference import fused_attention

import gpt_helpers as H


@pytest.mark.parametrize("B, T, n_head, n_embd", [(1, 1, 1, 8), (2, 7, 2, 16), (3, 16, 4, 32), (2, 33, 6, 48)])
def test_attention_equals_a_float64_reference(nb, B, T, n_head, n_embd):
    cfg = nb.GPTConfig(block_size=40, vocab_size=10, n_layer=1, n_head=n_head, n_embd=n_embd)
    attn = nb.CausalSelfAttention(cfg).double().eval()
    for p in attn.parameters():
        torch.nn.init.normal_(p)  # not the small init: make every term matter
    x = torch.randn(B, T, n_embd, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(attn(x), fused_attention(attn, x), rtol=0, atol=1e-12)


def test_attention_rejects_width_not_divisible_by_heads(nb):
    with pytest.raises(ValueError, match="n_embd=10 must be divisible by n_head=3"):
        nb.CausalSelfAttention(nb.GPTConfig(block_size=4, vocab_size=5, n_layer=1, n_head=3, n_embd=10))


def _logits_after_editing_the_future(model, t):
    idx = torch.randint(0, model.config.vocab_size, (2, model.config.block_size))
    edited = idx.clone()
    edited[:, t + 1 :] = torch.randint(0, model.config.vocab_size, edited[:, t + 1 :].shape)
    with torch.no_grad():
        return model(idx)[0][:, : t + 1], model(edited)[0][:, : t + 1]


def test_future_tokens_do_not_change_past_logits(nb, tiny_config):
    model = nb.GPT(tiny_config).eval()
    for t in (0, 5, tiny_config.block_size - 2):
        before, after = _logits_after_editing_the_future(model, t)
        assert torch.equal(before, after)  # bit for bit


def test_without_the_mask_the_future_leaks_into_past_logits(nb, tiny_config):
    model = nb.GPT(tiny_config).eval()
    for block in model.transformer.h:
        block.attn.mask.fill_(True)
    before, after = _logits_after_editing_the_future(model, 5)
    assert not torch.allclose(before, after)


def test_forward_shapes_and_loss(nb, tiny_config):
    model = nb.GPT(tiny_config)
    idx = torch.randint(0, 65, (3, 16))
    logits, loss = model(idx)
    assert logits.shape == (3, 16, 65) and loss is None
    logits, loss = model(idx, idx)
    assert loss.shape == () and torch.isclose(loss, F.cross_entropy(logits.reshape(-1, 65), idx.reshape(-1)))
    logits, _ = model(idx[:, :5])  # shorter than block_size is fine
    assert logits.shape == (3, 5, 65)


def test_sequence_longer_than_block_size_is_a_clear_error(nb, tiny_config):
    with pytest.raises(ValueError, match="longer than block_size=16"):
        nb.GPT(tiny_config)(torch.zeros(1, 17, dtype=torch.long))


def test_initial_loss_is_close_to_uniform_guessing(nb):
    cfg = nb.GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128)
    idx, targets = torch.randint(0, 65, (2, 8, 64))  # independent targets: nothing to learn from idx
    _, loss = nb.GPT(cfg)(idx, targets)
    assert abs(loss.item() - math.log(65)) < 0.1


def test_a_small_model_overfits_one_batch(nb, tiny_config):
    model = nb.GPT(tiny_config)
    x, y = torch.randint(0, 65, (2, 2, 16))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def test_embedding_and_output_weights_are_tied_and_counted_once(nb, tiny_config):
    model = nb.GPT(tiny_config)
    assert model.lm_head.weight is model.transformer.wte.weight
    assert model.lm_head.bias is None
    C, V, T, L = 32, 65, 16, 2
    per_block = 2 * 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C)
    assert model.n_params() == V * C + T * C + L * per_block + 2 * C


def test_parameter_names_follow_gpt2(nb, tiny_config):
    names = set(nb.GPT(tiny_config).state_dict())
    for name in ["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
                 "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_proj.bias",
                 "transformer.h.1.mlp.c_fc.weight", "transformer.h.1.mlp.c_proj.weight", "transformer.ln_f.bias",
                 "lm_head.weight"]:
        assert name in names
    assert not any(n.endswith("attn.mask") for n in names)  # a derived buffer, not a weight


def test_residual_projections_get_the_scaled_gpt2_init(nb):
    cfg = nb.GPTConfig(block_size=8, vocab_size=65, n_layer=8, n_head=4, n_embd=256)
    model = nb.GPT(cfg)
    std = model.transformer.h[3].mlp.c_proj.weight.std().item()
    assert abs(std - 0.02 / math.sqrt(16)) < 0.0005
    assert abs(model.transformer.h[3].mlp.c_fc.weight.std().item() - 0.02) < 0.001


def test_model_cells_touch_neither_data_nor_training():
    ns = H.notebook_cells("model", name="model_only")
    for name in ["GPTConfig", "CausalSelfAttention", "MLP", "Block", "GPT"]:
        assert hasattr(ns, name)
    assert not hasattr(ns, "text") and not hasattr(ns, "train")
