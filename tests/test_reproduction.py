"""The reproduction check at the end of the notebook: a re-run's numbers against the reported run's, with verdicts."""

import copy
import json

import pytest

import gpt_helpers as H


def record(best, final, iters=700, params=1_000):
    """A training record whose validation loss ends at `final`: the best at the end if final <= best, else at
    the middle evaluation (then rising)."""
    middle = best + 0.1 if final <= best else best
    history = {"iter": [0, iters // 2, iters], "val_loss": [4.2, middle, final], "train_loss": [4.2, 1.5, 1.4]}
    best_at = 2 if final <= best else 1
    return {"n_params": params, "best_val_loss": history["val_loss"][best_at], "best_iter": history["iter"][best_at],
            "final_val_loss": final, "iters_done": iters, "train_time_s": 150.0, "ms_per_iter": 220.0,
            "history": history}


def results(profile="cpu", precision="fp32", device_type="cpu", code="abc", baseline=1.62, large=1.55):
    return {"profile": profile, "date": "2026-11-28", "code_version": code,
            "hardware": {"device": "a CPU", "device_type": device_type, "precision": precision, "torch": "2.13",
                         "cpu_bf16_flags": []},
            "baseline": record(baseline, baseline), "adamw": record(1.65, 1.65, iters=920),
            "large": record(large, large + 0.01)}


def verdicts(report: str) -> dict[str, list[str]]:
    """Row label -> the verdict column of every table."""
    out = {}
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 5 and cells[0] not in ("", "---"):
            out.setdefault(cells[0], []).append(cells[4])
    return out


def test_a_matching_run_is_reproduced():
    reported = H.run_summary(results())
    report = H.reproduction_report(reported, H.run_summary(results()))
    v = verdicts(report)
    assert v["best_val_loss"] == v["final_val_loss"] == ["reproduced"] * 3  # baseline, adamw, large
    assert v["n_params"] == ["reproduced"] * 3 and v["how it ended"] == ["same"] * 3
    assert all(x.startswith("for information") for x in v["train_time_s"])
    assert "Same code." in report and "Ranking" in report and "(same)" in report


def test_a_loss_beyond_the_tolerance_differs():
    reported = H.run_summary(results())
    changed = results(baseline=1.62 + 2 * H.LOSS_TOLERANCE)
    v = verdicts(H.reproduction_report(reported, H.run_summary(changed)))
    assert v["best_val_loss"][0].startswith("**differs**") and v["best_val_loss"][1:] == ["reproduced"] * 2
    within = results(baseline=1.62 + 0.5 * H.LOSS_TOLERANCE)
    assert verdicts(H.reproduction_report(reported, H.run_summary(within)))["best_val_loss"][0] == "reproduced"


@pytest.mark.parametrize("other", [dict(profile="gpu", device_type="cuda", precision="bf16"), dict(precision="bf16")])
def test_another_profile_or_precision_is_not_comparable(other):
    reported = H.run_summary(results(profile="gpu", device_type="cuda", precision="bf16")
                             if other.get("profile") else results())
    current = H.run_summary(results(**({} if other.get("profile") else other)))
    report = H.reproduction_report(reported, current)
    assert "**Not comparable**" in report
    assert set(verdicts(report)["best_val_loss"]) == set(verdicts(report)["best_iter"]) == {"not comparable"}
    same_profile = "profile" not in other
    assert set(verdicts(report)["n_params"]) == ({"reproduced"} if same_profile else {"not comparable"})
    assert verdicts(report)["how it ended"] == ["same"] * 3  # what still compares


def test_other_code_is_said():
    report = H.reproduction_report(H.run_summary(results(code="old")), H.run_summary(results(code="new")))
    assert "**The reported run ran other code**" in report


def test_a_run_is_compared_with_its_own_profile_or_the_other_large_one():
    reported = {"cpu": {"profile": "cpu"}, "gpu": {"profile": "gpu"}}
    assert H.pick_reported(reported, "cpu")["profile"] == "cpu"
    assert H.pick_reported({"gpu": reported["gpu"]}, "cpu")["profile"] == "gpu"
    assert H.pick_reported(reported, "smoke") is None
    assert H.reproduction_report(None, H.run_summary(results(profile="smoke"))).startswith("**Nothing to compare")


def test_source_version_sees_code_cells_and_helpers_only(tmp_path):
    def notebook(cells):
        return {"cells": [{"cell_type": t, "metadata": {"tags": tags}, "source": src} for t, tags, src in cells]}

    base = [("markdown", [], "# title"), ("code", ["parameters"], 'PROFILE = "auto"'), ("code", [], "x = 1")]
    helpers = tmp_path / "gpt_helpers.py"
    helpers.write_text("def f(): pass\n")
    versions = []
    for cells in (base, [*base[:2], ("code", ["helpers"], "%%writefile ..."), base[2]],  # a hand-in's cells
                  [base[0], ("code", ["parameters"], 'PROFILE = "cpu"'), base[2]],  # other parameters
                  [base[0], ("markdown", [], "other prose"), base[1], base[2]],
                  [*base[:2], ("code", [], "x = 2")]):  # other code
        path = tmp_path / "nb.ipynb"
        path.write_text(json.dumps(notebook(cells)))
        versions.append(H.source_version(path, helpers))
    assert versions[0] == versions[1] == versions[2] == versions[3] != versions[4]
    helpers.write_text("def f(): return 1\n")
    assert H.source_version(path, helpers) != versions[4]
    assert H.source_version(tmp_path / "missing.ipynb", helpers) is None


def test_the_summary_reads_every_training_run():
    summary = H.run_summary(copy.deepcopy(results()))
    assert set(summary["runs"]) == {"baseline", "adamw", "large"}
    assert summary["runs"]["large"]["ended"] == "overfitting" and summary["runs"]["baseline"]["ended"] == (
        "still improving")
