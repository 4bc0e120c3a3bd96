"""Benchmarks: our code against its references, side by side in one process, on the CPU only, in float32.

    python bench/bench.py            # the notebook's sizes (its config cell)
    python bench/bench.py --quick    # its SMOKE sizes, a minute: checks that everything runs

Training steps: the notebook's `train` itself (batches, forward, backward, clipping, the optimiser), milliseconds
per iteration after the first, for the notebook's baseline and larger model: our attention from primitives against
the same model computing attention with PyTorch's fused kernel (bench/reference.py, never in the notebook), and
AdamW from get_optimizer against our Muon (MuonAdamW). The Muon/AdamW ratio of the baseline is what the notebook's
MUON_ITERS rests on (equal training time in (f)); it varies by several percent from run to run on a small machine.
Optimiser steps: one step of each on random gradients. Sampling: new characters per second of GPT.sample for one prompt.
Writes bench/results/<machine>.json and the tables in BENCHMARKS.md.
"""

import argparse
import contextlib
import io
import json
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from nbcode import notebook_cells  # noqa: E402
from reference import use_fused_attention  # noqa: E402

import gpt_helpers as H  # noqa: E402

nb = notebook_cells("model", "train", name="bench_notebook")


def build(sizes: dict, fused=False):
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):  # GPT prints its size
        model = nb.GPT(nb.GPTConfig(vocab_size=65, **sizes))
    if fused:
        use_fused_attention(model)
    return model


def optimizer(model, kind: str):
    if kind == "AdamW":
        return model.get_optimizer(0.1, 1e-3, (0.9, 0.99), "cpu")
    return H.MuonAdamW(model, 1e-3, 0.02, 0.1, (0.9, 0.99))


def time_training(sizes, batch_size, steps, kind="AdamW", fused=False) -> float:
    """Milliseconds per iteration of the notebook's `train` (its own clock: evaluation and the first step left out)."""
    model = build(sizes, fused)
    config = nb.TrainConfig(max_iters=steps + 1, batch_size=batch_size, warmup_iters=1, eval_interval=steps + 1,
                            eval_tokens=sizes["block_size"])
    ids = torch.randint(0, 65, (64 * sizes["block_size"],), generator=torch.Generator().manual_seed(0))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        record = nb.train(model, optimizer(model, kind), config, ids, ids[: 2 * sizes["block_size"] + 1],
                          "bench")
    return record["ms_per_iter"]


def time_optimizer_step(sizes, kind, repeats=5) -> float:
    """Median milliseconds of one optimiser step on random gradients."""
    model = build(sizes)
    opt = optimizer(model, kind)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times[1:])


def time_sampling(sizes, new_tokens, repeats=3) -> float:
    """New characters per second of GPT.sample for one prompt (the median of `repeats`)."""
    model = build({**sizes, "dropout": 0.0}).eval()
    prompt = torch.zeros(1, 1, dtype=torch.long)
    model.sample(prompt, 8)  # warm-up
    speeds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.sample(prompt, new_tokens)
        speeds.append(new_tokens / (time.perf_counter() - t0))
    return statistics.median(speeds)


def machine() -> str:
    name = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
        name = next((line.split(":")[1].strip() for line in lines if line.startswith("model name")), name)
    return f"{name}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()} kernels"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the notebook's SMOKE sizes, a minute")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for <machine>.json")
    parser.add_argument("--markdown-only", action="store_true", help="measure nothing: rewrite BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.markdown_only:
        return write_markdown(args.out)
    name, cfg = machine(), notebook_cells("config", name="bench_config", SMOKE=args.quick)
    large = {**cfg.BASELINE, **cfg.ARCHITECTURES[cfg.LARGE]}
    configs = {"baseline": (cfg.BASELINE, cfg.BASELINE_TRAIN["batch_size"]),
               "larger model": (large, cfg.SWEEP_TRAIN["batch_size"])}
    steps = 3 if args.quick else 20
    rows = []
    for label, (sizes, batch_size) in configs.items():
        shape = (f"{label}: {sizes['n_block']} blocks, width {sizes['n_embd']}, block {sizes['block_size']}, "
                 f"batch {batch_size}")
        for variant, kind, fused in (("ours, AdamW", "AdamW", False), ("fused attention, AdamW", "AdamW", True),
                                     ("ours, Muon", "Muon", False)):
            ms = time_training(sizes, batch_size, steps, kind, fused)
            rows.append({"what": "train step", "config": shape, "variant": variant, "ms": ms,
                         "tokens_per_s": batch_size * sizes["block_size"] / ms * 1000})
            print(f"train  {shape:<60} {variant:<24} {ms:8.1f} ms/iter", flush=True)
        for kind in ("AdamW", "Muon"):
            ms = time_optimizer_step(sizes, kind)
            rows.append({"what": "optimizer step", "config": shape, "variant": kind, "ms": ms})
            print(f"optim  {shape:<60} {kind:<24} {ms:8.1f} ms/step", flush=True)
    speed = time_sampling(cfg.BASELINE, 64 if args.quick else 500)
    rows.append({"what": "sampling", "config": "baseline", "tokens_per_s": speed})
    print(f"sample baseline: {speed:,.0f} characters/s", flush=True)
    step = {r["variant"]: r["ms"] for r in rows if r["what"] == "train step" and r["config"].startswith("baseline")}
    result = {"machine": name, "torch": torch.__version__, "quick": args.quick, "date": time.strftime("%Y-%m-%d"),
              "muon_over_adamw_step": step["ours, Muon"] / step["ours, AdamW"], "rows": rows}
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] + ("-quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{slug}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out / (slug + '.json')}; Muon step / AdamW step = {result['muon_over_adamw_step']:.2f}")
    if not args.quick:
        write_markdown(args.out)
    return result


def write_markdown(folder: Path, dest: Path = ROOT / "BENCHMARKS.md"):
    """BENCHMARKS.md: one section per machine, from the full (not quick) result files."""
    parts = ["# Benchmarks\n", "Written by `python bench/bench.py` from `bench/results/*.json`; each section is one "
             "run on the CPU it names, in float32. Training rows run the notebook's `train` on random data: "
             "milliseconds per iteration, evaluation and the first step left out. Optimiser rows time one step on "
             "random gradients (the median of 5). Sampling draws 500 characters from a one-character prompt (the "
             "median of 3).\n"]
    for path in sorted(folder.glob("*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        if r.get("quick"):
            continue
        parts.append(f"\n## {r['machine']}\n\ntorch {r['torch']}, {r['date']}. A Muon training step of the baseline "
                     f"costs {r['muon_over_adamw_step']:.2f} times an AdamW step.\n\n"
                     "| training step | variant | ms/iter | tokens/s |\n|---|---|---|---|")
        parts += [f"| {row['config']} | {row['variant']} | {row['ms']:.1f} | {row['tokens_per_s']:,.0f} |"
                  for row in r["rows"] if row["what"] == "train step"]
        parts.append("\n| optimiser step | optimiser | ms |\n|---|---|---|")
        parts += [f"| {row['config']} | {row['variant']} | {row['ms']:.1f} |"
                  for row in r["rows"] if row["what"] == "optimizer step"]
        parts += [f"\nSampling, {row['config']}: {row['tokens_per_s']:,.0f} characters per second."
                  for row in r["rows"] if row["what"] == "sampling"]
    dest.write_text("\n".join(parts) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
