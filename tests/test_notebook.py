"""The notebook end to end, as the TA gets it: one run of tools/record_run.py in the `smoke` profile, which executes
the hand-in notebook alone in an empty folder, headless and without network, and writes what a run on record writes
into a scratch folder; and the committed notebook and hand-in, as the course template and the report expect them."""

import contextlib
import io
import json
import re
import warnings
from types import SimpleNamespace

import build_handin
import pytest
import record_run
from conftest import ROOT, notebook_cells

TEMPERATURES = ["1.5", "1.0", "0.8", "0.5", "0.1", "0.0001"]
FIGURES = ("char_freq", "baseline_loss", "optimizers", "attention", "temperature", "architectures", "large_loss",
           "overlay")


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell):
    return "".join(cell["source"])


def tagged_source(nb, tag):
    (cell,) = [c for c in nb["cells"] if tag in c["metadata"].get("tags", [])]
    return source(cell)


def read(path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def committed():
    return read(ROOT / "assignment3.ipynb")


@pytest.fixture(scope="module")
def smoke_record(tmp_path_factory, corpus_text):
    """One run on record in the smoke profile, of a snapshot of assignment3.ipynb, written into a scratch folder."""
    folder = tmp_path_factory.mktemp("smoke_record")
    notebook = folder / "source.ipynb"
    notebook.write_text((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"), encoding="utf-8")
    helpers = (ROOT / "gpt_helpers.py").read_text(encoding="utf-8")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed), warnings.catch_warnings():
        mp.delenv("PYTHONPATH", raising=False)  # nothing of this repository is importable in the kernel
        warnings.simplefilter("ignore", UserWarning)  # authors.toml's placeholders: tests/test_report.py checks them
        record_run.main(["--profile", "smoke", "--notebook", str(notebook), "--dest", str(folder / "dest"),
                         "--workdir", str(folder / "empty")])
    dest = folder / "dest"
    return SimpleNamespace(source=read(notebook), helpers=helpers, dest=dest, workdir=folder / "empty",
                           printed=printed.getvalue(), handin=read(dest / "handin" / "assignment3.ipynb"),
                           results=read(dest / "results" / "smoke.json"))


def test_every_code_cell_of_the_hand_in_ran_once_in_order_without_an_error(smoke_record):
    cells = code_cells(smoke_record.handin)
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1))
    assert record_run.error_outputs(smoke_record.handin) == []


def test_the_helper_cell_ran_with_the_rest_and_wrote_the_helper_module_into_the_empty_folder(smoke_record):
    (helper,) = [c for c in smoke_record.handin["cells"] if "helpers" in c["metadata"].get("tags", [])]
    assert helper["outputs"] == [{"name": "stdout", "output_type": "stream", "text": ["Writing gpt_helpers.py\n"]}]
    assert (smoke_record.workdir / "gpt_helpers.py").read_text(encoding="utf-8") == smoke_record.helpers
    assert sorted(p.name for p in smoke_record.workdir.iterdir()) == [
        "assignment3.ipynb", "checkpoints", "data", "figures", "gpt_helpers.py", "results"]


def test_the_reference_cell_holds_exactly_this_runs_numbers_beside_the_runs_on_record(smoke_record):
    reference = record_run.reference_entries(tagged_source(smoke_record.handin, "reference"))
    reproduction = notebook_cells("reproduction", notebook=smoke_record.dest / "handin" / "assignment3.ipynb",
                                  name="smoke_reproduction")
    assert reference["smoke"] == reproduction.reported_numbers(smoke_record.results)
    before = record_run.reference_entries(tagged_source(smoke_record.source, "reference"))
    assert {k: v for k, v in reference.items() if k != "smoke"} == before


def test_the_reproduction_table_shows_every_loss_of_the_run_reproduced_by_itself(smoke_record):
    last = code_cells(smoke_record.handin)[-1]
    table = "".join("".join(o["data"]["text/markdown"]) for o in last["outputs"] if "data" in o)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith("| ") and "---" not in line][1:]
    runs = record_run.reference_entries(tagged_source(smoke_record.handin, "reference"))["smoke"]["runs"]
    assert len(rows) == 2 * len(runs) > 20
    assert {(row[4], row[5]) for row in rows} == {("+0.0000", "reproduced")}


def test_the_dest_holds_the_hand_in_the_notebook_to_commit_the_results_the_figures_and_the_report(smoke_record):
    dest = smoke_record.dest
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == sorted(
        ["handin/assignment3.ipynb", "handin/report.pdf", "assignment3.ipynb", "results/smoke.json",
         "report/report.pdf", *(f"figures/{stem}_smoke.{ext}" for stem in FIGURES for ext in ("png", "pdf"))])
    committed = read(dest / "assignment3.ipynb")
    assert committed == build_handin.without_helpers(smoke_record.handin)
    assert build_handin.handin_problems(committed, smoke_record.handin, smoke_record.helpers) == []
    assert (dest / "handin" / "report.pdf").read_bytes() == (dest / "report" / "report.pdf").read_bytes()
    assert (dest / "results" / "smoke.json").read_bytes() == (smoke_record.workdir / "results" / "smoke.json"
                                                              ).read_bytes()


def test_the_profiles_cell_of_a_smoke_run_is_left_as_it_was(smoke_record):
    assert tagged_source(smoke_record.handin, "profiles") == tagged_source(smoke_record.source, "profiles")
    assert re.search(r'^PROFILE = "smoke"', tagged_source(smoke_record.handin, "parameters"), re.M)


def test_the_record_tool_printed_each_code_cell_as_it_completed_and_a_summary(smoke_record):
    n = len(code_cells(smoke_record.handin))
    lines = [line for line in smoke_record.printed.splitlines() if line.startswith("cell ")]
    assert [line.split(" done")[0] for line in lines] == [f"cell {i} of {n}" for i in range(1, n + 1)]
    assert f"profile smoke on {smoke_record.results['machine']['name']}: the notebook's own clock" in (
        smoke_record.printed)
    assert (f"wrote into {smoke_record.dest}: handin/assignment3.ipynb, assignment3.ipynb, results/smoke.json, "
            f"report/report.pdf, handin/report.pdf, {2 * len(FIGURES)} figures in figures/") in smoke_record.printed


def test_the_smoke_run_records_every_result_the_report_reads(smoke_record):
    results = smoke_record.results
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


def test_the_checkpoints_hold_the_baseline_and_the_larger_model(smoke_record):
    assert sorted(p.name for p in (smoke_record.workdir / "checkpoints").iterdir()) == [
        "baseline_smoke.pt", "large_smoke.pt"]


def test_a_training_run_prints_one_line_and_one_finished_progress_bar(smoke_record):
    cells = code_cells(smoke_record.handin)
    baseline = next(c for c in cells if '"baseline",' in source(c) and "= train(" in source(c))
    text = "".join("".join(o["text"]) for o in baseline["outputs"] if o["output_type"] == "stream")
    assert "\r" not in text and text.startswith("number of parameters:")
    bars = [o for o in baseline["outputs"] if o["output_type"] == "display_data"
            and "baseline:" in "".join(o["data"].get("text/plain", ""))]
    assert len(bars) == 1 and set(bars[0]["data"]) == {"text/plain"}  # plain text: no widget to go missing
    bar = "".join(bars[0]["data"]["text/plain"])
    assert "100%" in bar and "30/30" in bar and "left" in bar and "val " in bar and "\r" not in bar


def test_the_parameters_cell_lets_auto_choose_among_the_profiles_on_record(committed):
    assert re.search(r'^PROFILE = "auto"', tagged_source(committed, "parameters"), re.M)
    on_record = record_run.profiles_on_record(tagged_source(committed, "profiles"))
    assert "cpu" in on_record and all((ROOT / "results" / f"{p}.json").exists() for p in on_record)


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
    handin = read(ROOT / "handin" / "assignment3.ipynb")
    helpers = (ROOT / "gpt_helpers.py").read_text(encoding="utf-8")
    assert build_handin.handin_problems(committed, handin, helpers) == []
    assert handin == build_handin.with_committed_prose(handin, committed), "run python tools/build_handin.py"
    assert (ROOT / "handin" / "report.pdf").read_bytes() == (ROOT / "report" / "report.pdf").read_bytes()


def test_the_committed_notebook_ran_cleanly_and_shows_its_run_reproduced(committed):
    cells = code_cells(committed)
    assert all(c.get("execution_count") for c in cells)
    assert not [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    table = "".join("".join(o["data"]["text/markdown"]) for o in cells[-1]["outputs"] if "data" in o)
    verdicts = [row.split("|")[-2].strip() for row in table.splitlines() if row.startswith("| ") and "---" not in row]
    assert len(verdicts) > 20 and set(verdicts[1:]) == {"reproduced"}  # the header, then every loss


def test_the_training_cell_reads_once_and_names_explain_themselves(committed):
    lines = tagged_source(committed, "train").splitlines()
    assert sum(len(line) > 100 for line in lines) <= 0.1 * len(lines)
    code = "\n".join(source(c) for c in code_cells(committed))
    for alias in (r"\bH\.", r"\bP\[", r"\bh\[", r"\blh\["):  # short names read cells away from where they were set
        assert not re.search(alias, code), alias


def test_every_figure_the_notebook_saves_also_shows_in_it(smoke_record):
    cells = [c for c in code_cells(smoke_record.handin) if "helpers.save_figure(" in source(c)]
    shown = [sum("image/png" in o.get("data", {}) for o in c["outputs"]) for c in cells]
    saved = [source(c).count("helpers.save_figure(") for c in cells]
    assert sum(saved) == len(FIGURES) and shown == saved
