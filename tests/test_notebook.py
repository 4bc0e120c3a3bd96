"""The notebook end to end, as the TA gets it: the hand-in notebook alone in an empty folder, executed headless in
the `smoke` profile without network; and the committed notebook and hand-in, as the course template and the
report expect them."""

import json
import re

import build_handin
import pytest
from conftest import ROOT

TEMPERATURES = ["1.5", "1.0", "0.8", "0.5", "0.1", "0.0001"]
FIGURES = ("char_freq", "baseline_loss", "optimizers", "attention", "temperature", "architectures", "large_loss",
           "overlay")


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell):
    return "".join(cell["source"])


@pytest.fixture(scope="module")
def committed():
    return json.loads((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, corpus_text):
    papermill = pytest.importorskip("papermill")
    import gpt_helpers as H

    folder = tmp_path_factory.mktemp("empty_folder")
    notebook = json.loads((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))
    handin = build_handin.self_contained(notebook, (ROOT / "gpt_helpers.py").read_text(encoding="utf-8"))
    (folder / "assignment3.ipynb").write_text(json.dumps(handin), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYSHAKESPEARE_PATH", str(H.DATA_PATH))  # no network: the corpus comes from this copy
        mp.delenv("PYTHONPATH", raising=False)  # nothing of this repository is importable there
        papermill.execute_notebook(str(folder / "assignment3.ipynb"), str(folder / "executed.ipynb"),
                                   cwd=str(folder), progress_bar=False, parameters=dict(PROFILE="smoke"))
    return folder


def test_the_hand_in_notebook_runs_alone_in_an_empty_folder(smoke_run):
    cells = code_cells(json.loads((smoke_run / "executed.ipynb").read_text(encoding="utf-8")))
    assert [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"] == []
    assert all(c.get("execution_count") for c in cells)
    assert (smoke_run / "gpt_helpers.py").read_text(encoding="utf-8") == (ROOT / "gpt_helpers.py").read_text(
        encoding="utf-8")


def test_the_smoke_run_records_every_result_the_report_reads(smoke_run):
    results = json.loads((smoke_run / "results" / "smoke.json").read_text(encoding="utf-8"))
    assert results["profile"] == "smoke" and set(results["machine"]) >= {"name", "device_type", "precision", "torch"}
    for run in [results["baseline"], results["muon"], results["large"], *results["architecture_sweep"].values(),
                *results["lr_sweep"].values()]:
        h = run["history"]
        assert len(h["iter"]) == len(h["val_loss"]) == len(h["train_loss"]) == len(h["tokens"])
        assert run["best_iter"] == h["iter"][h["val_loss"].index(min(h["val_loss"]))]
        assert run["n_params"] > 0 and run["memory_mb"] > 0 and run["tokens_per_s"] > 0
    assert len(results["architecture_sweep"]) == 6 and len(results["lr_sweep"]) == 3
    assert list(results["samples"]) == TEMPERATURES
    assert all(s.startswith("ROMEO:") for s in results["samples"].values())
    assert len(results["temperature_metrics"]["nll"]) == 6
    assert set(results["no_mask"]) == {"with the mask", "without the mask"}
    assert set(results["comparison"]) >= {"equal_tokens", "equal_time", "gain"}
    assert len(results["attention"]["itself"]) == results["baseline"]["config"]["n_head"]


def test_figures_are_written_per_profile_as_png_and_pdf(smoke_run):
    names = {p.name for p in (smoke_run / "figures").iterdir()}
    for stem in FIGURES:
        assert {f"{stem}_smoke.png", f"{stem}_smoke.pdf"} <= names


def test_the_checkpoints_hold_the_baseline_and_the_larger_model(smoke_run):
    assert sorted(p.name for p in (smoke_run / "checkpoints").iterdir()) == ["baseline_smoke.pt", "large_smoke.pt"]


def test_a_training_run_prints_one_line_and_one_finished_progress_bar(smoke_run):
    cells = code_cells(json.loads((smoke_run / "executed.ipynb").read_text(encoding="utf-8")))
    baseline = next(c for c in cells if '"baseline",' in source(c) and "train(model" in source(c))
    text = "".join("".join(o["text"]) for o in baseline["outputs"] if o["output_type"] == "stream")
    assert "\r" not in text and text.startswith("number of parameters:")
    bars = [o for o in baseline["outputs"] if o["output_type"] == "display_data"
            and "baseline:" in "".join(o["data"].get("text/plain", ""))]
    assert len(bars) == 1 and set(bars[0]["data"]) == {"text/plain"}  # plain text: no widget to go missing
    bar = "".join(bars[0]["data"]["text/plain"])
    assert "100%" in bar and "30/30" in bar and "left" in bar and "val " in bar and "\r" not in bar


def test_the_smoke_run_has_nothing_to_compare_with_the_reported_cpu_run(smoke_run):
    cells = code_cells(json.loads((smoke_run / "executed.ipynb").read_text(encoding="utf-8")))
    last = "".join("".join(o["data"]["text/markdown"]) for o in cells[-1]["outputs"] if "data" in o)
    assert last.startswith("Nothing to compare: the reported run used profile `cpu`, this run `smoke`")


def test_the_parameters_cell_holds_the_reported_runs_settings(committed):
    (params,) = [c for c in committed["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert re.search(r'^PROFILE = "cpu"', source(params), re.M)
    assert "reported" in {t for c in committed["cells"] for t in c["metadata"].get("tags", [])}


def test_no_code_cell_builds_an_answer_and_every_task_has_a_written_one(committed):
    assert not [c for c in code_cells(committed) if "Answer" in source(c) or "Markdown(f" in source(c)]
    answers = [source(c) for c in committed["cells"] if c["cell_type"] == "markdown"
               and source(c).startswith("**Answer (")]
    assert [a[len("**Answer ("):][0] for a in answers] == list("abcdefgh")


def test_the_notebook_contains_no_fused_attention():
    for path in (ROOT / "assignment3.ipynb", ROOT / "handin" / "assignment3.ipynb", ROOT / "gpt_helpers.py"):
        assert not re.search(r"scaled_dot_product_attention|MultiheadAttention|flash_attn",
                             path.read_text(encoding="utf-8"))


def test_the_committed_hand_in_is_the_committed_run_and_nothing_else(committed):
    assert sorted(p.name for p in (ROOT / "handin").iterdir()) == sorted(build_handin.FILES)
    handin = json.loads((ROOT / "handin" / "assignment3.ipynb").read_text(encoding="utf-8"))
    assert build_handin.embedded_helpers(handin) == (ROOT / "gpt_helpers.py").read_text(encoding="utf-8")
    assert handin == build_handin.self_contained(committed, (ROOT / "gpt_helpers.py").read_text(encoding="utf-8"))
    assert (ROOT / "handin" / "report.pdf").read_bytes() == (ROOT / "report" / "report.pdf").read_bytes()


def test_the_committed_notebook_ran_cleanly_and_shows_its_run_reproduced(committed):
    cells = code_cells(committed)
    assert all(c.get("execution_count") for c in cells)
    assert not [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    table = "".join("".join(o["data"]["text/markdown"]) for o in cells[-1]["outputs"] if "data" in o)
    verdicts = [row.split("|")[-2].strip() for row in table.splitlines() if row.startswith("| ") and "---" not in row]
    assert len(verdicts) > 20 and set(verdicts[1:]) == {"reproduced"}  # the header, then every loss


def test_the_hand_in_build_refuses_an_unexecuted_notebook(tmp_path):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.pdf").write_bytes(b"%PDF")
    (tmp_path / "gpt_helpers.py").write_text("", encoding="utf-8")
    (tmp_path / "assignment3.ipynb").write_text((ROOT / "assignment3.ipynb").read_text(encoding="utf-8").replace(
        '"execution_count": ', '"execution_count": null, "was": '), encoding="utf-8")
    with pytest.raises(SystemExit, match="did not run"):
        build_handin.build(tmp_path)
    assert not (tmp_path / "handin").exists()
