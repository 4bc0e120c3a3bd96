"""The training loop (the notebook's `train` cell) and what it relies on: the schedule, evaluation on fixed subsets and
on the whole split, the best weights and their checkpoint, a diverging run, seeds, Muon through the same loop."""

import math

import pytest
import torch
import torch.nn.functional as F

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


def small_run(nb, data, optimizer=None, prepare=None, checkpoint_path=None, **settings):
    """A 1-block model trained on `data` with AdamW from get_optimizer (or `optimizer(model, config)`)."""
    model = small_model(nb)
    if prepare is not None:
        prepare(model)
    tc = config(nb, **settings)
    opt = (optimizer or (lambda m, c: m.get_optimizer(c.weight_decay, c.learning_rate, c.betas, "cpu")))(model, tc)
    return model, nb.train(model, opt, tc, *data, "test", checkpoint_path=checkpoint_path)


def curve(record):
    return {k: record["history"][k] for k in ("iter", "tokens", "lr", "train_loss", "val_loss")}


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


def poison_after(n_steps):
    """A training forward pass that returns NaN logits after `n_steps` of them (evaluation is left alone)."""
    def prepare(model):
        calls = []

        def hook(module, args, output):
            calls.append(1) if module.training else None
            return output * math.nan if module.training and len(calls) > n_steps else output

        model.register_forward_hook(hook)
    return prepare


def test_a_diverging_run_stops_and_keeps_the_best_weights(nb, data):
    with pytest.warns(RuntimeWarning, match="iteration 20; training stopped, the weights of iteration 10 are kept"):
        model, rec = small_run(nb, data, prepare=poison_after(12), max_iters=40)
    assert rec["stopped_early"] and rec["history"]["iter"][-1] == 20
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert rec["best_iter"] == 10 and math.isfinite(rec["best_val_loss"])


def test_the_record_holds_what_the_report_needs(nb, data):
    _, rec = small_run(nb, data, max_iters=20)
    assert set(rec) >= {"config", "train_config", "n_params", "best_val_loss", "best_iter", "history",
                        "train_time_s", "ms_per_iter", "tokens_per_s", "memory_mb", "stopped_early"}
    assert rec["tokens_per_s"] == pytest.approx(8 * 16 / rec["ms_per_iter"] * 1000)
    assert rec["history"]["train_time_s"][0] == 0 and rec["history"]["train_time_s"][-1] == rec["train_time_s"]


def test_training_time_leaves_out_evaluation(nb, data, monkeypatch):
    import time

    evaluate = H.evaluate
    monkeypatch.setattr(H, "evaluate", lambda *a, **k: time.sleep(0.2) or evaluate(*a, **k))
    _, rec = small_run(nb, data, max_iters=6, eval_interval=1)  # 7 evaluations of two splits: 2.8 s of sleep
    assert rec["train_time_s"] < 1.5


def test_muon_trains_through_the_same_loop(nb, data):
    def muon(model, tc):
        return H.Muon(H.muon_groups(model, tc.learning_rate, 0.02, tc.weight_decay), betas=tc.betas)

    _, adamw = small_run(nb, data)
    model, rec = small_run(nb, data, optimizer=muon)
    assert rec["history"]["val_loss"][-1] < rec["history"]["val_loss"][0] - 0.5
    assert rec["history"]["val_loss"] != adamw["history"]["val_loss"]


def test_the_schedule_scales_every_group_of_the_optimizer(nb, data, monkeypatch):
    seen = []
    step = H.Muon.step

    def record(self):
        seen.append([g["lr"] for g in self.param_groups])
        return step(self)

    monkeypatch.setattr(H.Muon, "step", record)
    small_run(nb, data, optimizer=lambda m, c: H.Muon(H.muon_groups(m, c.learning_rate, 0.02, 0.1)), max_iters=10)
    tc = config(nb, max_iters=10)
    for it, lrs in enumerate(seen):
        assert lrs == pytest.approx([0.02 * nb.lr_factor(it, tc), 3e-3 * nb.lr_factor(it, tc),
                                     3e-3 * nb.lr_factor(it, tc)])


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_the_precision_is_the_one_the_model_computes_in(nb, data, precision, dtype):
    seen = set()

    def record_dtype(model):
        model.transformer.blocks[0].mlp.register_forward_hook(lambda mod, args, out: seen.add(out.dtype))

    model, rec = small_run(nb, data, prepare=record_dtype, precision=precision, max_iters=10)
    assert seen == {dtype}  # training steps and evaluations alike
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights stay float32
    assert rec["history"]["val_loss"][-1] < rec["history"]["val_loss"][0] - 0.3


def test_an_unknown_precision_is_a_clear_error(nb, data):
    with pytest.raises(ValueError, match="precision must be 'fp32' or 'bf16', got 'fp16'"):
        small_run(nb, data, precision="fp16")


def test_compiled_training_follows_the_eager_curve(nb, data):
    # The gpu profile compiles the model; inductor on the CPU checks that it compiles and trains alike.
    pytest.importorskip("torch._inductor")
    _, eager = small_run(nb, data, max_iters=10, eval_interval=5)
    _, compiled = small_run(nb, data, max_iters=10, eval_interval=5, compile=True)
    assert compiled["history"]["val_loss"] == pytest.approx(eager["history"]["val_loss"], rel=1e-4)


def test_training_memory_counts_weights_states_and_saved_activations(nb):
    model = small_model(nb, n_block=2, block_size=32)
    weights = 4 * 4 * model.get_num_params() / 2**20  # float32 weights, gradients and two AdamW moments
    x, y = torch.randint(0, 65, (2, 8, 32))
    small, double = H.training_memory_mb(model, x, y), H.training_memory_mb(model, torch.cat([x, x]), torch.cat([y, y]))
    assert weights < small < double
    assert double - weights == pytest.approx(2 * (small - weights), rel=0.05)  # activations grow with the batch
    loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())  # and nothing is left behind by the count
    loss.backward()
