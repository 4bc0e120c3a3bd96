"""bench/bench.py --quick runs on the CPU and records what it measures (no timing thresholds: speed is bench's)."""

import json
import math
import subprocess
import sys

from conftest import ROOT


def test_quick_benchmark_runs_and_records_sane_numbers(tmp_path, corpus_text):
    subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--quick", "--out", str(tmp_path)],
                   check=True, cwd=ROOT)
    (path,) = tmp_path.glob("*-quick.json")
    result = json.loads(path.read_text())
    assert result["quick"] and result["torch"] and result["machine"] and result["precision"] in ("fp32", "bf16")
    train = [r for r in result["rows"] if r["what"] == "train step"]
    sampling = [r for r in result["rows"] if r["what"] == "sampling"]
    steps = [r for r in result["rows"] if r["what"] == "optimizer step"]
    assert {r["variant"] for r in train} >= {"ours (manual attention)", "reference (fused attention)",
                                             "Muon (ours) + AdamW", "AdamW alone"}
    assert all(r["ms_per_iter"] > 0 and math.isfinite(r["tokens_per_s"]) for r in train)
    assert {r["variant"] for r in steps} >= {"Muon (ours) + AdamW", "AdamW alone"} and all(r["ms"] > 0 for r in steps)
    assert set(result["muon_over_adamw_step"]) >= {"baseline, fp32", "large, fp32"}
    assert [r["batch"] for r in sampling] == [1, 6]  # one row per temperature of task (g)
    assert all(r["tokens_per_s"] > 0 for r in sampling)
    runs = result["optimizers"]["runs"]
    assert set(runs) == {"Muon + AdamW (ours)", "AdamW alone"}
    for run in runs.values():
        assert run["best_val_loss"] == min(run["history"]["val_loss"]) and run["train_time_s"] > 0


def test_benchmarks_table_says_whether_the_loss_target_was_reached(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import bench

    # 10 s of compilation in the first interval, then 20 ms per iteration: 25 s of steady training in all
    history = {"iter": [0, 500, 1000, 1250], "val_loss": [4.2, 1.6, 1.48, 1.46],
               "train_time_s": [0.0, 20.0, 30.0, 35.0]}
    run = {"iters": 1250, "train_time_s": 35.0, "ms_per_iter": 20.0, "best_val_loss": 1.46, "history": history}
    result = {"machine": "a test machine", "torch": "2", "commit": "abc", "date": "today", "peak_memory_mb": 1.0,
              "rows": [], "sample_model_params": 1, "quick": False,
              "optimizers": {"config": {"n_layer": 6, "n_embd": 384, "block_size": 256}, "batch_size": 64,
                             "target": 1.47,
                             "runs": {"hit": {**run, "time_to_target_s": 35.0},
                                      "miss": {**run, "time_to_target_s": None}}}}
    (tmp_path / "gpu.json").write_text(json.dumps(result))
    bench.write_markdown(tmp_path, tmp_path / "BENCHMARKS.md")
    table = (tmp_path / "BENCHMARKS.md").read_text()
    assert "| hit | 1250 | 35.0 | 20.0 | 1.4600 | 1.4600 | 35.0 |" in table
    assert "| miss | 1250 | 35.0 | 20.0 | 1.4600 | 1.4600 | not reached |" in table
    assert "best val within 25.0 s" in table and "time to val ≤ 1.47 (s)" in table
