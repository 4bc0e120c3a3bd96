"""The configurations in the notebook's `profiles` cell: each builds and takes a training step, and keeps the promises
the notebook makes about it. The `gpu` profile cannot run here (no GPU in CI): these checks catch a broken
configuration before GPU time is spent on it."""

import pytest
import torch
import torch.nn.functional as F
from conftest import notebook_cells

CELLS = notebook_cells("profiles", name="profiles_cell")
PROFILES = CELLS.PROFILES


def model_configs(profile):
    """(name, model sizes, batch size) of every model a profile trains."""
    p = PROFILES[profile]
    sweep = p["sweep"]
    runs = [("baseline", p["baseline"]["model"], p["baseline"]["train"]["batch_size"]),
            ("no_mask", p["no_mask"]["model"], p["no_mask"]["train"]["batch_size"])]
    for name, change in sweep["architectures"].items():
        sizes = {**p["baseline"]["model"], **change}
        runs.append((name, sizes, sweep["tokens_per_iter"] // sizes["block_size"]))
    return runs


@pytest.mark.parametrize("profile, name, sizes, batch_size",
                         [(profile, *run) for profile in PROFILES for run in model_configs(profile)])
def test_every_model_builds_and_takes_a_training_step(nb, profile, name, sizes, batch_size):
    model = nb.GPT(nb.GPTConfig(vocab_size=65, **sizes))
    x = torch.randint(0, 65, (2, min(sizes["block_size"], 24)))
    loss = F.cross_entropy(model(x).flatten(0, 1), x.flatten())
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())
    assert batch_size >= 1


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_training_configuration_is_valid(nb, profile):
    p = PROFILES[profile]
    sweep_batch = p["sweep"]["tokens_per_iter"] // p["baseline"]["model"]["block_size"]
    for settings in (p["baseline"]["train"], p["no_mask"]["train"], {**p["sweep"]["train"], "batch_size": sweep_batch},
                     {**p["large"]["train"], "batch_size": sweep_batch}):
        tc = nb.TrainConfig(**settings)
        assert 0 < tc.warmup_iters < tc.max_iters and tc.eval_interval <= tc.max_iters


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_the_baseline_and_the_larger_model_have_at_least_15_evaluations(profile):
    p = PROFILES[profile]
    for train in (p["baseline"]["train"], p["large"]["train"]):
        assert train["max_iters"] // train["eval_interval"] + 1 >= 15


def test_the_cpu_baseline_is_the_templates_small_model():
    assert PROFILES["cpu"]["baseline"]["model"] == dict(n_block=4, n_head=4, n_embd=128, block_size=64, dropout=0.0,
                                                        bias=False)


def test_the_gpu_baseline_is_the_templates_training_setup():
    spec = PROFILES["gpu"]["baseline"]
    assert spec["model"] == dict(n_block=4, n_head=4, n_embd=128, block_size=128, dropout=0.0, bias=False)
    assert spec["train"]["batch_size"] == 128 and spec["train"]["learning_rate"] == 1e-3
    assert spec["train"]["max_iters"] >= 5000


def test_the_gpu_profiles_larger_model_is_at_least_the_templates_default_size(nb):
    p = PROFILES["gpu"]
    sizes = {**p["baseline"]["model"], **p["sweep"]["architectures"][p["large"]["architecture"]]}
    assert nb.GPT(nb.GPTConfig(vocab_size=65, **sizes)).get_num_params() >= 10_000_000


def test_only_profiles_with_a_configuration_are_on_record():
    assert set(CELLS.PROFILES_ON_RECORD) <= set(PROFILES) - {"smoke"}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_sweep_changes_one_factor_at_a_time_then_combines_them(profile):
    p = PROFILES[profile]
    base, architectures = p["baseline"]["model"], p["sweep"]["architectures"]
    changes = [change for name, change in architectures.items() if name != "baseline"]
    assert architectures["baseline"] == {} and len(changes) >= 5
    single = [change for change in changes if len(change) == 1]
    assert {key for change in single for key in change} == {"n_block", "n_embd", "n_head", "block_size"}
    assert any(len(change) >= 2 for change in changes)  # a combination
    assert all(change[key] != base[key] for change in changes for key in change)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_larger_model_is_a_larger_architecture_of_the_sweep_with_learning_rate_and_batch_sweeps(nb, profile):
    p = PROFILES[profile]
    large = p["large"]
    base_sizes = p["baseline"]["model"]
    sizes = {**base_sizes, **p["sweep"]["architectures"][large["architecture"]]}
    n_params = [nb.GPT(nb.GPTConfig(vocab_size=65, **s)).get_num_params() for s in (base_sizes, sizes)]
    assert n_params[1] > 1.5 * n_params[0] and sizes["block_size"] > base_sizes["block_size"]
    assert len(large["lr_sweep"]) >= 3 and p["sweep"]["train"]["learning_rate"] in large["lr_sweep"]
    default_batch = p["sweep"]["tokens_per_iter"] // sizes["block_size"]
    assert len(large["batch_sweep"]) >= 3 and default_batch in large["batch_sweep"]
    assert large["train"]["max_iters"] > p["sweep"]["train"]["max_iters"]  # the chosen model trained longer


def test_the_temperatures_are_the_assignments():
    assert CELLS.TEMPERATURES == [1.5, 1.0, 0.8, 0.5, 0.1, 0.0001]
