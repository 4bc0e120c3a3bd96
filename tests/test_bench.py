"""bench/bench.py --quick runs on the CPU at the notebook's SMOKE sizes and records what it measures (no timing
thresholds: speed is bench's)."""

import json
import math
import subprocess
import sys

from conftest import ROOT, notebook_cells


def test_the_quick_benchmark_runs_and_records_sane_numbers(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--quick", "--out", str(tmp_path)],
                   check=True, cwd=ROOT, capture_output=True)
    (path,) = tmp_path.glob("*-quick.json")
    result = json.loads(path.read_text(encoding="utf-8"))
    assert set(result) == {"machine", "torch", "quick", "date", "muon_over_adamw_step", "rows"} and result["quick"]
    smoke = notebook_cells("config", name="bench_test_config", SMOKE=True)
    train = [r for r in result["rows"] if r["what"] == "train step"]
    base, large = smoke.BASELINE, {**smoke.BASELINE, **smoke.ARCHITECTURES[smoke.LARGE]}
    assert {r["config"] for r in train} == {
        f"baseline: {base['n_block']} blocks, width {base['n_embd']}, block {base['block_size']}, "
        f"batch {smoke.BASELINE_TRAIN['batch_size']}",
        f"larger model: {large['n_block']} blocks, width {large['n_embd']}, block {large['block_size']}, "
        f"batch {smoke.SWEEP_TRAIN['batch_size']}"}
    assert {r["variant"] for r in train} == {"ours, AdamW", "fused attention, AdamW", "ours, Muon"}
    assert len(train) == 6 and all(r["ms"] > 0 and math.isfinite(r["tokens_per_s"]) for r in train)
    assert len([r for r in result["rows"] if r["what"] == "optimizer step"]) == 4
    assert [r["tokens_per_s"] > 0 for r in result["rows"] if r["what"] == "sampling"] == [True]
    assert result["muon_over_adamw_step"] > 0


def test_benchmarks_md_is_written_from_the_full_results_only(tmp_path):
    import bench

    row = {"what": "train step", "config": "baseline", "variant": "ours, AdamW", "ms": 170.0, "tokens_per_s": 12047}
    full = {"machine": "a test CPU", "torch": "2", "date": "today", "quick": False, "muon_over_adamw_step": 1.19,
            "rows": [row]}
    (tmp_path / "full.json").write_text(json.dumps(full), encoding="utf-8")
    (tmp_path / "quick.json").write_text(json.dumps({**full, "machine": "quick CPU", "quick": True}), encoding="utf-8")
    bench.write_markdown(tmp_path, tmp_path / "BENCHMARKS.md")
    table = (tmp_path / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert "## a test CPU" in table and "quick CPU" not in table
    assert "| baseline | ours, AdamW | 170.0 | 12,047 |" in table and "1.19 times" in table
    assert "float32" in table.split("\n## ")[0]  # the header says in which precision every section ran
