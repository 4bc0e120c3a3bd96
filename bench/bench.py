"""Benchmarks: our paths against their references, side by side in one process.

    python bench/bench.py            # full: baseline-size model (6 layers, 384 wide, block 256, batch 64)
    python bench/bench.py --quick    # CPU, at most ~2 minutes, small sizes: checks that everything runs

Training: ms/iter and tokens/s of the notebook's model against a copy that differs only in calling
PyTorch's fused attention (`F.scaled_dot_product_attention`, which lives here, never in the notebook), eager and
compiled where compiling is chosen. Sampling: tokens/s with and without the KV cache (256 new tokens from a
one-character prompt, batch 1 and 6). On CUDA also the time for the gpu profile's baseline to reach val <= 1.47.
Writes bench/results/<machine>.json and, in full mode, the table in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import gpt_helpers as H  # noqa: E402

nb = H.notebook_cells("model", "train", name="bench_notebook")
PROFILES = H.notebook_cells("profiles", name="bench_profiles").PROFILES  # the notebook's configurations


class FusedCausalSelfAttention(nb.CausalSelfAttention):
    """The reference: identical parameters and projections; attention by PyTorch's fused kernel."""

    def forward(self, x, *, cache=None):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        p = self.attn_dropout.p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))


def build(cfg, fused: bool, device):
    torch.manual_seed(0)
    model = nb.GPT(cfg).to(device)
    if fused:
        for block in model.transformer.h:
            block.attn.__class__ = FusedCausalSelfAttention
    return model


def time_training(cfg, batch_size, device, precision, fused, compiled, steps):
    """(first-step seconds, median ms per step after warm-up) for forward, backward and AdamW."""
    model = build(cfg, fused, device)
    tc = nb.TrainConfig(max_iters=steps, batch_size=batch_size, lr=1e-3, min_lr=1e-4, warmup_iters=1,
                        eval_interval=steps, precision=precision)
    opt = nb.make_optimizer(model, tc, device)
    step_model = torch.compile(model) if compiled else model
    gen = torch.Generator(device).manual_seed(0)
    x = torch.randint(0, cfg.vocab_size, (batch_size, cfg.block_size + 1), device=device, generator=gen)
    times = []
    for _ in range(steps):
        nb.sync(device)
        t0 = time.perf_counter()
        with nb.autocast(device, precision):
            _, loss = step_model(x[:, :-1], x[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        nb.sync(device)
        times.append(time.perf_counter() - t0)
    warm = times[2:] if len(times) > 4 else times[1:]
    return times[0], 1000 * statistics.median(warm)


def time_sampling(cfg, device, rows, new_tokens, use_cache, repeats=3):
    """Tokens per second, the median of `repeats` generations (single runs vary by +-10% on a small CPU)."""
    model = build(cfg, False, device).eval()
    prompt = torch.zeros(rows, 1, dtype=torch.long, device=device)
    model.sample(prompt, 8, use_cache=use_cache)  # warm-up
    speeds = []
    for _ in range(repeats):
        nb.sync(device)
        t0 = time.perf_counter()
        model.sample(prompt, new_tokens, generator=torch.Generator(device).manual_seed(0), use_cache=use_cache)
        nb.sync(device)
        speeds.append(rows * new_tokens / (time.perf_counter() - t0))
    return statistics.median(speeds)


def time_to_target(device, target=1.47):
    """Seconds from the start of training (compile included) until the gpu baseline's val loss <= target."""
    text = H.load_text()
    vocab = H.Vocab(text)
    train_ids, val_ids = H.split_ids(vocab.encode(text))
    spec = PROFILES["gpu"]["baseline"]
    torch.manual_seed(1337)
    model = nb.GPT(nb.GPTConfig(vocab_size=len(vocab), **spec["model"])).to(device)
    rec = nb.train(model, nb.TrainConfig(**spec["train"]), train_ids, val_ids, vocab_chars="".join(vocab.chars))
    h = rec["history"]
    hit = next((i for i, v in enumerate(h["val_loss"]) if v <= target), None)
    return {"target": target, "reached": hit is not None, "iter": h["iter"][hit] if hit is not None else None,
            "elapsed_s": h["elapsed_s"][hit] if hit is not None else None,
            "train_time_s": h["train_time_s"][hit] if hit is not None else None, "best_val_loss": rec["best_val_loss"]}


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
    parser.add_argument("--quick", action="store_true", help="small sizes on the CPU, about 2 minutes at most")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for <machine>.json")
    parser.add_argument("--no-markdown", action="store_true", help="do not rewrite BENCHMARKS.md")
    parser.add_argument("--markdown-only", action="store_true",
                        help="measure nothing: rewrite BENCHMARKS.md from the result files (e.g. a GPU run's)")
    args = parser.parse_args(argv)
    if args.markdown_only:
        return write_markdown(args.out)

    device = torch.device("cpu") if args.quick or not torch.cuda.is_available() else torch.device("cuda")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    vocab_size = 65
    if args.quick:
        train_cfg = nb.GPTConfig(block_size=64, vocab_size=vocab_size, n_layer=2, n_head=2, n_embd=64)
        train_batch, steps, sample_tokens = 16, 8, 64
    else:
        gpu_base = PROFILES["gpu"]["baseline"]  # nanoGPT's shakespeare_char recipe
        train_cfg = nb.GPTConfig(vocab_size=vocab_size, **gpu_base["model"])
        train_batch, steps, sample_tokens = gpu_base["train"]["batch_size"], (30 if device.type == "cuda" else 5), 256
    sample_cfg = train_cfg if args.quick else nb.GPTConfig(**{**asdict(train_cfg), "dropout": 0.0})
    # the recipe nanoGPT documents for CPUs, trained by our loop's step against the fused reference
    cpu_recipe = nb.GPTConfig(block_size=64, vocab_size=vocab_size, n_layer=4, n_head=4, n_embd=128)

    precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    variants = [("ours (manual attention)", False, False), ("reference (fused attention)", True, False)]
    if device.type == "cuda":
        variants += [("ours, compiled", False, True), ("reference, compiled", True, True)]

    rows = []
    tokens_per_step = train_batch * train_cfg.block_size
    for label, fused, compiled in variants:
        first_s, ms = time_training(train_cfg, train_batch, device, precision, fused, compiled, steps)
        rows.append({"what": "train step", "config": "baseline" if not args.quick else "quick", "variant": label,
                     "precision": precision, "first_step_s": first_s, "ms_per_iter": ms,
                     "tokens_per_s": tokens_per_step / ms * 1000})
        print(f"train  {label:<30} {precision}: {ms:8.1f} ms/iter {tokens_per_step / ms * 1000:10,.0f} tokens/s "
              f"(first step {first_s:.1f} s)", flush=True)
    if device.type == "cpu":
        # what the notebook's "auto" settings choose between on a CPU, on the cpu profile's baseline
        cpu_spec = PROFILES["cpu"]["baseline"]
        cpu_base, cpu_batch = nb.GPTConfig(vocab_size=vocab_size, **cpu_spec["model"]), cpu_spec["train"]["batch_size"]
        cpu_label = (f"cpu profile baseline ({cpu_base.n_layer}x{cpu_base.n_embd}, block {cpu_base.block_size}, "
                     f"batch {cpu_batch})")
        options = [("fp32", False), ("bf16", False)] + ([] if args.quick else [("fp32", True), ("bf16", True)])
        for precision_option, compiled in options:
            first_s, ms = time_training(cpu_base, cpu_batch, device, precision_option, False, compiled,
                                        6 if args.quick else 12)
            label = f"ours, {precision_option}{', compiled' if compiled else ', eager'}"
            tokens = cpu_batch * cpu_base.block_size
            rows.append({"what": "train step", "config": cpu_label, "variant": label, "precision": precision_option,
                         "first_step_s": first_s, "ms_per_iter": ms, "tokens_per_s": tokens / ms * 1000})
            print(f"cpu    {label:<30}: {ms:8.1f} ms/iter {tokens / ms * 1000:10,.0f} tokens/s "
                  f"(first step {first_s:.1f} s)", flush=True)
        for label, fused in [("ours (manual attention)", False), ("reference (fused attention)", True)]:
            _, ms = time_training(cpu_recipe, 12, device, "fp32", fused, False, 6 if args.quick else 20)
            rows.append({"what": "train step", "config": "nanoGPT CPU recipe (4x128, block 64, batch 12)",
                         "variant": label, "precision": "fp32", "ms_per_iter": ms,
                         "tokens_per_s": 12 * 64 / ms * 1000})
            print(f"recipe {label:<30} fp32: {ms:8.1f} ms/iter {12 * 64 / ms * 1000:10,.0f} tokens/s", flush=True)

    for batch in (1, 6):
        speeds = {c: time_sampling(sample_cfg, device, batch, sample_tokens, c) for c in (True, False)}
        rows.append({"what": "sampling", "batch": batch, "new_tokens": sample_tokens,
                     "cached_tokens_per_s": speeds[True], "uncached_tokens_per_s": speeds[False],
                     "speedup": speeds[True] / speeds[False]})
        print(f"sample batch {batch}: cached {speeds[True]:8,.0f} tokens/s, uncached {speeds[False]:8,.0f} "
              f"tokens/s ({speeds[True] / speeds[False]:.1f}x)", flush=True)

    target = time_to_target(device) if device.type == "cuda" and not args.quick else None
    if target:
        print(f"time to val <= {target['target']}: {target['elapsed_s']} s (iteration {target['iter']})")

    result = {"machine": H.device_name(device),
              "device_type": device.type, "torch": torch.__version__, "python": platform.python_version(),
              "commit": git_commit(), "quick": args.quick, "date": time.strftime("%Y-%m-%d"),
              "sample_model_params": nb.GPT(sample_cfg).n_params(), "rows": rows, "time_to_target": target,
              "peak_memory_mb": nb.peak_memory_mb(device)}
    name = machine_name(device) + ("-quick" if args.quick else "")
    H.write_json(args.out / f"{name}.json", result)
    print(f"wrote {args.out / (name + '.json')}")
    if not args.quick and not args.no_markdown:
        write_markdown(args.out)
    return result


def write_markdown(folder: Path, dest: Path = ROOT / "BENCHMARKS.md"):
    """BENCHMARKS.md: one table per machine, from the full (non-quick) result files."""
    import json

    parts = ["# Benchmarks\n", "Written by `python bench/bench.py` from `bench/results/*.json`; each table is one "
             "run on the machine it names. Training rows time forward, backward, clipping and AdamW on a fixed "
             "batch; sampling rows draw new tokens from a one-character prompt (the median of 3 runs).\n"]
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
        parts.append(f"\n| sampling ({r['sample_model_params']:,} parameters) | cached tokens/s | uncached tokens/s | "
                     "speed-up |\n|---|---|---|---|")
        for row in r["rows"]:
            if row["what"] == "sampling":
                parts.append(f"| batch {row['batch']}, {row['new_tokens']} new tokens | "
                             f"{row['cached_tokens_per_s']:,.0f} | {row['uncached_tokens_per_s']:,.0f} | "
                             f"{row['speedup']:.1f}x |")
        if r.get("time_to_target"):
            t = r["time_to_target"]
            parts.append(f"\nTime to val ≤ {t['target']}: {t['elapsed_s']:.1f} s (iteration {t['iter']}, compile and "
                         "evaluation included)." if t["reached"] else
                         f"\nVal ≤ {t['target']} was not reached (best {t['best_val_loss']:.4f}).")
    dest.write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
