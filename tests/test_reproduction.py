"""The reproduction check at the end of the notebook: a re-run's losses against the reference run's, with verdicts;
the numbers the committed notebook holds are those of its runs on record; and the record tool sets this run's entry
just before the reference cell runs."""

import json
import pprint

import nbformat
import pytest
import record_run
from conftest import ROOT, notebook_cells

H = notebook_cells("reproduction", name="reproduction_cell")  # reported_numbers, reproduction_table


def run(best, final, iters=20):
    return {"best_val_loss": best, "best_iter": 10, "history": {"iter": [0, 10, iters], "val_loss": [4.2, best, final]}}


def results(profile="cpu", baseline=1.62, device_type="cpu", precision="fp32", muon_iters=20):
    return {"profile": profile, "machine": {"device_type": device_type, "precision": precision},
            "baseline": run(baseline, baseline + 0.01), "muon": run(1.55, 1.55, muon_iters),
            "architecture_sweep": {"baseline": run(2.1, 2.1), "6 blocks": run(2.0, 2.0)},
            "lr_sweep": {"0.004": run(2.0, 2.0)}, "samples": {"1.0": "ROMEO:"}, "no_mask": {"x": {"val_loss": 0.1}}}


def verdicts(table: str) -> dict[tuple[str, str], str]:
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith("| ") and "---" not in line]
    return {(r[0], r[1]): r[5] for r in rows[1:]}


def test_every_training_run_is_reported_with_its_length_and_its_best_and_final_loss():
    numbers = H.reported_numbers(results())
    assert numbers["runs"] == {
        "baseline": {"iters": 20, "best_val_loss": 1.62, "final_val_loss": 1.63},
        "muon": {"iters": 20, "best_val_loss": 1.55, "final_val_loss": 1.55},
        "architecture_sweep: baseline": {"iters": 20, "best_val_loss": 2.1, "final_val_loss": 2.1},
        "architecture_sweep: 6 blocks": {"iters": 20, "best_val_loss": 2.0, "final_val_loss": 2.0},
        "lr_sweep: 0.004": {"iters": 20, "best_val_loss": 2.0, "final_val_loss": 2.0}}
    assert (numbers["device_type"], numbers["precision"]) == ("cpu", "fp32")


def test_a_matching_run_is_reproduced():
    v = verdicts(H.reproduction_table(H.reported_numbers(results()), results()))
    assert len(v) == 10 and set(v.values()) == {"reproduced"}


def test_a_loss_beyond_the_tolerance_differs_and_one_within_it_is_reproduced():
    reference = H.reported_numbers(results())
    far = verdicts(H.reproduction_table(reference, results(baseline=1.62 + 2 * H.LOSS_TOLERANCE)))
    assert far[("baseline", "best_val_loss")] == "**differs**" and far[("muon", "best_val_loss")] == "reproduced"
    near = verdicts(H.reproduction_table(reference, results(baseline=1.62 + 0.5 * H.LOSS_TOLERANCE)))
    assert near[("baseline", "best_val_loss")] == "reproduced"


def test_a_run_missing_from_this_run_is_missing():
    current = results()
    del current["muon"]
    assert verdicts(H.reproduction_table(H.reported_numbers(results()), current))[("muon", "best_val_loss")] == (
        "**missing**")


def test_a_run_of_another_length_is_not_compared():
    v = verdicts(H.reproduction_table(H.reported_numbers(results()), results(muon_iters=18)))
    assert v[("muon", "best_val_loss")] == "not comparable: 18 iterations, the reference 20"
    assert v[("baseline", "best_val_loss")] == "reproduced"


def test_another_device_is_named_and_still_compared():
    table = H.reproduction_table(H.reported_numbers(results()), results(device_type="cuda"))
    assert "Reference: a cpu in fp32; this run: a cuda in fp32" in table and "reproduced" in table


def test_a_profile_without_a_run_on_record_has_nothing_to_compare():
    assert H.reproduction_table(None, results(profile="gpu")).startswith(
        "Nothing to compare: this notebook carries no run on record of profile `gpu`")


def cell_source(nb: dict, tag: str) -> str:
    (cell,) = [c for c in nb["cells"] if tag in c["metadata"].get("tags", [])]
    return "".join(cell["source"])


def test_the_committed_notebook_holds_the_numbers_of_each_of_its_runs_on_record():
    nb = json.loads((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))
    reference = record_run.reference_entries(cell_source(nb, "reference"))
    on_record = record_run.profiles_on_record(cell_source(nb, "profiles"))
    assert list(reference) == on_record
    for profile in on_record:
        record = json.loads((ROOT / "results" / f"{profile}.json").read_text(encoding="utf-8"))
        assert reference[profile] == H.reported_numbers(record), f"REFERENCE[{profile!r}] is not results/{profile}.json"


@pytest.fixture
def reproduction_notebook(tmp_path):
    """A notebook file holding the committed notebook's reproduction cell, as the record tool reads it."""
    committed = json.loads((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))
    cell = nbformat.v4.new_code_cell(cell_source(committed, "reproduction"))
    cell.metadata["tags"] = ["reproduction"]
    path = tmp_path / "assignment3.ipynb"
    path.write_text(nbformat.writes(nbformat.v4.new_notebook(cells=[cell])), encoding="utf-8")
    return path


def reference_cell(entries: dict):
    cell = nbformat.v4.new_code_cell(f"# runs on record\nREFERENCE = {pprint.pformat(entries, sort_dicts=False)}")
    cell.metadata["tags"] = ["reference"]
    return cell


def test_just_before_the_reference_cell_runs_it_gets_the_numbers_this_execution_wrote(tmp_path,
                                                                                      reproduction_notebook):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "cpu.json").write_text(json.dumps(results(baseline=1.7)), encoding="utf-8")
    gpu = H.reported_numbers(results(profile="gpu", device_type="cuda", precision="bf16"))
    cell, other = reference_cell({"cpu": H.reported_numbers(results()), "gpu": gpu}), nbformat.v4.new_code_cell("1")
    set_reference = record_run.reference_setter(tmp_path, reproduction_notebook, "cpu")
    set_reference(cell=cell, cell_index=5)
    set_reference(cell=other, cell_index=6)
    namespace = {}
    exec(cell.source, namespace)
    assert namespace["REFERENCE"] == {"cpu": H.reported_numbers(results(baseline=1.7)), "gpu": gpu}
    assert cell.source.startswith("# runs on record\nREFERENCE = ") and other.source == "1"
