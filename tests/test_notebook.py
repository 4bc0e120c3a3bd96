"""The notebook end to end, as the TA gets it: the hand-in notebook alone in an empty folder, executed headless in
the `smoke` profile without network; and the committed hand-in is the committed run."""

import json
import re
import sys

import pytest
from conftest import ROOT

import gpt_helpers as H

sys.path.insert(0, str(ROOT / "tools"))
import build_handin  # noqa: E402

TEMPERATURES = ["1.5", "1.0", "0.8", "0.5", "0.1", "0.0001"]


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, corpus_text):
    papermill = pytest.importorskip("papermill")
    folder = tmp_path_factory.mktemp("empty_folder")
    source = json.loads((ROOT / "assignment3.ipynb").read_text())
    (folder / "assignment3.ipynb").write_text(json.dumps(build_handin.self_contained(
        source, (ROOT / "gpt_helpers.py").read_text(), build_handin.reported_runs())))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYSHAKESPEARE_PATH", str(H.DATA_PATH))  # no network: the corpus comes from this copy
        mp.delenv("PYTHONPATH", raising=False)  # nothing of this repository is importable there
        papermill.execute_notebook(str(folder / "assignment3.ipynb"), str(folder / "executed.ipynb"),
                                   cwd=str(folder), progress_bar=False, parameters=dict(PROFILE="smoke"))
    return folder


def test_hand_in_notebook_runs_alone_in_an_empty_folder(smoke_run):
    cells = code_cells(json.loads((smoke_run / "executed.ipynb").read_text()))
    errors = [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    assert all(c.get("execution_count") for c in cells)
    assert (smoke_run / "gpt_helpers.py").read_text() == (ROOT / "gpt_helpers.py").read_text()


def test_smoke_run_records_every_result_the_report_reads(smoke_run):
    results = json.loads((smoke_run / "results" / "smoke.json").read_text())
    assert results["profile"] == "smoke" and results["profile_reason"] == "chosen by hand"
    assert set(results["hardware"]) >= {"device", "torch", "precision"}
    for name in ("baseline", "large"):
        run = results[name]
        assert set(run) >= {"config", "n_params", "best_val_loss", "best_iter", "final_val_loss", "train_time_s",
                            "tokens_per_s", "history"}
        assert len(run["history"]["iter"]) == len(run["history"]["val_loss"]) == len(run["history"]["train_loss"])
        assert run["best_val_loss"] == min(run["history"]["val_loss"])
    assert list(results["samples"]) == TEMPERATURES
    assert all(s.startswith("ROMEO:") for s in results["samples"].values())
    assert len(results["temperature_metrics"]["nll"]) == 6
    comparison = results["optimizer_comparison"]
    assert comparison["muon"]["iters"] == 40 and comparison["adamw"]["iters"] == 50
    assert len(results["attention"]["shares"]["itself"]) == results["baseline"]["config"]["n_head"]


def test_figures_are_written_per_profile_as_png_and_pdf(smoke_run):
    names = {p.name for p in (smoke_run / "figures").iterdir()}
    for stem in ("char_freq", "baseline_loss", "optimizers", "attention", "large_loss", "temperature"):
        assert {f"{stem}_smoke.png", f"{stem}_smoke.pdf"} <= names


def test_saved_training_output_is_a_few_lines_and_one_finished_progress_bar(smoke_run):
    cells = code_cells(json.loads((smoke_run / "executed.ipynb").read_text()))
    baseline = next(c for c in cells if 'build_and_train("baseline", P["baseline"])' in "".join(c["source"]))
    text = "".join("".join(o["text"]) for o in baseline["outputs"] if o["output_type"] == "stream")
    assert len(text.splitlines()) <= 10 and "\r" not in text
    bars = [o for o in baseline["outputs"] if o["output_type"] == "display_data" and "baseline:" in
            "".join(o["data"].get("text/plain", ""))]
    assert len(bars) == 1 and set(bars[0]["data"]) == {"text/plain"}  # plain text: no widget to go missing
    bar = "".join(bars[0]["data"]["text/plain"])
    assert "100%" in bar and "40/40" in bar and "left" in bar and "val " in bar and "\r" not in bar


def test_notebook_contains_no_fused_attention():
    for path in (ROOT / "assignment3.ipynb", ROOT / "handin" / "assignment3.ipynb", ROOT / "gpt_helpers.py"):
        assert not re.search(r"scaled_dot_product_attention|MultiheadAttention|flash_attn", path.read_text())


def test_parameters_cell_is_tagged_for_papermill():
    cells = json.loads((ROOT / "assignment3.ipynb").read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and 'PROFILE = "auto"' in "".join(tagged[0]["source"])


def test_committed_hand_in_is_the_committed_run_and_nothing_else():
    assert sorted(p.name for p in (ROOT / "handin").iterdir()) == sorted(build_handin.FILES)
    handin = json.loads((ROOT / "handin" / "assignment3.ipynb").read_text())
    source = json.loads((ROOT / "assignment3.ipynb").read_text())
    assert build_handin.embedded_helpers(handin) == (ROOT / "gpt_helpers.py").read_text()
    others = [c for c in handin["cells"] if not {"helpers", "reported"} & set(c["metadata"].get("tags", []))]
    assert [c["source"] for c in code_cells({"cells": others})] == [c["source"] for c in code_cells(source)]
    reported = build_handin.reported_runs()
    assert set(reported) == {results_profile()}  # the committed run, and only runs of this code
    assert handin == build_handin.self_contained(source, (ROOT / "gpt_helpers.py").read_text(), reported)
    assert (ROOT / "handin" / "report.pdf").read_bytes() == (ROOT / "report" / "report.pdf").read_bytes()


def results_profile():
    """The profile of the committed notebook's run."""
    return re.findall(r"wrote results/(\w+)\.json", (ROOT / "assignment3.ipynb").read_text())[-1]


def test_smoke_run_ends_with_the_reproduction_section(smoke_run):
    cells = code_cells(json.loads((smoke_run / "executed.ipynb").read_text()))
    last = "".join("".join(o["data"]["text/markdown"]) for o in cells[-1]["outputs"] if "data" in o)
    assert last.startswith("**Nothing to compare with:** no run of profile smoke")  # smoke is never reported


def test_hand_in_build_refuses_an_unexecuted_notebook(tmp_path):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.pdf").write_bytes(b"%PDF")
    (tmp_path / "gpt_helpers.py").write_text("")
    (tmp_path / "assignment3.ipynb").write_text((ROOT / "assignment3.ipynb").read_text().replace(
        '"execution_count": ', '"execution_count": null, "was": '))
    with pytest.raises(SystemExit, match="did not run"):
        build_handin.build(tmp_path)
    assert not (tmp_path / "handin").exists()
