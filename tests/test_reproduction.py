"""The reproduction check at the end of the notebook: a re-run's losses against the reported run's, with verdicts;
and the reported numbers the committed notebook holds are those of the run on record."""

import copy
import json

import pytest
import set_reported
from conftest import ROOT, notebook_cells

H = notebook_cells("reproduction", name="reproduction_cell")  # reported_numbers, reproduction_table


def run(best, final):
    return {"best_val_loss": best, "best_iter": 10, "history": {"iter": [0, 10, 20], "val_loss": [4.2, best, final]}}


def results(profile="cpu", baseline=1.62, device_type="cpu", precision="fp32"):
    return {"profile": profile, "machine": {"device_type": device_type, "precision": precision},
            "baseline": run(baseline, baseline + 0.01), "muon": run(1.55, 1.55),
            "architecture_sweep": {"baseline": run(2.1, 2.1), "6 blocks": run(2.0, 2.0)},
            "lr_sweep": {"0.004": run(2.0, 2.0)}, "samples": {"1.0": "ROMEO:"}, "no_mask": {"x": {"val_loss": 0.1}}}


def verdicts(table: str) -> dict[tuple[str, str], str]:
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith("| ") and "---" not in line]
    return {(r[0], r[1]): r[5] for r in rows[1:]}


def test_every_training_run_is_reported_with_its_best_and_final_loss():
    numbers = H.reported_numbers(results())
    assert numbers["runs"] == {"baseline": {"best_val_loss": 1.62, "final_val_loss": 1.63},
                               "muon": {"best_val_loss": 1.55, "final_val_loss": 1.55},
                               "architecture_sweep: baseline": {"best_val_loss": 2.1, "final_val_loss": 2.1},
                               "architecture_sweep: 6 blocks": {"best_val_loss": 2.0, "final_val_loss": 2.0},
                               "lr_sweep: 0.004": {"best_val_loss": 2.0, "final_val_loss": 2.0}}
    assert (numbers["profile"], numbers["device_type"], numbers["precision"]) == ("cpu", "cpu", "fp32")


def test_a_matching_run_is_reproduced():
    v = verdicts(H.reproduction_table(H.reported_numbers(results()), results()))
    assert len(v) == 10 and set(v.values()) == {"reproduced"}


def test_a_loss_beyond_the_tolerance_differs_and_one_within_it_is_reproduced():
    reported = H.reported_numbers(results())
    far = verdicts(H.reproduction_table(reported, results(baseline=1.62 + 2 * H.LOSS_TOLERANCE)))
    assert far[("baseline", "best_val_loss")] == "**differs**" and far[("muon", "best_val_loss")] == "reproduced"
    near = verdicts(H.reproduction_table(reported, results(baseline=1.62 + 0.5 * H.LOSS_TOLERANCE)))
    assert near[("baseline", "best_val_loss")] == "reproduced"


def test_a_run_missing_from_this_run_differs():
    current = results()
    del current["muon"]
    assert verdicts(H.reproduction_table(H.reported_numbers(results()), current))[("muon", "best_val_loss")] == (
        "**differs**")


def test_another_device_is_named_and_still_compared():
    table = H.reproduction_table(H.reported_numbers(results()), results(device_type="cuda"))
    assert "on a cpu in fp32; this run: a cuda in fp32" in table and "reproduced" in table


@pytest.mark.parametrize("reported", [None, H.reported_numbers(results(profile="gpu"))])
def test_another_profile_or_none_has_nothing_to_compare(reported):
    assert H.reproduction_table(reported, results()).startswith("Nothing to compare")


def test_the_committed_notebook_holds_the_numbers_of_the_run_on_record():
    nb = json.loads((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))
    record = json.loads((ROOT / "results" / f"{set_reported.notebook_profile(nb)}.json").read_text(encoding="utf-8"))
    (cell,) = [c for c in nb["cells"] if "reported" in c["metadata"].get("tags", [])]
    assert "".join(cell["source"]) == set_reported.reported_cell(record)


def test_set_reported_rewrites_the_cell_only_when_the_results_change(tmp_path):
    nb = json.loads((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))
    (tmp_path / "results").mkdir()
    record = results()
    (tmp_path / "results" / "cpu.json").write_text(json.dumps(record), encoding="utf-8")
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    assert set_reported.set_reported(path, tmp_path / "results") is True
    assert set_reported.set_reported(path, tmp_path / "results") is False
    changed = copy.deepcopy(record)
    changed["baseline"]["best_val_loss"] = 1.7
    (tmp_path / "results" / "cpu.json").write_text(json.dumps(changed), encoding="utf-8")
    assert set_reported.set_reported(path, tmp_path / "results") is True
    namespace = {}
    cell = next(c for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
                if "reported" in c["metadata"].get("tags", []))
    exec("".join(cell["source"]), namespace)
    assert namespace["REPORTED"]["runs"]["baseline"]["best_val_loss"] == 1.7
