"""Our Muon (gpt_helpers.Muon): torch.optim.Muon's update for the matrices, batched by shape, in the precision it is
given; torch.optim.AdamW's update for the other groups; one optimiser object."""

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import gpt_helpers as H

SHAPES = [(32, 96), (32, 32), (128, 32), (32, 128), (32, 96), (128, 32), (16, 40)]  # wide, square, tall, repeats


def matrices(seed=0):
    torch.manual_seed(seed)
    return [torch.nn.Parameter(0.02 * torch.randn(shape)) for shape in SHAPES]


def vectors(seed=0):
    torch.manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(n)) for n in (32, 96, 7)]


def run(optimizer, params, steps=3, seed=1):
    """`steps` optimiser steps on the same random gradients for every caller."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        optimizer.step()
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


@pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="this torch has no torch.optim.Muon")
def test_matrix_steps_equal_torch_muon_in_bf16():
    ours = run(H.Muon([dict(params=(mine := matrices()), use_muon=True)], lr=0.02, weight_decay=0.1,
                      ns_dtype=torch.bfloat16), mine)
    theirs = run(torch.optim.Muon(ref := matrices(), lr=0.02, weight_decay=0.1), ref)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-7)  # the last bit of a float32 sum, at most


def test_the_other_groups_step_as_torch_adamw():
    ours = run(H.Muon([dict(params=(mine := vectors() + matrices()[:2]))], lr=3e-3, betas=(0.9, 0.99),
                      weight_decay=0.1), mine, steps=5)
    theirs = run(torch.optim.AdamW(ref := vectors() + matrices()[:2], lr=3e-3, betas=(0.9, 0.99), weight_decay=0.1),
                 ref, steps=5)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-7)


def test_one_optimizer_steps_its_muon_and_adamw_groups_as_each_would_alone():
    m, v, m2, v2 = matrices(), vectors(), matrices(), vectors()
    both = H.Muon([dict(params=m, use_muon=True, lr=0.02), dict(params=v, lr=3e-3)])
    muon_alone = H.Muon([dict(params=m2, use_muon=True)], lr=0.02)
    adamw_alone = torch.optim.AdamW(v2, lr=3e-3, betas=(0.9, 0.99), weight_decay=0.0)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        for p, q in zip(m + v, m2 + v2):
            p.grad = torch.randn(p.shape, generator=g)
            q.grad = p.grad.clone()
        for opt in (both, muon_alone, adamw_alone):
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(m, m2))
    assert all(torch.allclose(a, b, rtol=0, atol=1e-7) for a, b in zip(v, v2))


@pytest.mark.parametrize("shape", [(24, 80), (48, 48), (96, 24)])
def test_float32_newton_schulz_equals_a_float64_reference(shape):
    G = torch.randn(3, *shape)
    out = H.newton_schulz(G, dtype=torch.float32)
    assert out.dtype == torch.float32 and out.shape == G.shape
    for got, g in zip(out, G):
        assert torch.allclose(got.double(), newton_schulz_float64(g), rtol=0, atol=2e-5)


def test_newton_schulz_brings_singular_values_near_one():
    s = torch.linalg.svdvals(H.newton_schulz(torch.randn(4, 64, 192)))
    assert s.min() > 0.5 and s.max() < 1.3  # the quintic's known band, instead of exactly 1


class RecordDtypes(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.dtypes = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (list, tuple)) else [out]):
            if isinstance(t, torch.Tensor):
                self.dtypes.add(t.dtype)
        return out


def dtypes_of_one_step(ns_dtype: torch.dtype) -> tuple[set, list]:
    """The dtypes of every tensor one Muon step computes, and the parameters after it."""
    params = matrices()
    opt = H.Muon([dict(params=params, use_muon=True)], ns_dtype=ns_dtype)
    for p in params:
        p.grad = torch.randn(p.shape)
    with RecordDtypes() as seen:
        opt.step()
    return seen.dtypes, params


def test_the_float32_path_runs_no_bf16_operation():
    dtypes, _ = dtypes_of_one_step(torch.float32)
    assert dtypes == {torch.float32}


def test_the_bf16_path_orthogonalises_in_bf16():
    dtypes, params = dtypes_of_one_step(torch.bfloat16)
    assert torch.bfloat16 in dtypes and all(p.dtype == torch.float32 for p in params)


def test_batched_equals_one_matrix_at_a_time():
    together = run(H.Muon([dict(params=(batched := matrices()), use_muon=True)], weight_decay=0.1), batched)
    alone = matrices()
    singles = [H.Muon([dict(params=[p], use_muon=True)], weight_decay=0.1) for p in alone]
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        for p in alone:
            p.grad = torch.randn(p.shape, generator=g)
        for opt in singles:
            opt.step()
    for a, b in zip(together, alone, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-7)


def test_the_update_follows_the_definition():
    """One step by hand: momentum, Nesterov mix, Newton-Schulz (float64 reference), scaled rate, weight decay."""
    p0 = torch.nn.Parameter(torch.randn(96, 24))  # tall: its rate is scaled by sqrt(96 / 24) = 2
    start = p0.detach().clone()
    grad = torch.randn(96, 24)
    p0.grad = grad.clone()
    H.Muon([dict(params=[p0], use_muon=True)], lr=0.05, weight_decay=0.1, momentum=0.9).step()
    buf = 0.1 * grad  # (1 - m) g, from a zero buffer
    update = 0.1 * grad + 0.9 * buf  # Nesterov
    expected = start * (1 - 0.05 * 0.1) - 0.05 * math.sqrt(96 / 24) * newton_schulz_float64(update).float()
    assert torch.allclose(p0.detach(), expected, rtol=0, atol=1e-5)


def test_muon_groups_put_every_parameter_in_exactly_one_group(nb):
    model = nb.GPT(nb.GPTConfig(vocab_size=65, block_size=16, n_block=2, n_head=2, n_embd=32))
    groups = H.muon_groups(model, learning_rate=3e-3, muon_lr=0.02, weight_decay=0.1)
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # each once, the tied matrix too
    names = {id(p): n for n, p in model.named_parameters()}
    in_muon = {names[id(p)] for p in groups[0]["params"]}
    assert in_muon == {f"transformer.blocks.{i}.{m}.weight" for i in range(2)
                       for m in ("attention.qkv_map", "attention.proj", "mlp.expand", "mlp.project")}
    assert {names[id(p)] for p in groups[1]["params"]} == {"transformer.embed_token.weight",
                                                            "transformer.embed_position.weight"}
    assert [g.get("use_muon", False) for g in groups] == [True, False, False]
    assert [g["weight_decay"] for g in groups] == [0.0, 0.1, 0.0]


def test_muon_refuses_a_parameter_that_is_not_a_matrix():
    with pytest.raises(ValueError, match=r"2-D weight matrices only, got a parameter of shape \(8,\)"):
        H.Muon([dict(params=[torch.nn.Parameter(torch.zeros(8))], use_muon=True)])
