"""Our Muon (gpt_helpers.Muon, float32, matrices of one shape orthogonalised together) against its definition and
torch.optim.Muon, and MuonAdamW: every parameter of the model in one group, its AdamW part torch's AdamW."""

import copy
import math

import pytest
import torch

import gpt_helpers as H

SHAPES = [(32, 96), (32, 32), (128, 32), (32, 128), (32, 96), (128, 32), (16, 40)]  # wide, square, tall, repeats


def matrices(seed=0):
    torch.manual_seed(seed)
    return [torch.nn.Parameter(0.02 * torch.randn(shape)) for shape in SHAPES]


def gradients(params, steps=3, seed=1):
    """The same random gradients for every caller: `steps` lists, one gradient per parameter."""
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(p.shape, generator=g) for p in params] for _ in range(steps)]


def run(optimizers, params, steps=3, seed=1):
    """`steps` steps of every optimiser in `optimizers` on the same random gradients of `params`."""
    for grads in gradients(params, steps, seed):
        for p, grad in zip(params, grads):
            p.grad = grad.clone()
        for opt in optimizers:
            opt.step()
    return params


def newton_schulz_float64(G: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """The quintic iteration written from its definition, one matrix at a time, in float64."""
    a, b, c = H.NS_COEFFICIENTS
    if G.size(0) > G.size(1):
        return newton_schulz_float64(G.T, steps).T
    X = G.double() / max(G.double().norm().item(), 1e-7)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X


def muon_float64(start: torch.Tensor, grads: list, lr: float, momentum: float) -> torch.Tensor:
    """The weights after Muon's steps on `grads`, by hand in float64: momentum buffer, Nesterov mix, Newton-Schulz,
    the rate scaled by sqrt(max(1, rows/cols))."""
    p, buf = start.double(), torch.zeros_like(start, dtype=torch.float64)
    scale = math.sqrt(max(1, p.size(0) / p.size(1)))
    for g in grads:
        buf = momentum * buf + (1 - momentum) * g.double()
        update = (1 - momentum) * g.double() + momentum * buf
        p = p - lr * scale * newton_schulz_float64(update)
    return p


@pytest.mark.parametrize("shape", [(24, 80), (48, 48), (96, 24)])
def test_float32_newton_schulz_equals_a_float64_reference(shape):
    G = torch.randn(3, *shape)
    out = H.newton_schulz(G)
    assert out.dtype == torch.float32 and out.shape == G.shape
    for got, g in zip(out, G):
        assert torch.allclose(got.double(), newton_schulz_float64(g), rtol=0, atol=2e-5)


def test_newton_schulz_brings_singular_values_near_one():
    s = torch.linalg.svdvals(H.newton_schulz(torch.randn(4, 64, 192)))
    assert s.min() > 0.5 and s.max() < 1.3  # the quintic's known band, instead of exactly 1


def test_batched_equals_one_matrix_at_a_time():
    together = run([H.Muon(batched := matrices())], batched)
    alone = matrices()
    run([H.Muon([p]) for p in alone], alone)
    for a, b in zip(together, alone, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-7)


def test_the_update_follows_the_definition():
    """Three steps, so that the momentum buffer and the Nesterov mix matter; tall matrices get twice the rate."""
    params = [torch.nn.Parameter(torch.randn(shape)) for shape in ((96, 24), (24, 96), (40, 40))]
    starts = [p.detach().clone() for p in params]
    run([H.Muon(params, lr=0.05, momentum=0.9)], params)
    for p, start, grads in zip(params, starts, zip(*gradients(params))):
        assert torch.allclose(p.detach().double(), muon_float64(start, grads, lr=0.05, momentum=0.9),
                              rtol=0, atol=1e-5)


@pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="this torch has no torch.optim.Muon")
def test_matrix_steps_agree_with_torch_muon_to_its_precision():
    # torch's Muon orthogonalises in lower precision: its steps agree with ours to within 1.5 %, while a mistake in the
    # momentum, the Nesterov mix or the rate's scaling moves a step by tens of per cent
    start = [p.detach().clone() for p in matrices()]
    ours = run([H.Muon(mine := matrices(), lr=0.02, momentum=0.95)], mine)
    theirs = run([torch.optim.Muon(ref := matrices(), lr=0.02, momentum=0.95, weight_decay=0.0)], ref)
    for a, b, p0 in zip(ours, theirs, start, strict=True):
        step_ours, step_theirs = (a - p0).detach(), (b - p0).detach()
        assert (step_ours - step_theirs).norm() < 0.03 * step_theirs.norm()


def test_muon_refuses_a_parameter_that_is_not_a_matrix():
    with pytest.raises(ValueError, match=r"2-D weight matrices only, got a parameter of shape \(8,\)"):
        H.Muon([torch.nn.Parameter(torch.zeros(8))])


def small_gpt(nb):
    torch.manual_seed(0)
    return nb.GPT(nb.GPTConfig(vocab_size=65, block_size=16, n_block=2, n_head=2, n_embd=32, bias=True))


def test_muon_adamw_puts_every_parameter_in_exactly_one_group(nb):
    model = small_gpt(nb)
    opt = H.MuonAdamW(model, learning_rate=3e-3, muon_lr=0.02, weight_decay=0.1, betas=(0.9, 0.99))
    assert opt.param_groups == opt.muon.param_groups + opt.adamw.param_groups
    grouped = [id(p) for g in opt.param_groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # each once, the tied matrix too
    names = {id(p): n for n, p in model.named_parameters()}
    muon, decay, no_decay = ({names[id(p)] for p in g["params"]} for g in opt.param_groups)
    assert muon == {f"transformer.blocks.{i}.{m}.weight" for i in range(2)
                    for m in ("attention.qkv_map", "attention.proj", "mlp.expand", "mlp.project")}
    assert decay == {"transformer.embed_token.weight", "transformer.embed_position.weight"}
    assert no_decay and all(dict(model.named_parameters())[n].dim() == 1 for n in no_decay)  # biases and gains
    assert [g["lr"] for g in opt.param_groups] == [0.02, 3e-3, 3e-3]
    assert [g["weight_decay"] for g in opt.adamw.param_groups] == [0.1, 0.0]


def test_muon_adamw_steps_as_our_muon_and_torch_adamw_built_alone(nb):
    model = small_gpt(nb)
    alone = copy.deepcopy(model)  # the tied embedding and head stay one parameter
    opt = H.MuonAdamW(model, 3e-3, 0.02, 0.1, (0.9, 0.99))
    names = {id(p): n for n, p in model.named_parameters()}
    params_alone = dict(alone.named_parameters())
    muon = H.Muon([params_alone[names[id(p)]] for p in opt.muon.param_groups[0]["params"]], lr=0.02)
    adamw = torch.optim.AdamW([dict(params=[params_alone[names[id(p)]] for p in g["params"]],
                                    weight_decay=g["weight_decay"]) for g in opt.adamw.param_groups],
                              lr=3e-3, betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        for p, q in zip(model.parameters(), alone.parameters()):
            p.grad = torch.randn(p.shape, generator=g)
            q.grad = p.grad.clone()
        for step in (opt.step, muon.step, adamw.step):
            step()
    for (n, p), q in zip(model.named_parameters(), alone.parameters(), strict=True):
        assert torch.equal(p, q), n
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
