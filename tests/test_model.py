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


# ---- (c) and (d): MLP, Block and GPT.forward against a float64 reference written from the equations

def ref_linear(x, layer):
    return x @ layer.weight.T + (layer.bias if layer.bias is not None else 0)


def ref_layernorm(x, ln, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased variance, as LayerNorm
    return (x - mean) / torch.sqrt(var + eps) * ln.weight + ln.bias


def ref_gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))  # the exact GELU, x * Phi(x)


def ref_mlp(mlp, x):
    """MLP(x) = W2 GELU(W1 x + b1) + b2."""
    return ref_linear(ref_gelu(ref_linear(x, mlp.c_fc)), mlp.c_proj)


def ref_attention(attn, x):
    """softmax(Q K^T / sqrt(d_h) + M) V per head, heads concatenated, then the output projection."""
    B, T, C = x.shape
    d = C // attn.n_head
    q, k, v = ref_linear(x, attn.c_attn).split(C, dim=2)
    heads = []
    for h in range(attn.n_head):
        qh, kh, vh = (t[..., h * d : (h + 1) * d] for t in (q, k, v))
        scores = qh @ kh.transpose(1, 2) / math.sqrt(d)
        scores = scores + torch.triu(torch.full((T, T), -math.inf, dtype=x.dtype), diagonal=1)
        weights = torch.exp(scores - scores.amax(-1, keepdim=True))
        heads.append((weights / weights.sum(-1, keepdim=True)) @ vh)
    return ref_linear(torch.cat(heads, dim=-1), attn.c_proj)


def ref_block(block, x):
    """Pre-LayerNorm block: x + Attn(LN1(x)), then + MLP(LN2(.))."""
    x = x + ref_attention(block.attn, ref_layernorm(x, block.ln_1))
    return x + ref_mlp(block.mlp, ref_layernorm(x, block.ln_2))


def ref_gpt(model, idx):
    """h0 = W_te[x] + W_pe[0..T-1]; the blocks; z = LN_f(h_L) W_te^T (the head tied to the token embedding)."""
    wte, wpe = model.transformer.wte.weight, model.transformer.wpe.weight
    h = wte[idx] + wpe[: idx.size(1)]
    for block in model.transformer.h:
        h = ref_block(block, h)
    return ref_layernorm(h, model.transformer.ln_f) @ wte.T


@pytest.fixture
def random_gpt(nb):
    """A float64 GPT in eval mode whose every weight is drawn at unit scale, so every term of the equations matters."""
    torch.manual_seed(0)
    model = nb.GPT(nb.GPTConfig(block_size=12, vocab_size=11, n_layer=2, n_head=3, n_embd=24)).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.3 if p.dim() > 1 else 1.0))
    return model


def test_mlp_equals_the_reference(random_gpt):
    mlp = random_gpt.transformer.h[0].mlp
    x = torch.randn(2, 7, 24, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(mlp(x), ref_mlp(mlp, x), rtol=0, atol=1e-12)


def test_block_equals_the_reference(random_gpt):
    block = random_gpt.transformer.h[1]
    x = torch.randn(2, 9, 24, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(block(x), ref_block(block, x), rtol=0, atol=1e-11)


def test_gpt_forward_equals_the_reference_and_its_loss_is_the_mean_cross_entropy(random_gpt):
    idx = torch.randint(0, 11, (3, 12))
    targets = torch.randint(0, 11, (3, 12))
    with torch.no_grad():
        logits, loss = random_gpt(idx, targets)
        expected = ref_gpt(random_gpt, idx)
    assert torch.allclose(logits, expected, rtol=0, atol=1e-10)
    log_probs = expected - torch.logsumexp(expected, dim=-1, keepdim=True)
    nll = -log_probs.gather(-1, targets[..., None]).mean()
    assert torch.allclose(loss, nll, rtol=0, atol=1e-12)


def post_layernorm(model):
    for b in model.transformer.h:
        b.forward = lambda x, b=b: b.ln_2((h := b.ln_1(x + b.attn(x))) + b.mlp(h))


def relu_mlp(model):
    for b in model.transformer.h:
        b.mlp.gelu = torch.nn.ReLU()


def no_mlp_residual(model):
    for b in model.transformer.h:
        b.forward = lambda x, b=b: b.mlp(b.ln_2(x + b.attn(b.ln_1(x))))


def no_attention_residual(model):
    for b in model.transformer.h:
        b.forward = lambda x, b=b: (h := b.attn(b.ln_1(x))) + b.mlp(b.ln_2(h))


def skip_ln_f(model):
    model.transformer.ln_f = torch.nn.Identity()


def untied_head(model):
    model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight))


@pytest.mark.parametrize("mutate", [post_layernorm, relu_mlp, no_mlp_residual, no_attention_residual, skip_ln_f,
                                    untied_head])
def test_the_reference_tells_common_mistakes_apart(random_gpt, mutate):
    """The reference tests above would fail for these mistakes in (c) and (d)."""
    idx = torch.randint(0, 11, (2, 12))
    expected = ref_gpt(random_gpt, idx)  # the equations, on the intact model's weights
    mutate(random_gpt)
    with torch.no_grad():
        assert not torch.allclose(random_gpt(idx)[0], expected, rtol=0, atol=1e-6)


def test_dropout_is_active_in_training_and_off_in_eval(nb):
    cfg = dict(block_size=16, vocab_size=65, n_layer=2, n_head=2, n_embd=32)
    torch.manual_seed(0)
    dropped = nb.GPT(nb.GPTConfig(**cfg, dropout=0.5))
    plain = nb.GPT(nb.GPTConfig(**cfg, dropout=0.0))
    plain.load_state_dict(dropped.state_dict())
    idx = torch.randint(0, 65, (2, 16))
    with torch.no_grad():
        dropped.train()
        a, b = dropped(idx)[0], dropped(idx)[0]
        assert not torch.allclose(a, b)  # a fresh mask at every call
        assert not torch.allclose(a, plain.eval()(idx)[0])
        assert torch.equal(dropped.eval()(idx)[0], plain(idx)[0])  # eval: exactly the model without dropout


def test_attention_dropout_zeroes_weights_and_rescales_the_rest(nb):
    torch.manual_seed(0)
    attn = nb.CausalSelfAttention(nb.GPTConfig(block_size=64, vocab_size=5, n_layer=1, n_head=4, n_embd=32,
                                               dropout=0.25)).train()
    with H.recorded_output(attn.attn_dropout) as seen, torch.no_grad():
        attn(torch.randn(8, 64, 32))
    kept = seen["output"][torch.tril(torch.ones(64, 64, dtype=torch.bool)).expand_as(seen["output"])]
    assert abs((kept == 0).float().mean().item() - 0.25) < 0.02
