"""Benchmarks: our paths against their references, side by side in one process.

    python bench/bench.py            # full: training steps, sampling, and Muon against AdamW at equal time
    python bench/bench.py --quick    # CPU, small sizes, a minute or two: checks that everything runs

Training steps: ms/iter and tokens/s of the notebook's model (nanoGPT's shakespeare_char sizes) against the same
model computing attention with PyTorch's fused kernel (bench/reference.py; never in the notebook), eager and, on
CUDA, compiled. On a CPU also float32 against bf16 on the cpu profile's baseline: what the precision rule decides.
Sampling: tokens/s of `GPT.sample`, batch 1 and one row per temperature of task (g).
Optimisers: the profile's baseline trained with ours (Muon + AdamW) and with nanoGPT's AdamW recipe; the best
validation loss each had reached after the same seconds, and on CUDA the time each needed to reach val <= 1.47.
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
import subprocess
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
NANOGPT_ADAMW = dict(optimizer="adamw", lr=1e-3, min_lr=1e-4, warmup_iters=100, weight_decay=0.1, beta1=0.9,
                     beta2=0.99)  # nanoGPT's shakespeare_char optimiser settings
TARGET = 1.47  # nanoGPT's published best validation loss on this data, rounded


def build(cfg, fused: bool, device):
    torch.manual_seed(0)
    model = nb.GPT(cfg).to(device)
    if fused:
        use_fused_attention(model)
    return model


def time_training(cfg, batch_size, device, precision, fused, compiled, steps):
    """(first-step seconds, median ms per step after warm-up) for forward, backward, clipping and the optimisers."""
    model = build(cfg, fused, device)
    tc = nb.TrainConfig(max_iters=steps, batch_size=batch_size, lr=1e-3, min_lr=1e-4, warmup_iters=1,
                        eval_interval=steps, precision=precision)
    optimizers = nb.make_optimizers(model, tc)
    step_model = torch.compile(model) if compiled else model
    x = torch.randint(0, cfg.vocab_size, (batch_size, cfg.block_size + 1), device=device,
                      generator=torch.Generator(device).manual_seed(0))
    times = []
    for _ in range(steps):
        H.sync(device)
        t0 = time.perf_counter()
        with H.autocast(device, precision):
            _, loss = step_model(x[:, :-1], x[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for opt in optimizers:
            opt.step()
            opt.zero_grad(set_to_none=True)
        H.sync(device)
        times.append(time.perf_counter() - t0)
    warm = times[2:] if len(times) > 4 else times[1:]
    return times[0], 1000 * statistics.median(warm)


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
    """The baseline trained with ours and with nanoGPT's AdamW: best val after the same seconds, time to TARGET."""
    vocab, train_ids, val_ids = data
    runs = {}
    for name, overrides in [("ours (Muon + AdamW)", {}), ("AdamW, nanoGPT's recipe",
                                                         {**NANOGPT_ADAMW, "max_iters": adamw_iters})]:
        torch.manual_seed(1337)
        model = nb.GPT(nb.GPTConfig(vocab_size=len(vocab), **spec["model"])).to(device)
        with contextlib.redirect_stdout(io.StringIO()):  # the loop's per-evaluation lines
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


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


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
        train_batch, steps, sample_tokens = 16, 8, 64
    else:
        recipe = PROFILES["gpu"]["baseline"]  # nanoGPT's shakespeare_char sizes
        train_cfg = nb.GPTConfig(vocab_size=len(vocab), **recipe["model"])
        train_batch, steps, sample_tokens = recipe["train"]["batch_size"], (30 if device.type == "cuda" else 5), 256

    variants = [("ours (manual attention)", False, False), ("reference (fused attention)", True, False)]
    if device.type == "cuda":
        variants += [("ours, compiled", False, True), ("reference, compiled", True, True)]
    rows = []
    config_label = "quick" if args.quick else "nanoGPT shakespeare_char sizes (6x384, block 256, batch 64)"
    for label, fused, compiled in variants:
        first_s, ms = time_training(train_cfg, train_batch, device, precision, fused, compiled, steps)
        tokens = train_batch * train_cfg.block_size
        rows.append({"what": "train step", "config": config_label, "variant": label, "precision": precision,
                     "first_step_s": first_s, "ms_per_iter": ms, "tokens_per_s": tokens / ms * 1000})
        print(f"train  {label:<30} {precision}: {ms:8.1f} ms/iter {tokens / ms * 1000:10,.0f} tokens/s "
              f"(first step {first_s:.1f} s)", flush=True)
    if device.type == "cpu":  # the precision rule's two options on the cpu profile's baseline
        spec = PROFILES["cpu"]["baseline"]
        cfg, batch = nb.GPTConfig(vocab_size=len(vocab), **spec["model"]), spec["train"]["batch_size"]
        label = f"cpu profile baseline ({cfg.n_layer}x{cfg.n_embd}, block {cfg.block_size}, batch {batch})"
        for option in ("fp32", "bf16"):
            first_s, ms = time_training(cfg, batch, device, option, False, False, 6 if args.quick else 12)
            tokens = batch * cfg.block_size
            rows.append({"what": "train step", "config": label, "variant": f"ours, {option}", "precision": option,
                         "first_step_s": first_s, "ms_per_iter": ms, "tokens_per_s": tokens / ms * 1000})
            print(f"cpu    ours, {option:<24}: {ms:8.1f} ms/iter {tokens / ms * 1000:10,.0f} tokens/s", flush=True)

    sample_cfg = nb.GPTConfig(**{**asdict(train_cfg), "dropout": 0.0})
    for temperatures in ([1.0], TEMPERATURES):
        speed = time_sampling(sample_cfg, device, temperatures, sample_tokens)
        rows.append({"what": "sampling", "batch": len(temperatures), "new_tokens": sample_tokens,
                     "tokens_per_s": speed})
        print(f"sample batch {len(temperatures)}: {speed:8,.0f} tokens/s", flush=True)

    P = PROFILES[profile]
    comparison = compare_optimizers(P["baseline"], P["adamw"]["max_iters"], device, data)
    result = {"machine": H.device_name(device), "device_type": device.type, "torch": torch.__version__,
              "python": platform.python_version(), "commit": git_commit(), "quick": args.quick,
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
             "run on the machine it names. Training rows time forward, backward, clipping and the optimisers on a "
             "fixed batch; sampling rows draw new tokens from a one-character prompt (the median of 3 runs). The "
             "optimiser table trains the profile's baseline twice. Its training time excludes evaluation and "
             "includes compilation, as does the time to the target loss; the equal-time column compares the runs "
             "with compilation and warm-up taken out (the first evaluation interval counted at the run's steady "
             "speed), since they depend on the compile cache, not on the optimiser.\n"]
    for path in sorted(folder.glob("*.json")):
        r = json.loads(path.read_text())
        if r.get("quick"):
            continue
        parts.append(f"\n## {r['machine']}\n\ntorch {r['torch']}, commit `{r['commit']}`, {r['date']}; "
                     f"peak memory {r['peak_memory_mb']:,.0f} MiB\n\n| training | precision | ms/iter | tokens/s |"
                     "\n|---|---|---|---|")
        for row in r["rows"]:
            if row["what"] == "train step":
                parts.append(f"| {row['config']}: {row['variant']} | {row['precision']} | {row['ms_per_iter']:.1f} | "
                             f"{row['tokens_per_s']:,.0f} |")
        parts.append(f"\n| sampling ({r['sample_model_params']:,} parameters) | tokens/s |\n|---|---|")
        for row in r["rows"]:
            if row["what"] == "sampling":
                parts.append(f"| batch {row['batch']}, {row['new_tokens']} new tokens | {row['tokens_per_s']:,.0f} |")
        parts += optimizer_table(r["optimizers"])
    dest.write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
