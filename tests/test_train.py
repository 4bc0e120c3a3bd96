"""The training loop (the notebook's `train` cell) and what it relies on: the schedule, evaluation on fixed subsets and
on the whole split, the best weights and their checkpoint, seeds, the record, Muon through the same loop."""

import time

import pytest
import torch

import gpt_helpers as H


@pytest.fixture
def data(splits):
    train, val = splits
    return train[:20_000], val[:3_000]


def small_model(nb, **sizes):
    torch.manual_seed(0)
    return nb.GPT(nb.GPTConfig(**{**dict(vocab_size=65, block_size=16, n_block=1, n_head=2, n_embd=32, dropout=0.0),
                                  **sizes}))


def config(nb, **settings):
    return nb.TrainConfig(**{**dict(max_iters=30, batch_size=8, learning_rate=3e-3, warmup_iters=5, eval_interval=10,
                                    eval_tokens=512, seed=0), **settings})


def adamw(model, tc):
    return model.get_optimizer(tc.weight_decay, tc.learning_rate, tc.betas, "cpu")


def muon_adamw(model, tc):
    return H.MuonAdamW(model, tc.learning_rate, 0.02, tc.weight_decay, tc.betas)


def small_run(nb, data, optimizer=adamw, checkpoint_path=None, **settings):
    """A 1-block model trained on `data` with `optimizer(model, config)` (AdamW from get_optimizer by default)."""
    model = small_model(nb)
    tc = config(nb, **settings)
    return model, nb.train(model, optimizer(model, tc), tc, *data, "test", checkpoint_path=checkpoint_path)


def curve(record):
    return {k: record["history"][k] for k in ("iter", "tokens", "train_loss", "val_loss")}


def test_learning_rate_warms_up_then_decays_to_a_tenth(nb):
    tc = nb.TrainConfig(max_iters=100, batch_size=1, warmup_iters=10)
    assert nb.lr_factor(0, tc) == pytest.approx(0.1)
    assert nb.lr_factor(9, tc) == pytest.approx(1.0)
    assert nb.lr_factor(55, tc) == pytest.approx(0.55)
    assert nb.lr_factor(100, tc) == pytest.approx(0.1)
    factors = [nb.lr_factor(i, tc) for i in range(10, 101)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))


def test_the_same_seed_gives_the_same_curve(nb, data):
    _, a = small_run(nb, data)
    _, b = small_run(nb, data)
    assert curve(a) == curve(b)
    assert a["history"]["iter"] == [0, 10, 20, 30] and a["history"]["tokens"] == [0, 1280, 2560, 3840]
    assert a["history"]["val_loss"][-1] < a["history"]["val_loss"][0] - 0.5
    _, other = small_run(nb, data, seed=1)  # another order of batches
    assert other["history"]["val_loss"] != a["history"]["val_loss"]


def test_the_curve_is_measured_on_fixed_subsets_of_both_splits(nb, data):
    model, rec = small_run(nb, data, max_iters=10, eval_interval=10)
    train, val = data
    assert rec["history"]["val_loss"][-1] == pytest.approx(H.evaluate(model, H.eval_windows(val, 16, 512)))
    assert rec["history"]["train_loss"][-1] == pytest.approx(H.evaluate(model, H.eval_windows(train, 16, 512)))


def test_the_best_weights_are_kept_and_their_loss_is_exact_over_the_whole_split(nb, data):
    train, val = data
    # 400 training characters and a high learning rate: the model memorises them and the validation loss rises
    model, rec = small_run(nb, (train[:400], val), max_iters=200, eval_interval=20, learning_rate=1e-2,
                           min_lr_ratio=1.0)
    h = rec["history"]
    assert h["val_loss"][-1] > min(h["val_loss"])  # the run did overfit
    assert rec["best_iter"] == h["iter"][h["val_loss"].index(min(h["val_loss"]))]
    assert rec["best_val_loss"] == H.evaluate(model, H.eval_windows(val, 16))  # every position, the kept weights


def test_the_checkpoint_rebuilds_the_best_model(nb, data, tmp_path):
    path = tmp_path / "ckpt" / "best.pt"
    model, _ = small_run(nb, data, checkpoint_path=path)
    saved = torch.load(path, weights_only=True)
    assert set(saved) == {"model", "model_args"}
    rebuilt = nb.GPT(nb.GPTConfig(**saved["model_args"]))
    rebuilt.load_state_dict(saved["model"])
    idx = torch.randint(0, 65, (2, 16))
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(idx), model.eval()(idx))


def test_the_record_holds_what_the_report_needs(nb, data):
    _, rec = small_run(nb, data, max_iters=20)
    assert set(rec) == {"config", "train_config", "n_params", "best_val_loss", "best_iter", "history",
                        "train_time_s", "ms_per_iter"}
    assert set(rec["history"]) == {"iter", "tokens", "train_time_s", "train_loss", "val_loss"}
    assert rec["config"]["n_block"] == 1 and rec["train_config"]["max_iters"] == 20
    assert rec["n_params"] == sum(p.numel() for p in small_model(nb).parameters())
    assert rec["history"]["train_time_s"][0] == 0 and rec["history"]["train_time_s"][-1] == rec["train_time_s"]
    assert rec["ms_per_iter"] == pytest.approx(1000 * rec["train_time_s"] / 19)  # the first step is not timed


def test_training_time_leaves_out_evaluation(nb, data, monkeypatch):
    evaluate = H.evaluate
    monkeypatch.setattr(H, "evaluate", lambda *a, **k: time.sleep(0.1) or evaluate(*a, **k))
    _, rec = small_run(nb, data, max_iters=4, eval_interval=1)  # 5 evaluations of two splits: 1 s of sleep
    assert rec["train_time_s"] < 0.5


def test_muon_trains_through_the_same_loop(nb, data):
    _, with_adamw = small_run(nb, data)
    _, rec = small_run(nb, data, optimizer=muon_adamw)
    assert rec["history"]["val_loss"][-1] < rec["history"]["val_loss"][0] - 0.5
    assert rec["history"]["val_loss"] != with_adamw["history"]["val_loss"]


def test_the_schedule_sets_the_rate_of_every_group_of_both_optimizers(nb, data, monkeypatch):
    seen = []
    step = H.MuonAdamW.step

    def record(self):  # the rates the two inner optimisers step with
        seen.append([g["lr"] for opt in (self.muon, self.adamw) for g in opt.param_groups])
        return step(self)

    monkeypatch.setattr(H.MuonAdamW, "step", record)
    small_run(nb, data, optimizer=muon_adamw, max_iters=10)
    tc = config(nb, max_iters=10)
    assert len(seen) == 10
    for it, lrs in enumerate(seen):
        factor = nb.lr_factor(it, tc)
        assert lrs == pytest.approx([0.02 * factor, 3e-3 * factor, 3e-3 * factor])
