"""bench/bench.py --quick runs on the CPU and reports sane numbers (no timing thresholds)."""

import json
import math
import subprocess
import sys

from conftest import ROOT


def test_quick_benchmark_runs_and_records_sane_numbers(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--quick", "--out", str(tmp_path)],
                   check=True, cwd=ROOT, timeout=300)
    (path,) = tmp_path.glob("*-quick.json")
    result = json.loads(path.read_text())
    assert result["quick"] and result["torch"] and result["machine"]
    train = [r for r in result["rows"] if r["what"] == "train step"]
    sampling = [r for r in result["rows"] if r["what"] == "sampling"]
    assert {r["variant"] for r in train} >= {"ours (manual attention)", "reference (fused attention)"}
    assert all(0 < r["ms_per_iter"] < 60_000 and math.isfinite(r["tokens_per_s"]) for r in train)
    assert [r["batch"] for r in sampling] == [1, 6]
    assert all(r["cached_tokens_per_s"] > 0 and r["uncached_tokens_per_s"] > 0 for r in sampling)


def test_benchmarks_table_says_whether_the_loss_target_was_reached(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import bench

    recorded = json.loads(next((ROOT / "bench" / "results").glob("cpu-*.json")).read_text())
    targets = {"hit": {"target": 1.47, "reached": True, "iter": 900, "elapsed_s": 21.25, "best_val_loss": 1.46},
               "miss": {"target": 1.47, "reached": False, "iter": None, "elapsed_s": None, "best_val_loss": 1.49}}
    for name, target in targets.items():
        (tmp_path / f"{name}.json").write_text(json.dumps({**recorded, "time_to_target": target}))
    bench.write_markdown(tmp_path, tmp_path / "BENCHMARKS.md")
    table = (tmp_path / "BENCHMARKS.md").read_text()
    assert "Time to val ≤ 1.47: 21.2 s (iteration 900" in table and "Val ≤ 1.47 was not reached (best 1.4900)" in table
