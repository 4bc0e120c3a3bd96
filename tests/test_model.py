"""The graded classes, loaded from the notebook's `model` cells: the course template's interface, and the model
checked against references written from the equations and against the mistakes those references catch."""

import inspect
import math
from dataclasses import MISSING, fields

import pytest
import torch
import torch.nn.functional as F
from conftest import notebook_cells
from reference import fused_attention
from torch.overrides import TorchFunctionMode

import gpt_helpers as H

# ---- the template's interface: names, signatures, defaults and given parts


def test_gpt_config_has_the_templates_fields_and_defaults(nb):
    defaults = {f.name: f.default for f in fields(nb.GPTConfig)}
    assert defaults == {"vocab_size": MISSING, "block_size": 256, "n_block": 6, "n_head": 6, "n_embd": 384,
                        "dropout": 0.2, "bias": True}
    assert list(defaults) == ["vocab_size", "block_size", "n_block", "n_head", "n_embd", "dropout", "bias"]


@pytest.mark.parametrize("cls, method, parameters", [
    ("CausalSelfAttention", "__init__", ["self", "config"]),
    ("CausalSelfAttention", "forward", ["self", "x"]),
    ("MLP", "__init__", ["self", "config"]),
    ("MLP", "forward", ["self", "x"]),
    ("Block", "__init__", ["self", "config"]),
    ("Block", "forward", ["self", "x"]),
    ("GPT", "__init__", ["self", "config"]),
    ("GPT", "_init_params", ["self", "module"]),
    ("GPT", "get_num_params", ["self"]),
    ("GPT", "get_optimizer", ["self", "weight_decay", "learning_rate", "betas", "device"]),
    ("GPT", "forward", ["self", "idx"]),
    ("GPT", "sample", ["self", "idx", "max_new_tokens", "temperature"]),
])
def test_methods_have_the_templates_signatures(nb, cls, method, parameters):
    signature = inspect.signature(getattr(getattr(nb, cls), method))
    assert list(signature.parameters) == parameters
    if method == "sample":
        assert signature.parameters["temperature"].default == 1.0


def test_attention_creates_the_templates_modules_in_order_and_nothing_else(nb):
    attn = nb.CausalSelfAttention(nb.GPTConfig(vocab_size=10, block_size=8, n_head=6, n_embd=12))
    assert [name for name, _ in attn.named_children()] == ["qkv_map", "proj", "final_dropout"]
    assert (attn.n_head, attn.n_embd, attn.dropout) == (6, 12, 0.2)
    assert attn.qkv_map.weight.shape == (36, 12) and attn.proj.weight.shape == (12, 12)
    assert list(attn.buffers()) == []  # no mask buffer: the mask is made in forward


def test_a_seeded_attention_layer_has_fixed_weights_from_its_creation_order(nb):
    config = nb.GPTConfig(vocab_size=10, block_size=8, n_block=1, n_head=6, n_embd=12, dropout=0.0, bias=True)
    torch.manual_seed(0)
    attn = nb.CausalSelfAttention(config)
    torch.manual_seed(0)
    qkv_map, proj = torch.nn.Linear(12, 36), torch.nn.Linear(12, 12)  # the template's order, made by hand
    assert torch.equal(attn.qkv_map.weight, qkv_map.weight) and torch.equal(attn.proj.bias, proj.bias)


def test_block_and_gpt_have_the_templates_modules(nb, tiny_config):
    model = nb.GPT(tiny_config)
    assert list(model.transformer.keys()) == ["embed_token", "embed_position", "dropout", "blocks", "layernorm"]
    assert [name for name, _ in model.transformer.blocks[0].named_children()] == [
        "layernorm_1", "attention", "layernorm_2", "mlp"]
    assert len(model.transformer.blocks) == tiny_config.n_block
    assert model.head.bias is None and model.head.weight is model.transformer.embed_token.weight


def test_forward_returns_the_logits_only(nb, tiny_config):
    logits = nb.GPT(tiny_config)(torch.randint(0, 65, (3, 16)))
    assert isinstance(logits, torch.Tensor) and logits.shape == (3, 16, 65)
    assert nb.GPT(tiny_config)(torch.randint(0, 65, (3, 5))).shape == (3, 5, 65)  # shorter than block_size


def test_initialisation_is_the_templates(nb):
    model = nb.GPT(nb.GPTConfig(vocab_size=65, block_size=64, n_block=8, n_head=4, n_embd=256, bias=True))
    for name, p in model.named_parameters():
        if name.endswith("bias") or "layernorm" in name:
            expected = 1.0 if "layernorm" in name and name.endswith("weight") else 0.0
            assert torch.all(p == expected), name
        else:  # every linear and embedding weight N(0, 0.02): no scaled residual projections
            assert abs(p.std().item() - 0.02) < 0.002 and abs(p.mean().item()) < 0.002, name


def test_get_num_params_counts_the_tied_matrix_once(nb, tiny_config):
    model = nb.GPT(tiny_config)
    C, V, T, L = 32, 65, 16, 2
    per_block = 2 * 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C)
    assert model.get_num_params() == V * C + T * C + L * per_block + 2 * C


def test_get_optimizer_is_adamw_with_decay_on_matrices_and_embeddings_only(nb, tiny_config):
    model = nb.GPT(tiny_config)
    opt = model.get_optimizer(0.1, 3e-3, (0.9, 0.99), "cpu")
    assert isinstance(opt, torch.optim.AdamW)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert decay["lr"] == 3e-3 and decay["betas"] == (0.9, 0.99)


def test_a_width_not_divisible_by_the_heads_is_a_clear_error(nb):
    model = nb.GPT(nb.GPTConfig(vocab_size=5, block_size=8, n_block=1, n_head=3, n_embd=10))
    with pytest.raises(ValueError, match="n_embd=10 must be divisible by n_head=3"):
        model(torch.zeros(1, 4, dtype=torch.long))


def test_gpt_config_is_the_given_dataclass_with_no_method_of_ours(nb):
    ours = [name for name, value in vars(nb.GPTConfig).items() if callable(value) and not name.startswith("__")]
    assert ours == [] and "__post_init__" not in vars(nb.GPTConfig)


def test_a_sequence_longer_than_block_size_names_both_lengths(nb, tiny_config):
    with pytest.raises(AssertionError, match="length 17, block size is only 16"):
        nb.GPT(tiny_config)(torch.zeros(1, 17, dtype=torch.long))


def test_model_cells_touch_neither_data_nor_training():
    cells = notebook_cells("model", name="model_only")
    for name in ("GPTConfig", "CausalSelfAttention", "MLP", "Block", "GPT"):
        assert hasattr(cells, name)
    assert not hasattr(cells, "text") and not hasattr(cells, "train")


# ---- (b) attention against a float64 reference; the causal mask


@pytest.mark.parametrize("B, T, n_head, n_embd", [(1, 1, 1, 8), (2, 7, 2, 16), (3, 16, 4, 32), (2, 33, 6, 48)])
def test_attention_equals_a_float64_reference(nb, B, T, n_head, n_embd):
    cfg = nb.GPTConfig(vocab_size=10, block_size=40, n_block=1, n_head=n_head, n_embd=n_embd, dropout=0.0)
    attn = nb.CausalSelfAttention(cfg).double().eval()
    for p in attn.parameters():
        torch.nn.init.normal_(p)  # not the small init: make every term matter
    x = torch.randn(B, T, n_embd, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(attn(x), fused_attention(attn, x), rtol=0, atol=1e-12)


def _logits_after_editing_the_future(model, t):
    idx = torch.randint(0, model.config.vocab_size, (2, model.config.block_size))
    edited = idx.clone()
    edited[:, t + 1 :] = torch.randint(0, model.config.vocab_size, edited[:, t + 1 :].shape)
    with torch.no_grad():
        return model(idx)[:, : t + 1], model(edited)[:, : t + 1]


def test_future_tokens_do_not_change_past_logits(nb, tiny_config):
    model = nb.GPT(tiny_config).eval()
    for t in (0, 5, tiny_config.block_size - 2):
        before, after = _logits_after_editing_the_future(model, t)
        assert torch.equal(before, after)  # bit for bit


def test_without_the_mask_the_future_leaks_into_past_logits(nb, tiny_config):
    model = nb.GPT(tiny_config).eval()
    with H.NoCausalMask():
        before, after = _logits_after_editing_the_future(model, 5)
    assert not torch.allclose(before, after)


class RecordDropout(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.dropout:
            self.calls.append((tuple(args[0].shape), kwargs.get("p"), kwargs.get("training")))
        return func(*args, **kwargs)


def test_attention_weights_get_dropout_at_the_configured_rate_in_training_only(nb):
    attn = nb.CausalSelfAttention(nb.GPTConfig(vocab_size=5, block_size=8, n_head=4, n_embd=32, dropout=0.25))
    for mode, training in ((attn.train, True), (attn.eval, False)):
        mode()
        with RecordDropout() as seen:
            attn(torch.randn(2, 8, 32))
        on_weights = [call for call in seen.calls if len(call[0]) == 4]  # final_dropout sees (B, T, C)
        assert on_weights == [((2, 4, 8, 8), 0.25, training)]  # the (B, n_head, T, T) weights


def test_dropout_is_active_in_training_and_off_in_eval(nb):
    cfg = dict(vocab_size=65, block_size=16, n_block=2, n_head=2, n_embd=32)
    torch.manual_seed(0)
    dropped = nb.GPT(nb.GPTConfig(**cfg, dropout=0.5))
    plain = nb.GPT(nb.GPTConfig(**cfg, dropout=0.0))
    plain.load_state_dict(dropped.state_dict())
    idx = torch.randint(0, 65, (2, 16))
    with torch.no_grad():
        dropped.train()
        assert not torch.allclose(dropped(idx), dropped(idx))  # a fresh mask at every call
        assert torch.equal(dropped.eval()(idx), plain.eval()(idx))  # eval: exactly the model without dropout


def test_initial_loss_is_close_to_uniform_guessing(nb):
    cfg = nb.GPTConfig(vocab_size=65, block_size=64, n_block=4, n_head=4, n_embd=128)
    idx, targets = torch.randint(0, 65, (2, 8, 64))  # independent targets: nothing to learn from idx
    loss = F.cross_entropy(nb.GPT(cfg).eval()(idx).flatten(0, 1), targets.flatten())
    assert abs(loss.item() - math.log(65)) < 0.1


def test_a_small_model_overfits_one_batch(nb, tiny_config):
    model = nb.GPT(tiny_config)
    x, y = torch.randint(0, 65, (2, 2, 16))
    opt = model.get_optimizer(0.0, 3e-3, (0.9, 0.99), "cpu")
    for _ in range(300):
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


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
    """MLP(x) = W2 GELU(W1 x + b1) + b2: the first linear layer widens, the second projects back."""
    wide, narrow = sorted((m for m in mlp.modules() if isinstance(m, torch.nn.Linear)), key=lambda m: m.in_features)
    return ref_linear(ref_gelu(ref_linear(x, wide)), narrow)


def ref_attention(attn, x):
    """softmax(Q K^T / sqrt(d_k) + M) V per head, heads concatenated, then the output projection."""
    B, T, C = x.shape
    d = C // attn.n_head
    q, k, v = ref_linear(x, attn.qkv_map).split(C, dim=2)
    heads = []
    for h in range(attn.n_head):
        qh, kh, vh = (t[..., h * d : (h + 1) * d] for t in (q, k, v))
        scores = qh @ kh.transpose(1, 2) / math.sqrt(d)
        scores = scores + torch.triu(torch.full((T, T), -math.inf, dtype=x.dtype), diagonal=1)
        weights = torch.exp(scores - scores.amax(-1, keepdim=True))
        heads.append((weights / weights.sum(-1, keepdim=True)) @ vh)
    return ref_linear(torch.cat(heads, dim=-1), attn.proj)


def ref_block(block, x):
    """Pre-LayerNorm block: x + Attn(LN1(x)), then + MLP(LN2(.))."""
    x = x + ref_attention(block.attention, ref_layernorm(x, block.layernorm_1))
    return x + ref_mlp(block.mlp, ref_layernorm(x, block.layernorm_2))


def ref_gpt(model, idx):
    """h0 = W_te[x] + W_pe[0..T-1]; the blocks; z = LN(h_L) W_te^T (the head tied to the token embedding)."""
    wte, wpe = model.transformer.embed_token.weight, model.transformer.embed_position.weight
    h = wte[idx] + wpe[: idx.size(1)]
    for block in model.transformer.blocks:
        h = ref_block(block, h)
    return ref_layernorm(h, model.transformer.layernorm) @ wte.T


@pytest.fixture
def random_gpt(nb):
    """A float64 GPT in eval mode whose every weight is drawn at unit scale, so every term of the equations matters."""
    torch.manual_seed(0)
    cfg = nb.GPTConfig(vocab_size=11, block_size=12, n_block=2, n_head=3, n_embd=24, dropout=0.0, bias=True)
    model = nb.GPT(cfg).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.3 if p.dim() > 1 else 1.0))
    return model


def test_mlp_equals_the_reference(random_gpt):
    mlp = random_gpt.transformer.blocks[0].mlp
    x = torch.randn(2, 7, 24, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(mlp(x), ref_mlp(mlp, x), rtol=0, atol=1e-12)


def test_block_equals_the_reference(random_gpt):
    block = random_gpt.transformer.blocks[1]
    x = torch.randn(2, 9, 24, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(block(x), ref_block(block, x), rtol=0, atol=1e-11)


def test_gpt_forward_equals_the_reference(random_gpt):
    idx = torch.randint(0, 11, (3, 12))
    with torch.no_grad():
        assert torch.allclose(random_gpt(idx), ref_gpt(random_gpt, idx), rtol=0, atol=1e-10)


def post_layernorm(model):
    for b in model.transformer.blocks:
        b.forward = lambda x, b=b: b.layernorm_2((h := b.layernorm_1(x + b.attention(x))) + b.mlp(h))


def relu_mlp(model):
    for b in model.transformer.blocks:
        b.mlp.gelu = torch.nn.ReLU()


def no_mlp_residual(model):
    for b in model.transformer.blocks:
        b.forward = lambda x, b=b: b.mlp(b.layernorm_2(x + b.attention(b.layernorm_1(x))))


def no_attention_residual(model):
    for b in model.transformer.blocks:
        b.forward = lambda x, b=b: (h := b.attention(b.layernorm_1(x))) + b.mlp(b.layernorm_2(h))


def skip_final_layernorm(model):
    model.transformer.layernorm = torch.nn.Identity()


def untied_head(model):
    model.head.weight = torch.nn.Parameter(torch.randn_like(model.head.weight))


@pytest.mark.parametrize("mutate", [post_layernorm, relu_mlp, no_mlp_residual, no_attention_residual,
                                    skip_final_layernorm, untied_head])
def test_the_reference_tells_common_mistakes_apart(random_gpt, mutate):
    """The reference tests above would fail for these mistakes in (c) and (d)."""
    idx = torch.randint(0, 11, (2, 12))
    expected = ref_gpt(random_gpt, idx)  # the equations, on the intact model's weights
    mutate(random_gpt)
    with torch.no_grad():
        assert not torch.allclose(random_gpt(idx), expected, rtol=0, atol=1e-6)
