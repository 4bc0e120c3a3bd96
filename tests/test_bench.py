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
