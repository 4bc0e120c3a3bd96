"""Benchmarks: our paths against their references, side by side in one process.

    python bench/bench.py            # full: training steps, optimisers, sampling, Muon against AdamW at equal time
    python bench/bench.py --quick    # CPU, small sizes, a minute or two: checks that everything runs

Training steps (the notebook's `train` itself, ms per iteration after warm-up): the model at nanoGPT's
shakespeare_char sizes against the same model computing attention with PyTorch's fused kernel (bench/reference.py;
never in the notebook), eager and, on CUDA, compiled; then this machine's profile (cpu or gpu), baseline and larger
model, with Muon + AdamW against AdamW alone, in float32 and, where the hardware has it natively, bf16.
Optimiser steps: one step of Muon (ours) + AdamW, of AdamW alone, and of torch.optim.Muon + AdamW, on random gradients.
Sampling: tokens/s of `GPT.sample`, batch 1 and one row per temperature of task (g).
Equal time: the notebook's (f) comparison (the profile's baseline with Muon + AdamW and with AdamW alone); the best
validation loss each had reached after the same seconds, and the time each needed to reach val <= 1.47.
Writes bench/results/<machine>.json and, in full mode, the tables in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import re
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from reference import use_fused_attention  # noqa: E402

import gpt_helpers as H  # noqa: E402

nb = H.notebook_cells("model", "train", name="bench_notebook")
cells = H.notebook_cells("profiles", name="bench_profiles")  # the notebook's configurations and temperatures
PROFILES, TEMPERATURES = cells.PROFILES, cells.TEMPERATURES
TARGET = 1.47  # the gpu profile's target for its baseline


def build(cfg, fused: bool, device):
    torch.manual_seed(0)
    model = nb.GPT(cfg).to(device)
    if fused:
        use_fused_attention(model)
    return model


def time_training(cfg, batch_size, device, precision, fused, compiled, steps, optimizer="muon"):
    """(seconds of the first interval, steady ms per step) of the notebook's `train` itself: batches, forward,
    backward, clipping, the optimisers, the NaN check. Evaluation is on a few windows and not timed."""
    model = build(cfg, fused, device)
    interval = steps  # evaluations at 0, steps, 2 steps, 3 steps; the first interval holds warm-up and compilation
    tc = nb.TrainConfig(max_iters=3 * interval, batch_size=batch_size, lr=1e-3, min_lr=1e-4, warmup_iters=1,
                        eval_interval=interval, precision=precision, compile=compiled, optimizer=optimizer)
    ids = torch.randint(0, cfg.vocab_size, (64 * cfg.block_size,), generator=torch.Generator().manual_seed(0))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rec = nb.train(model, tc, ids, ids[: 2 * cfg.block_size + 1], vocab_chars="")
    return rec["history"]["train_time_s"][1], rec["ms_per_iter"]


def time_optimizer_steps(cfg, device, precision, repeats=5) -> dict[str, float]:
    """Median ms of one optimiser step on the model's parameters with random gradients: ours (Muon + AdamW), AdamW
    alone, and torch.optim.Muon where this torch has it (it casts to bf16 whatever the hardware)."""
    model = build(cfg, False, device)
    tc = nb.TrainConfig(max_iters=1, batch_size=1, lr=1e-3, min_lr=1e-4, warmup_iters=1, eval_interval=1)
    candidates = {"Muon (ours) + AdamW": H.make_optimizers(model, tc, precision),
                  "AdamW alone": H.make_optimizers(model, nb.TrainConfig(**{**asdict(tc), "optimizer": "adamw"}),
                                                    precision)}
    if hasattr(torch.optim, "Muon"):
        adamw, ours = candidates["Muon (ours) + AdamW"]
        theirs = torch.optim.Muon([p for g in ours.param_groups for p in g["params"]], lr=0.02, weight_decay=0.0)
        candidates["torch.optim.Muon + AdamW"] = [adamw, theirs]
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    times = {}
    for name, optimizers in candidates.items():
        samples = []
        for _ in range(repeats + 1):
            H.sync(device)
            t0 = time.perf_counter()
            for opt in optimizers:
                opt.step()
            H.sync(device)
            samples.append(time.perf_counter() - t0)
        times[name] = 1000 * statistics.median(samples[1:])
    return times


def time_sampling(cfg, device, temperatures, new_tokens, repeats=3):
    """Tokens per second of GPT.sample, one row per temperature; the median of `repeats` generations."""
    model = build(cfg, False, device).eval()
    tau = torch.tensor(temperatures, device=device)
    prompt = torch.zeros(len(temperatures), 1, dtype=torch.long, device=device)
    model.sample(prompt, 8, tau)  # warm-up
    speeds = []
    for _ in range(repeats):
        H.sync(device)
        t0 = time.perf_counter()
        model.sample(prompt, new_tokens, tau, generator=torch.Generator(device).manual_seed(0))
        H.sync(device)
        speeds.append(len(temperatures) * new_tokens / (time.perf_counter() - t0))
    return statistics.median(speeds)


def compare_optimizers(spec: dict, adamw_iters: int, device, data) -> dict:
    """The notebook's (f) comparison: the baseline trained with Muon + AdamW and with AdamW alone (the profile's
    `adamw` run); best val after the same seconds, and the time each needed to reach TARGET."""
    vocab, train_ids, val_ids = data
    runs = {}
    for name, overrides in [("Muon + AdamW (ours)", {}), ("AdamW alone", {"optimizer": "adamw",
                                                                         "max_iters": adamw_iters})]:
        torch.manual_seed(1337)
        model = nb.GPT(nb.GPTConfig(vocab_size=len(vocab), **spec["model"])).to(device)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rec = nb.train(model, nb.TrainConfig(**{**spec["train"], **overrides}), train_ids, val_ids,
                           vocab_chars="".join(vocab.chars))
        h = rec["history"]
        hit = next((i for i, v in enumerate(h["val_loss"]) if v <= TARGET), None)
        runs[name] = {"iters": rec["iters_done"], "train_time_s": rec["train_time_s"],
                      "ms_per_iter": rec["ms_per_iter"], "best_val_loss": rec["best_val_loss"], "history": h,
                      "time_to_target_s": h["train_time_s"][hit] if hit is not None else None}
        print(f"optim  {name:<30}: best val {rec['best_val_loss']:.4f} after {rec['iters_done']} iterations, "
              f"{rec['train_time_s']:.1f} s", flush=True)
    return {"config": spec["model"], "batch_size": spec["train"]["batch_size"], "target": TARGET, "runs": runs}


def machine_name(device) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", H.device_name(device).lower()).strip("-")
    return f"{device.type}-{slug}"[:80]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes on the CPU, a minute or two")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for <machine>.json")
    parser.add_argument("--no-markdown", action="store_true", help="do not rewrite BENCHMARKS.md")
    parser.add_argument("--markdown-only", action="store_true",
                        help="measure nothing: rewrite BENCHMARKS.md from the result files (e.g. a GPU run's)")
    args = parser.parse_args(argv)
    if args.markdown_only:
        return write_markdown(args.out)

    device = torch.device("cpu") if args.quick else H.pick_device()
    text = H.load_text()
    vocab = H.Vocab(text)
    data = (vocab, *H.split_ids(vocab.encode(text)))
    precision = H.auto_precision(device)
    profile = "smoke" if args.quick else ("gpu" if device.type == "cuda" else "cpu")
    if args.quick:
        train_cfg = nb.GPTConfig(block_size=64, vocab_size=len(vocab), n_layer=2, n_head=2, n_embd=64)
        train_batch, steps, sample_tokens = 16, 2, 64
    else:
        recipe = PROFILES["gpu"]["baseline"]  # nanoGPT's shakespeare_char sizes
        train_cfg = nb.GPTConfig(vocab_size=len(vocab), **recipe["model"])
        train_batch, steps, sample_tokens = recipe["train"]["batch_size"], (10 if device.type == "cuda" else 2), 256

    rows = []

    def step_row(config_label, variant, cfg, batch, option, fused=False, compiled=False, optimizer="muon", n=steps):
        first_s, ms = time_training(cfg, batch, device, option, fused, compiled, n, optimizer)
        tokens = batch * cfg.block_size
        rows.append({"what": "train step", "config": config_label, "variant": variant, "precision": option,
                     "first_interval_s": first_s, "ms_per_iter": ms, "tokens_per_s": tokens / ms * 1000})
        print(f"train  {config_label[:40]:<40} {variant:<34} {option}: {ms:8.1f} ms/iter "
              f"{tokens / ms * 1000:10,.0f} tokens/s", flush=True)
        return ms

    # attention from primitives against PyTorch's fused kernel, nanoGPT's sizes
    label = "quick" if args.quick else "nanoGPT shakespeare_char sizes (6x384, block 256, batch 64)"
    variants = [("ours (manual attention)", False, False), ("reference (fused attention)", True, False)]
    if device.type == "cuda":
        variants += [("ours, compiled", False, True), ("reference, compiled", True, True)]
    for variant, fused, compiled in variants:
        step_row(label, variant, train_cfg, train_batch, precision, fused, compiled)

    # Muon against AdamW, the whole training step, on this machine's profile: float32, and bf16 where native
    options = ["fp32"] + (["bf16"] if precision == "bf16" else [])
    ratios = {}
    for run in ("baseline", "large"):
        spec = PROFILES[profile][run]
        cfg, batch = nb.GPTConfig(vocab_size=len(vocab), **spec["model"]), spec["train"]["batch_size"]
        label = (f"{profile} profile {run} ({cfg.n_layer}x{cfg.n_embd}, block {cfg.block_size}, batch {batch})")
        for option in options:
            compiled, n = device.type == "cuda", 2 if args.quick else 10
            muon = step_row(label, "Muon (ours) + AdamW", cfg, batch, option, compiled=compiled, n=n)
            adamw = step_row(label, "AdamW alone", cfg, batch, option, compiled=compiled, optimizer="adamw", n=n)
            ratios[f"{run}, {option}"] = muon / adamw
        optimizer_steps = {option: time_optimizer_steps(cfg, device, option) for option in options}
        for option, times in optimizer_steps.items():
            for name, ms in times.items():
                rows.append({"what": "optimizer step", "config": label, "variant": name, "precision": option,
                             "ms": ms})
                print(f"optim  {label[:40]:<40} {name:<34} {option}: {ms:8.1f} ms/step", flush=True)

    sample_cfg = nb.GPTConfig(**{**asdict(train_cfg), "dropout": 0.0})
    for temperatures in ([1.0], TEMPERATURES):
        speed = time_sampling(sample_cfg, device, temperatures, sample_tokens)
        rows.append({"what": "sampling", "batch": len(temperatures), "new_tokens": sample_tokens,
                     "tokens_per_s": speed})
        print(f"sample batch {len(temperatures)}: {speed:8,.0f} tokens/s", flush=True)

    P = PROFILES[profile]
    comparison = compare_optimizers(P["baseline"], P["adamw"]["max_iters"], device, data)
    result = {"machine": H.device_name(device), "device_type": device.type, "torch": torch.__version__,
              "cpu_bf16_flags": sorted(H.cpu_flags() & H.CPU_BF16_FLAGS), "muon_over_adamw_step": ratios,
              "python": platform.python_version(), "commit": H.git_commit(), "quick": args.quick,
              "date": time.strftime("%Y-%m-%d"), "precision": precision, "profile": profile,
              "sample_model_params": nb.GPT(sample_cfg).n_params(), "rows": rows, "optimizers": comparison,
              "peak_memory_mb": H.peak_memory_mb(device)}
    name = machine_name(device) + ("-quick" if args.quick else "")
    H.write_json(args.out / f"{name}.json", result)
    print(f"wrote {args.out / (name + '.json')}")
    if not args.quick and not args.no_markdown:
        write_markdown(args.out)
    return result


def optimizer_table(c: dict) -> list[str]:
    """The equal-time comparison, derived from the runs' histories on the steady time axis (H.steady_train_times)."""
    m = c["config"]
    common = min(H.steady_train_times(r["history"])[-1] for r in c["runs"].values())
    lines = [f"\n| {m['n_layer']}x{m['n_embd']}, block {m['block_size']}, batch {c['batch_size']} | iterations | "
             f"training (s) | ms/iter | best val within {common:.1f} s | best val | "
             f"time to val ≤ {c['target']} (s) |", "|---|---|---|---|---|---|---|"]
    for name, r in c["runs"].items():
        hit = f"{r['time_to_target_s']:.1f}" if r["time_to_target_s"] is not None else "not reached"
        lines.append(f"| {name} | {r['iters']} | {r['train_time_s']:.1f} | {r['ms_per_iter']:.1f} | "
                     f"{H.best_val_within(r['history'], common):.4f} | {r['best_val_loss']:.4f} | {hit} |")
    return lines


def write_markdown(folder: Path, dest: Path = ROOT / "BENCHMARKS.md"):
    """BENCHMARKS.md: one section per machine, from the full (non-quick) result files."""
    parts = ["# Benchmarks\n", "Written by `python bench/bench.py` from `bench/results/*.json`; each section is one "
             "run on the machine it names, by the code of the commit it names. Training rows run the notebook's "
             "`train` on random data and report milliseconds per iteration after the first evaluation interval "
             "(batches, forward, backward, clipping, the optimisers). Optimiser rows time one optimiser step on "
             "random gradients (the median of 5). Sampling rows draw new tokens from a one-character prompt (the "
             "median of 3 runs). The equal-time table trains the profile's baseline twice, as the notebook's (f) "
             "does. Its training time excludes evaluation and includes compilation, as does the time to the target "
             "loss; the equal-time column compares the runs with compilation and warm-up taken out (the first "
             "evaluation interval counted at the run's steady speed), since they depend on the compile cache, not "
             "on the optimiser.\n"]
    for path in sorted(folder.glob("*.json")):
        r = json.loads(path.read_text())
        if r.get("quick"):
            continue
        flags = r.get("cpu_bf16_flags")
        flag_text = "" if flags is None else f"CPU bf16 instructions: {', '.join(flags) or 'none'}; "
        parts.append(f"\n## {r['machine']}\n\n{flag_text}torch {r['torch']}, commit `{r['commit']}`, "
                     f"{r['date']}; peak memory {r['peak_memory_mb']:,.0f} MiB\n\n"
                     "| training | precision | ms/iter | tokens/s |\n|---|---|---|---|")
        for row in r["rows"]:
            if row["what"] == "train step":
                parts.append(f"| {row['config']}: {row['variant']} | {row['precision']} | {row['ms_per_iter']:.1f} | "
                             f"{row['tokens_per_s']:,.0f} |")
        if r.get("muon_over_adamw_step"):
            parts.append("\n| whole training step, Muon + AdamW over AdamW alone | ratio |\n|---|---|")
            parts += [f"| {k} | {v:.2f}x |" for k, v in r["muon_over_adamw_step"].items()]
        optimizer_rows = [row for row in r["rows"] if row["what"] == "optimizer step"]
        if optimizer_rows:
            parts.append("\n| optimiser step | precision | ms |\n|---|---|---|")
            parts += [f"| {row['config']}: {row['variant']}"
                      + (" (casts to bf16 whatever the precision)" if row["variant"].startswith("torch.optim") else "")
                      + f" | {row['precision']} | {row['ms']:.1f} |" for row in optimizer_rows]
        parts.append(f"\n| sampling ({r['sample_model_params']:,} parameters) | tokens/s |\n|---|---|")
        for row in r["rows"]:
            if row["what"] == "sampling":
                parts.append(f"| batch {row['batch']}, {row['new_tokens']} new tokens | {row['tokens_per_s']:,.0f} |")
        parts += optimizer_table(r["optimizers"])
    dest.write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
