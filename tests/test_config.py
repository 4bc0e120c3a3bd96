"""The notebook's `config` cell, as the run on record reads it (SMOKE = False) and as the smoke run does: every model
builds and takes a training step, every training configuration is valid, and the settings keep the promises the
notebook and the assignment make."""

import contextlib
import io
import math

import pytest
import torch
from conftest import notebook_cells

CONFIGS = {"real": notebook_cells("config", name="config_cell", SMOKE=False),
           "smoke": notebook_cells("config", name="smoke_config_cell", SMOKE=True)}
REAL = CONFIGS["real"]


def large_sizes(cfg) -> dict:
    return {**cfg.BASELINE, **cfg.ARCHITECTURES[cfg.LARGE]}


def models(cfg) -> dict:
    """{name: (model sizes, batch size)} of every model the notebook trains with `cfg`."""
    sweep = {f"architecture {name}": {**cfg.BASELINE, **change} for name, change in cfg.ARCHITECTURES.items()}
    runs = {"baseline": (cfg.BASELINE, cfg.BASELINE_TRAIN["batch_size"]),
            "no mask": (cfg.NO_MASK, cfg.NO_MASK_TRAIN["batch_size"])}
    for name, sizes in sweep.items():
        runs[name] = (sizes, cfg.ARCH_TRAIN["batch_size"])
    runs.update({f"larger model, batch {b}": (large_sizes(cfg), b) for b in cfg.BATCH_SWEEP})
    runs["larger model"] = (large_sizes(cfg), cfg.LARGE_TRAIN["batch_size"])
    return runs


def train_settings(cfg) -> dict:
    """{name: TrainConfig arguments} of every run, at the default batch size of the sweeps."""
    sweep = {name: cfg.ARCH_TRAIN for name in models(cfg) if name.startswith("architecture")}
    return {"baseline": cfg.BASELINE_TRAIN, "no mask": cfg.NO_MASK_TRAIN, **sweep,
            **{f"larger model, lr {lr:g}": {**cfg.SWEEP_TRAIN, "learning_rate": lr} for lr in cfg.LR_SWEEP},
            **{f"larger model, batch {b}": {**cfg.SWEEP_TRAIN, "batch_size": b} for b in cfg.BATCH_SWEEP},
            "Muon": {**cfg.SWEEP_TRAIN, "max_iters": cfg.MUON_ITERS},
            "larger model": {**cfg.LARGE_TRAIN, "learning_rate": cfg.LR_SWEEP[0]}}


def evaluations(settings: dict) -> int:
    """How many times `train` evaluates: every eval_interval iterations from 0, and at the end."""
    return len({*range(0, settings["max_iters"] + 1, settings["eval_interval"]), settings["max_iters"]})


@pytest.mark.parametrize("which, name", [(which, name) for which, cfg in CONFIGS.items() for name in models(cfg)])
def test_every_model_builds_and_takes_a_training_step(nb, which, name):
    sizes, batch_size = models(CONFIGS[which])[name]
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):  # GPT prints its size
        model = nb.GPT(nb.GPTConfig(vocab_size=65, **sizes))
    block = sizes["block_size"]
    ids = torch.randint(0, 65, (4 * block,), generator=torch.Generator().manual_seed(0))
    config = nb.TrainConfig(max_iters=1, batch_size=batch_size, warmup_iters=1, eval_interval=1, eval_tokens=block)
    optimizer = model.get_optimizer(config.weight_decay, config.learning_rate, config.betas, "cpu")
    steps, step = [], optimizer.step

    def checked_step():  # which parameters have a finite gradient when the optimiser steps
        steps.append([p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters()])
        step()

    optimizer.step = checked_step
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        record = nb.train(model, optimizer, config, ids, ids[: 2 * block + 1], name)
    assert steps == [[True] * len(list(model.parameters()))]  # one step, a finite gradient for every parameter
    assert all(math.isfinite(v) for v in record["history"]["train_loss"] + record["history"]["val_loss"])


@pytest.mark.parametrize("which", CONFIGS)
def test_every_training_configuration_is_valid(nb, which):
    for name, settings in train_settings(CONFIGS[which]).items():
        tc = nb.TrainConfig(**settings)
        assert tc.batch_size >= 1 and 1 <= tc.eval_interval <= tc.max_iters, name


def test_every_run_on_record_warms_up_for_less_than_its_length():
    assert {name: s["warmup_iters"] for name, s in train_settings(REAL).items()
            if not 0 < s["warmup_iters"] < s["max_iters"]} == {}


def test_the_baseline_is_the_templates_training_model_trained_on_at_least_10_million_characters():
    assert {k: REAL.BASELINE[k] for k in ("n_block", "n_head", "n_embd", "block_size", "dropout", "bias")} == dict(
        n_block=4, n_head=4, n_embd=128, block_size=128, dropout=0.0, bias=False)
    characters = REAL.BASELINE_TRAIN["max_iters"] * REAL.BASELINE_TRAIN["batch_size"] * REAL.BASELINE["block_size"]
    assert characters >= 10_000_000


@pytest.mark.parametrize("which", CONFIGS)
def test_the_architectures_change_one_factor_at_a_time_then_combine_them(which):
    cfg = CONFIGS[which]
    changes = [change for name, change in cfg.ARCHITECTURES.items() if name != "baseline"]
    assert cfg.ARCHITECTURES["baseline"] == {}
    single = [change for change in changes if len(change) == 1]
    assert {key for change in single for key in change} == {"n_block", "n_embd", "n_head", "block_size"}
    assert any(len(change) >= 2 for change in changes)  # a combination
    assert all(change[key] != cfg.BASELINE[key] for change in changes for key in change)
    assert cfg.LARGE in cfg.ARCHITECTURES


def test_the_larger_model_has_at_least_three_times_the_baselines_parameters_and_dropout(nb):
    with contextlib.redirect_stdout(io.StringIO()):
        n_params = [nb.GPT(nb.GPTConfig(vocab_size=65, **sizes)).get_num_params()
                    for sizes in (REAL.BASELINE, large_sizes(REAL))]
    assert n_params[1] >= 3 * n_params[0] and large_sizes(REAL)["block_size"] >= REAL.BASELINE["block_size"]
    assert large_sizes(REAL)["dropout"] > 0


@pytest.mark.parametrize("which", CONFIGS)
def test_the_learning_rate_and_batch_sweeps_have_three_values_each(which):
    cfg = CONFIGS[which]
    assert len(set(cfg.LR_SWEEP)) == len(cfg.LR_SWEEP) == 3 and len(set(cfg.BATCH_SWEEP)) == len(cfg.BATCH_SWEEP) == 3


def test_the_batch_sweep_holds_the_sweeps_batch_whose_run_the_notebook_reuses():
    assert REAL.SWEEP_TRAIN["batch_size"] in REAL.BATCH_SWEEP
    assert REAL.LARGE_TRAIN["batch_size"] in REAL.BATCH_SWEEP  # the optimiser comparison's AdamW run is the long run's


def test_every_sweep_run_is_at_least_500_iterations_long():
    assert REAL.SWEEP_TRAIN["max_iters"] >= 500 and REAL.ARCH_TRAIN["max_iters"] >= 500


@pytest.mark.parametrize("which", CONFIGS)
def test_the_temperatures_are_the_assignments(which):
    assert CONFIGS[which].TEMPERATURES == [1.5, 1.0, 0.8, 0.5, 0.1, 0.0001]


def test_the_baseline_and_the_larger_model_have_at_least_15_evaluations():
    assert evaluations(REAL.BASELINE_TRAIN) >= 15 and evaluations(REAL.LARGE_TRAIN) >= 15


def test_smoke_shrinks_every_run():
    real, smoke = CONFIGS["real"], CONFIGS["smoke"]
    for settings in ("BASELINE_TRAIN", "NO_MASK_TRAIN", "ARCH_TRAIN", "SWEEP_TRAIN", "LARGE_TRAIN"):
        assert getattr(smoke, settings)["max_iters"] < getattr(real, settings)["max_iters"], settings
    assert smoke.MUON_ITERS < real.MUON_ITERS
    assert smoke.BASELINE["n_embd"] * smoke.BASELINE["n_block"] < real.BASELINE["n_embd"] * real.BASELINE["n_block"]
