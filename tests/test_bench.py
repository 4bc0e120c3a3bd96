"""bench/bench.py --quick runs on the CPU and records sane numbers (no timing thresholds)."""

import json
import math
import subprocess
import sys

from conftest import ROOT


def test_quick_benchmark_runs_and_records_sane_numbers(tmp_path, corpus_text):
    subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--quick", "--out", str(tmp_path)],
                   check=True, cwd=ROOT, timeout=300)
    (path,) = tmp_path.glob("*-quick.json")
    result = json.loads(path.read_text())
    assert result["quick"] and result["torch"] and result["machine"] and result["precision"] in ("fp32", "bf16")
    train = [r for r in result["rows"] if r["what"] == "train step"]
    sampling = [r for r in result["rows"] if r["what"] == "sampling"]
    assert {r["variant"] for r in train} >= {"ours (manual attention)", "reference (fused attention)"}
    assert all(0 < r["ms_per_iter"] < 60_000 and math.isfinite(r["tokens_per_s"]) for r in train)
    assert [r["batch"] for r in sampling] == [1, 6]  # one row per temperature of task (g)
    assert all(r["tokens_per_s"] > 0 for r in sampling)
    runs = result["optimizers"]["runs"]
    assert set(runs) == {"ours (Muon + AdamW)", "AdamW, nanoGPT's recipe"}
    common = result["optimizers"]["common_time_s"]
    for run in runs.values():
        within = [v for v, t in zip(run["history"]["val_loss"], run["history"]["train_time_s"]) if t <= common]
        assert run["best_val_within_common_s"] == min(within)
        assert run["best_val_loss"] <= run["best_val_within_common_s"]


def test_benchmarks_table_says_whether_the_loss_target_was_reached(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import bench

    run = {"iters": 900, "train_time_s": 30.0, "ms_per_iter": 20.0, "best_val_loss": 1.46,
           "best_val_within_common_s": 1.48, "history": {}}
    result = {"machine": "a test machine", "torch": "2", "commit": "abc", "date": "today", "peak_memory_mb": 1.0,
              "rows": [], "sample_model_params": 1, "quick": False,
              "optimizers": {"config": {"n_layer": 6, "n_embd": 384, "block_size": 256}, "batch_size": 64,
                             "common_time_s": 25.0, "target": 1.47,
                             "runs": {"hit": {**run, "time_to_target_s": 21.25},
                                      "miss": {**run, "best_val_loss": 1.49, "time_to_target_s": None}}}}
    (tmp_path / "gpu.json").write_text(json.dumps(result))
    bench.write_markdown(tmp_path, tmp_path / "BENCHMARKS.md")
    table = (tmp_path / "BENCHMARKS.md").read_text()
    assert "| hit | 900 | 30.0 | 20.0 | 1.4800 | 1.4600 | 21.2 |" in table
    assert "| miss | 900 | 30.0 | 20.0 | 1.4800 | 1.4900 | not reached |" in table
    assert "best val within 25.0 s" in table and "time to val ≤ 1.47 (s)" in table
