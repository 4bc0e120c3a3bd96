"""The training loop (the notebook's `train` cell): optimisers, exact evaluation, best weights, checkpoints, NaN stop,
seeds."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT

import gpt_helpers as H

CHARS = "".join(chr(i) for i in range(65))


@pytest.fixture
def data(splits):
    train, val = splits
    return train[:20_000], val[:3_000]


def small_run(nb, data, ckpt=None, resume=True, prepare=None, **train_kwargs):
    """A 1-layer model trained on `data`; `prepare(model)` may alter the model first."""
    torch.manual_seed(0)
    model = nb.GPT(nb.GPTConfig(block_size=16, vocab_size=65, n_layer=1, n_head=2, n_embd=32))
    if prepare is not None:
        prepare(model)
    tc = nb.TrainConfig(**(dict(max_iters=30, batch_size=8, lr=3e-3, min_lr=3e-4, warmup_iters=5, eval_interval=10,
                                nan_check_interval=5, precision="fp32") | train_kwargs))
    record = nb.train(model, tc, *data, vocab_chars=CHARS, seed=0, checkpoint=ckpt, resume=resume)
    return model, record


def curve(record):
    return {k: record["history"][k] for k in ("iter", "train_loss", "val_loss", "lr")}


def test_exact_evaluation_equals_a_direct_per_position_computation(nb):
    torch.manual_seed(0)
    model = nb.GPT(nb.GPTConfig(block_size=8, vocab_size=65, n_layer=1, n_head=2, n_embd=16)).eval()
    ids = torch.randint(0, 65, (45,))
    nll = []
    with torch.no_grad():
        for j in range(1, len(ids)):  # target j is predicted from the start of its 8-long chunk up to j-1
            start = (j - 1) // 8 * 8
            logits, _ = model(ids[start:j][None])
            nll.append(-F.log_softmax(logits[0, -1].double(), -1)[ids[j]].item())
    assert H.evaluate(model, H.eval_chunks(ids, 8), batch_size=2) == pytest.approx(sum(nll) / len(nll), rel=1e-6)


def test_learning_rate_warms_up_then_decays_to_min_lr(nb):
    tc = nb.TrainConfig(max_iters=100, batch_size=1, lr=1e-3, min_lr=1e-4, warmup_iters=10, eval_interval=10)
    assert nb.lr_at(0, tc) == pytest.approx(1e-4)
    assert nb.lr_at(9, tc) == pytest.approx(1e-3)
    assert nb.lr_at(55, tc) == pytest.approx(5.5e-4)
    assert nb.lr_at(100, tc) == pytest.approx(1e-4)
    lrs = [nb.lr_at(i, tc) for i in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_same_seed_gives_the_same_loss_curve(nb, data):
    _, a = small_run(nb, data)
    _, b = small_run(nb, data)
    assert curve(a) == curve(b)
    assert a["history"]["iter"] == [0, 10, 20, 30]
    assert a["history"]["val_loss"][-1] < a["history"]["val_loss"][0]


def test_best_validation_weights_are_kept(nb, data):
    train, val = data
    # 400 training characters and a high learning rate: the model memorises them and validation worsens
    model, rec = small_run(nb, (train[:400], val), max_iters=200, eval_interval=20, lr=1e-2, min_lr=1e-2)
    h = rec["history"]
    assert rec["final_val_loss"] > rec["best_val_loss"]  # the run did overfit
    assert rec["best_val_loss"] == min(h["val_loss"])
    assert rec["best_iter"] == h["iter"][h["val_loss"].index(min(h["val_loss"]))]
    assert H.evaluate(model, H.eval_chunks(val, 16)) == pytest.approx(rec["best_val_loss"], rel=1e-9)


def test_an_interrupted_run_resumes_to_the_same_curve(nb, data, tmp_path, monkeypatch):
    _, uninterrupted = small_run(nb, data)
    ckpt = tmp_path / "run.pt"
    real_clip, calls = torch.nn.utils.clip_grad_norm_, []

    def clip_then_crash(*args, **kwargs):
        calls.append(1)
        if len(calls) == 25:
            raise KeyboardInterrupt  # the kernel is stopped during iteration 25
        return real_clip(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_then_crash)
    with pytest.raises(KeyboardInterrupt):
        small_run(nb, data, ckpt=ckpt)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", real_clip)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["state"]["iter"] == 20
    assert all("momentum_buffer" in s for s in saved["optimizers"][1]["state"].values())  # Muon's momentum
    model, resumed = small_run(nb, data, ckpt=ckpt)
    assert curve(resumed) == curve(uninterrupted)
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary files left


def test_a_checkpoint_for_another_configuration_is_refused(nb, data, tmp_path):
    ckpt = tmp_path / "run.pt"
    small_run(nb, data, ckpt=ckpt, max_iters=10)
    with pytest.raises(ValueError, match=r"belongs to another run \(train.lr: 0.003 there, 0.001 here\)"):
        small_run(nb, data, ckpt=ckpt, max_iters=10, lr=1e-3)
    _, fresh = small_run(nb, data, ckpt=ckpt, max_iters=10, lr=1e-3, resume=False)  # explicitly start over
    assert fresh["iters_done"] == 10


def edited_notebook(tmp_path, old: str, new: str):
    """The notebook's model and training code with one edit, loaded as a module."""
    source = (ROOT / "assignment3.ipynb").read_text()
    assert source.count(old) == 1
    (tmp_path / "edited.ipynb").write_text(source.replace(old, new))
    return H.notebook_cells("model", "train", notebook=tmp_path / "edited.ipynb", name=f"edited_{abs(hash(new))}")


def test_a_checkpoint_from_other_model_code_is_refused(nb, data, tmp_path):
    ckpt = tmp_path / "run.pt"
    small_run(nb, data, ckpt=ckpt, max_iters=10)
    edited = edited_notebook(tmp_path, "(1.0 / math.sqrt(hs))", "(0.5 / math.sqrt(hs))")  # in CausalSelfAttention
    with pytest.raises(ValueError, match="the model or training code has changed since it was written"):
        small_run(edited, data, ckpt=ckpt, max_iters=10)


def test_a_changed_comment_does_not_invalidate_a_checkpoint(nb, data, tmp_path):
    ckpt = tmp_path / "run.pt"
    _, first = small_run(nb, data, ckpt=ckpt, max_iters=10)
    edited = edited_notebook(tmp_path, "# no peeking ahead", "# the causal mask")
    _, again = small_run(edited, data, ckpt=ckpt, max_iters=10)  # resumes: nothing left to do
    assert curve(again) == curve(first)


def test_an_unreadable_checkpoint_is_a_clear_error(nb, data, tmp_path):
    ckpt = tmp_path / "run.pt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        small_run(nb, data, ckpt=ckpt)


def poison_loss_after(model, n_steps):
    """Make every training loss after the first `n_steps` NaN (evaluation, without targets, is untouched)."""
    forward, steps = model.forward, []

    def poisoned(idx, targets=None, **kw):
        logits, loss = forward(idx, targets, **kw)
        if targets is not None:
            steps.append(1)
            if len(steps) > n_steps:
                loss = loss * math.nan
        return logits, loss

    model.forward = poisoned


def test_nan_loss_stops_training_and_keeps_the_best_weights(nb, data):
    with pytest.warns(RuntimeWarning, match="NaN or infinite by iteration 15"):
        model, rec = small_run(nb, data, prepare=lambda m: poison_loss_after(m, 12), max_iters=40)
    assert rec["stopped_early"] and rec["iters_done"] == 10
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert H.evaluate(model, H.eval_chunks(data[1], 16)) == pytest.approx(rec["best_val_loss"], rel=1e-9)


def test_record_holds_what_the_report_needs(nb, data):
    _, rec = small_run(nb, data, max_iters=20)
    for key in ["config", "n_params", "best_val_loss", "best_iter", "final_val_loss", "train_time_s", "tokens_per_s",
                "ms_per_iter", "peak_memory_mb", "precision"]:
        assert key in rec
    assert rec["precision"] == "fp32" and rec["tokens_per_s"] > 0
    assert set(rec["history"]) == {"iter", "train_loss", "val_loss", "lr", "train_time_s"}


def test_compiled_training_follows_the_eager_curve(nb, data):
    # The GPU path compiles the training step; inductor on the CPU checks that the model compiles and trains alike.
    pytest.importorskip("torch._inductor")
    _, eager = small_run(nb, data, max_iters=10, eval_interval=5, compile=False)
    _, compiled = small_run(nb, data, max_iters=10, eval_interval=5, compile=True)
    assert compiled["compiled"] and not eager["compiled"]
    assert compiled["history"]["val_loss"] == pytest.approx(eager["history"]["val_loss"], rel=1e-4)


@pytest.mark.parametrize("precision,dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_the_precision_is_the_one_the_model_computes_in(nb, data, precision, dtype):
    seen = set()

    def record_dtype(model):
        layer = model.transformer.h[0].mlp.c_fc
        layer.register_forward_hook(lambda mod, args, out: seen.add(out.dtype))

    model, rec = small_run(nb, data, prepare=record_dtype, precision=precision, max_iters=10)
    assert rec["precision"] == precision and seen == {dtype}  # training steps and evaluations alike
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32


def test_bf16_autocast_training_learns(nb, data):
    # The GPU path trains under bf16 autocast; the same code path runs on the CPU.
    _, rec = small_run(nb, data, precision="bf16")
    assert rec["best_val_loss"] < rec["history"]["val_loss"][0] - 0.5


@pytest.mark.parametrize("precision,dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_muon_orthogonalises_in_the_training_precision(nb, precision, dtype):
    model = nb.GPT(nb.GPTConfig(block_size=16, vocab_size=65, n_layer=1, n_head=2, n_embd=32))
    tc = nb.TrainConfig(max_iters=1, batch_size=1, lr=1e-3, min_lr=1e-4, warmup_iters=1, eval_interval=1)
    _, muon = H.make_optimizers(model, tc, precision)
    assert isinstance(muon, H.Muon) and muon.dtype == dtype


def test_an_unknown_precision_is_a_clear_error(nb, data):
    with pytest.raises(ValueError, match=r"precision must be one of \('auto', 'fp32', 'bf16'\), got 'fp16'"):
        small_run(nb, data, precision="fp16")


def test_nan_in_the_last_steps_is_caught_before_the_final_evaluation(nb, data):
    with pytest.warns(RuntimeWarning, match="by iteration 40"):
        _, rec = small_run(nb, data, prepare=lambda m: poison_loss_after(m, 37), max_iters=40, eval_interval=20,
                           nan_check_interval=100)
    assert rec["iters_done"] == 20 and math.isfinite(rec["best_val_loss"])


def test_every_parameter_is_in_exactly_one_optimizer_group(nb):
    model = nb.GPT(nb.GPTConfig(block_size=16, vocab_size=65, n_layer=2, n_head=2, n_embd=32))
    tc = nb.TrainConfig(max_iters=1, batch_size=1, lr=1e-3, min_lr=1e-4, warmup_iters=1, eval_interval=1)
    adamw, muon = H.make_optimizers(model, tc, "fp32")
    grouped = [id(p) for opt in (adamw, muon) for g in opt.param_groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # each once, the tied matrix too
    names = {id(p): n for n, p in model.named_parameters()}
    in_muon = {names[id(p)] for p in muon.param_groups[0]["params"]}
    assert in_muon == {f"transformer.h.{i}.{m}.weight" for i in range(2)
                       for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}
    decayed, not_decayed = ({names[id(p)] for p in g["params"]} for g in adamw.param_groups)
    assert decayed == {"transformer.wte.weight", "transformer.wpe.weight"}  # the head is the tied wte
    assert all(p.dim() == 1 for g in adamw.param_groups[1:] for p in g["params"])
    assert adamw.param_groups[0]["weight_decay"] == 0.1 and adamw.param_groups[1]["weight_decay"] == 0.0
    assert not_decayed and all(n.endswith(("bias", "ln_1.weight", "ln_2.weight", "ln_f.weight")) for n in not_decayed)


def test_adamw_alone_takes_every_parameter(nb):
    model = nb.GPT(nb.GPTConfig(block_size=16, vocab_size=65, n_layer=1, n_head=2, n_embd=32))
    tc = nb.TrainConfig(max_iters=1, batch_size=1, lr=1e-3, min_lr=1e-4, warmup_iters=1, eval_interval=1,
                        optimizer="adamw")
    (adamw,) = H.make_optimizers(model, tc, "fp32")
    assert sum(len(g["params"]) for g in adamw.param_groups) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="'sgd'"):
        H.make_optimizers(model, nb.TrainConfig(**{**tc.__dict__, "optimizer": "sgd"}), "fp32")


def test_the_schedule_scales_both_optimizers_alike(nb, data, monkeypatch):
    seen = []
    for cls in (torch.optim.AdamW, H.Muon):
        def step(self, *args, _step=cls.step, **kwargs):
            seen.append((type(self).__name__, [g["lr"] / g["peak_lr"] for g in self.param_groups]))
            return _step(self, *args, **kwargs)
        monkeypatch.setattr(cls, "step", step)
    small_run(nb, data, max_iters=10, eval_interval=10)
    tc = nb.TrainConfig(max_iters=10, batch_size=8, lr=3e-3, min_lr=3e-4, warmup_iters=5, eval_interval=10)
    assert [name for name, _ in seen] == ["AdamW", "Muon"] * 10
    for it in range(10):
        for _, scales in seen[2 * it : 2 * it + 2]:
            assert scales == pytest.approx([nb.lr_at(it, tc) / tc.lr] * len(scales))


def test_equal_time_comparison_takes_compilation_out_of_the_first_interval():
    # the first 500 iterations took 20 s, 10 s of them compilation: later ones run at 20 ms per iteration
    history = {"iter": [0, 500, 1000, 1250], "val_loss": [4.2, 1.6, 1.48, 1.46],
               "train_time_s": [0.0, 20.0, 30.0, 35.0]}
    assert H.steady_ms_per_iter(history) == pytest.approx(20.0)
    assert H.steady_train_times(history) == pytest.approx([0.0, 10.0, 20.0, 25.0])
    assert H.best_val_within(history, 15.0) == 1.6 and H.best_val_within(history, 25.0) == 1.46
    short = {"iter": [0, 10], "val_loss": [4.2, 3.0], "train_time_s": [0.0, 1.0]}  # too short to tell: unchanged
    assert H.steady_train_times(short) == [0.0, 1.0] and H.steady_ms_per_iter(short) is None
