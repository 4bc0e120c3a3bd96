"""The configurations in the notebook's `profiles` cell: each builds and trains a step, and keeps its promises.

The `gpu` profile cannot run here (no GPU in CI); these checks catch a broken configuration before GPU time is spent.
"""

import pytest
import torch

import gpt_helpers as H

PROFILES = H.notebook_cells("profiles", name="test_profiles_cell").PROFILES
RUNS = [(profile, run) for profile in PROFILES for run in ("baseline", "large", "no_mask")]


@pytest.mark.parametrize("profile,run", RUNS)
def test_every_configuration_builds_and_takes_a_training_step(nb, profile, run):
    spec = PROFILES[profile][run]
    cfg = nb.GPTConfig(vocab_size=65, **spec["model"])
    tc = nb.TrainConfig(**spec["train"])
    assert 0 < tc.warmup_iters < tc.max_iters and tc.min_lr < tc.lr
    assert (tc.checkpoint_interval or tc.eval_interval) % tc.eval_interval == 0, "checkpoints are written at evals"
    model = nb.GPT(cfg)
    x = torch.randint(0, 65, (2, min(cfg.block_size, 24)))
    _, loss = model(x, x)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())


def test_gpu_baseline_is_nanogpts_shakespeare_char_recipe(nb):
    """The notebook says so: nanoGPT's model, block, batch and AdamW settings."""
    spec = PROFILES["gpu"]["baseline"]
    assert spec["model"] == dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2)
    tc = nb.TrainConfig(**spec["train"])
    assert (tc.batch_size, tc.lr, tc.min_lr, tc.warmup_iters) == (64, 1e-3, 1e-4, 100)
    assert (tc.beta1, tc.beta2, tc.weight_decay, tc.grad_clip) == (0.9, 0.99, 0.1, 1.0)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_large_model_is_larger_in_layers_width_heads_and_block(profile):
    """Task (h): more layers, a wider model, more heads and a longer block than the baseline."""
    base, large = PROFILES[profile]["baseline"]["model"], PROFILES[profile]["large"]["model"]
    for key in ("n_layer", "n_embd", "n_head"):
        assert large[key] > base[key], key
    assert large["block_size"] >= 2 * base["block_size"]

