"""Our Muon (gpt_helpers.Muon): torch.optim.Muon's update, batched by shape, in the precision it is given."""

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import gpt_helpers as H

SHAPES = [(32, 96), (32, 32), (128, 32), (32, 128), (32, 96), (128, 32), (16, 40)]  # wide, square, tall, repeats


def parameters(seed=0):
    torch.manual_seed(seed)
    return [torch.nn.Parameter(0.02 * torch.randn(shape)) for shape in SHAPES]


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
    X = G.double()
    if X.size(0) > X.size(1):
        return newton_schulz_float64(G.T, steps).T
    X = X / max(X.norm().item(), 1e-7)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X


@pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="this torch has no torch.optim.Muon")
def test_steps_equal_torch_muon_in_bf16():
    ours = run(H.Muon(mine := parameters(), lr=0.02, weight_decay=0.1, dtype=torch.bfloat16), mine)
    theirs = run(torch.optim.Muon(ref := parameters(), lr=0.02, weight_decay=0.1), ref)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-7)  # the last bit of a float32 sum, at most


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


def dtypes_of_one_step(dtype: torch.dtype) -> tuple[set, list]:
    """The dtypes of every tensor one Muon step computes, and the parameters after it."""
    params = parameters()
    opt = H.Muon(params, dtype=dtype)
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
    together = run(H.Muon(batched := parameters(), weight_decay=0.1), batched)
    alone = parameters()
    singles = [H.Muon([p], weight_decay=0.1) for p in alone]
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
    (p0,) = [torch.nn.Parameter(torch.randn(96, 24))]  # tall: its rate is scaled by sqrt(96 / 24) = 2
    start = p0.detach().clone()
    grad = torch.randn(96, 24)
    p0.grad = grad.clone()
    H.Muon([p0], lr=0.05, weight_decay=0.1, momentum=0.9).step()
    buf = 0.1 * grad  # (1 - m) g, from a zero buffer
    update = 0.1 * grad + 0.9 * buf  # Nesterov
    expected = start * (1 - 0.05 * 0.1) - 0.05 * math.sqrt(96 / 24) * newton_schulz_float64(update).float()
    assert torch.allclose(p0.detach(), expected, rtol=0, atol=1e-5)


def test_state_dict_holds_the_momentum_and_restores_it():
    params = parameters()
    opt = H.Muon(params)
    run(opt, params)
    saved = opt.state_dict()
    assert len(saved["state"]) == len(SHAPES) and all("momentum_buffer" in s for s in saved["state"].values())
    fresh = H.Muon(params)
    fresh.load_state_dict(saved)
    for p in params:
        assert torch.equal(fresh.state[p]["momentum_buffer"], opt.state[p]["momentum_buffer"])


def test_muon_refuses_a_parameter_that_is_not_a_matrix():
    with pytest.raises(ValueError, match=r"2-D weight matrices only, got a parameter of shape \(8,\)"):
        H.Muon([torch.nn.Parameter(torch.zeros(8))])
