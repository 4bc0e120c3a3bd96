"""The notebook end to end, as the TA gets it: one smoke run of tools/record_run.py, which executes the hand-in
notebook alone in an empty folder, headless and without network, and writes what a run on record writes into a
scratch folder; then the committed notebook and hand-in, as the course template and the report expect them."""

import contextlib
import io
import json
import re
import warnings
from types import SimpleNamespace

import nbformat
import pytest
import record_run
import torch
from conftest import ROOT

FIGURES = ("char_freq", "baseline_loss", "optimizers", "attention", "temperature", "architectures", "large_loss",
           "overlay")
TEMPERATURES = ["1.5", "1.0", "0.8", "0.5", "0.1", "0.0001"]
FUSED_ATTENTION = re.compile(r"scaled_dot_product_attention|MultiheadAttention|flash_attn")


def source(cell):
    return "".join(cell["source"])


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def tagged(nb, tag):
    (cell,) = [c for c in nb["cells"] if tag in c["metadata"].get("tags", [])]
    return cell


def not_helpers(cells):
    return [c for c in cells if c.get("id") not in record_run.HELPER_IDS]


def read(path):
    return json.loads(path.read_text(encoding="utf-8"))


def progress_bars(nb, cell):
    """(description, value, max) of each progress bar widget a cell displays, from the widget states nbclient saved."""
    states = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bars = []
    for output in cell["outputs"]:
        if view := output.get("data", {}).get("application/vnd.jupyter.widget-view+json"):
            parts = [states[child.removeprefix("IPY_MODEL_")] for child in
                     states[view["model_id"]]["state"]["children"]]
            (progress,) = [p["state"] for p in parts if p["model_name"] == "FloatProgressModel"]
            bars.append((parts[0]["state"]["value"], progress["value"], progress["max"]))
    return bars


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, corpus_text):
    """One smoke run of the record tool on assignment3.ipynb as it is now, written into a scratch folder."""
    folder = tmp_path_factory.mktemp("smoke_record")
    source_nb = read(ROOT / "assignment3.ipynb")  # what the run reads, before anything could change it
    helpers = (ROOT / "gpt_helpers.py").read_text(encoding="utf-8")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed), warnings.catch_warnings():
        mp.delenv("PYTHONPATH", raising=False)  # nothing of this repository is importable in the kernel
        mp.setenv("PYTHONDONTWRITEBYTECODE", "1")  # no __pycache__ beside gpt_helpers.py, wherever the tests run
        warnings.simplefilter("ignore", UserWarning)  # authors.toml's placeholders: tests/test_report.py checks them
        record_run.main(["--smoke", "--dest", str(folder / "dest"), "--workdir", str(folder / "empty")])
    dest = folder / "dest"
    return SimpleNamespace(source=source_nb, helpers=helpers, dest=dest, workdir=folder / "empty",
                           printed=printed.getvalue(), handin=read(dest / "handin" / "assignment3.ipynb"),
                           results=read(dest / "results" / "run.json"))


def test_every_code_cell_of_the_hand_in_ran_once_in_order_without_an_error(smoke):
    cells = code_cells(smoke.handin)
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1))
    assert not [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]


def test_the_helper_cell_ran_and_wrote_the_helper_module_into_the_folder_that_holds_only_what_the_notebook_made(
        smoke):
    helper = tagged(smoke.handin, "helpers")
    assert helper["outputs"] == [{"name": "stdout", "output_type": "stream", "text": ["Writing gpt_helpers.py\n"]}]
    assert (smoke.workdir / "gpt_helpers.py").read_text(encoding="utf-8") == smoke.helpers
    assert sorted(p.name for p in smoke.workdir.iterdir()) == [
        "checkpoints", "data", "figures", "gpt_helpers.py", "results"]


def test_the_dest_holds_the_hand_in_the_notebook_to_commit_the_results_the_figures_and_the_report(smoke):
    dest = smoke.dest
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == sorted(
        ["handin/assignment3.ipynb", "handin/report.pdf", "assignment3.ipynb", "results/run.json",
         "report/report.pdf", *(f"figures/{name}.{ext}" for name in FIGURES for ext in ("png", "pdf"))])
    committed = read(dest / "assignment3.ipynb")
    assert committed["cells"] == not_helpers(smoke.handin["cells"])
    assert len(committed["cells"]) == len(smoke.handin["cells"]) - 2
    assert committed["metadata"] == smoke.handin["metadata"]
    assert (dest / "handin" / "report.pdf").read_bytes() == (dest / "report" / "report.pdf").read_bytes()
    assert (dest / "results" / "run.json").read_bytes() == (smoke.workdir / "results" / "run.json").read_bytes()


def test_a_smoke_run_sets_smoke_in_the_parameters_cell_and_changes_no_other_code(smoke):
    parameters = source(tagged(smoke.handin, "parameters"))
    assert parameters == source(tagged(smoke.source, "parameters")).replace("SMOKE = False", "SMOKE = True")
    assert parameters.startswith("SMOKE = True")
    assert source(tagged(smoke.handin, "config")) == source(tagged(smoke.source, "config"))
    handin_code = [source(c) for c in not_helpers(code_cells(smoke.handin))]
    source_code = [source(c) for c in code_cells(smoke.source)]
    assert len(handin_code) == len(source_code)
    assert [cell for cell, before in zip(handin_code, source_code) if cell != before] == [parameters]
    assert sum("SMOKE = True" in cell for cell in handin_code) == 1


def test_the_results_hold_every_result_the_report_reads(smoke):
    results = smoke.results
    assert set(results["machine"]) >= {"name", "torch"} and results["notebook_time_s"] > 0
    assert set(results["data"]) >= {"n_chars", "n_lines", "n_words", "vocab_size", "n_train", "n_val"}
    sweeps = [*results["architecture_sweep"].values(), *results["lr_sweep"].values(),
              *results["batch_sweep"].values()]
    for run in [results["baseline"], results["muon"], results["large"], *sweeps]:
        h = run["history"]
        assert len(h["iter"]) == len(h["tokens"]) == len(h["train_time_s"]) == len(h["train_loss"]) == len(
            h["val_loss"]) >= 2
        assert run["best_iter"] == h["iter"][h["val_loss"].index(min(h["val_loss"]))]
        assert run["n_params"] > 0 and run["best_val_loss"] > 0
        assert set(run) >= {"config", "train_config", "train_time_s", "ms_per_iter"}
    assert len(results["architecture_sweep"]) == 6 and len(results["lr_sweep"]) == 3
    assert list(results["batch_sweep"]) == ["4", "8", "16"]
    assert list(results["samples"]) == TEMPERATURES
    assert all(s.startswith("ROMEO:") for s in results["samples"].values())
    metrics = results["temperature_metrics"]
    assert [str(t) for t in metrics["temperature"]] == TEMPERATURES
    assert all(len(metrics[m]) == 6 for m in ("nll", "known_word_share", "distinct_4gram_ratio"))
    assert set(results["no_mask"]) == {"with the mask", "without the mask"}
    assert all(set(r) == {"train_loss", "val_loss", "sample"} for r in results["no_mask"].values())
    assert set(results["comparison"]) >= {"equal_tokens", "equal_time", "gain"}
    assert set(results["comparison_samples"]) == {"temperature", "baseline", "larger model", "known_word_share"}
    assert set(results["optimizer_comparison"]) == {"seconds", "AdamW", "Muon", "chosen"}
    n_head = results["baseline"]["config"]["n_head"]
    assert len(results["attention"]["itself"]) == len(results["attention"]["previous"]) == n_head


def test_the_last_table_lists_every_training_run_with_the_numbers_of_the_results(smoke):
    results = smoke.results
    assert "summary" not in results
    last = code_cells(smoke.handin)[-1]
    (table,) = [source({"source": o["data"]["text/markdown"]}) for o in last["outputs"]
                if "text/markdown" in o.get("data", {})]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    architectures = results["architecture_sweep"]
    runs = [("baseline", results["baseline"]), *((f"architecture: {name}", run) for name, run in architectures.items()),
            *((f"lr {lr}", run) for lr, run in results["lr_sweep"].items()),
            *((f"batch {b}", run) for b, run in results["batch_sweep"].items()
              if run not in results["lr_sweep"].values()),  # each run once: a sweep reuses one run before it
            ("Muon", results["muon"]), ("larger model", results["large"])]
    assert rows == [[name, f"{run['history']['iter'][-1]:,}", f"{run['history']['tokens'][-1]:,}",
                     f"{run['best_val_loss']:.4f}"] for name, run in runs]


def test_the_checkpoints_hold_the_baseline_and_the_larger_model(smoke):
    folder = smoke.workdir / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["baseline.pt", "large.pt"]
    for name, run in (("baseline", smoke.results["baseline"]), ("large", smoke.results["large"])):
        assert torch.load(folder / f"{name}.pt")["model_args"] == run["config"]


def test_a_training_run_prints_the_parameters_first_and_shows_one_progress_bar_that_finished(smoke):
    (cell,) = [c for c in code_cells(smoke.handin) if 'train_new(BASELINE, "baseline"' in source(c)]
    text = "".join("".join(o["text"]) for o in cell["outputs"] if o["output_type"] == "stream")
    assert text.startswith("number of parameters:") and "\r" not in text
    iters = smoke.results["baseline"]["train_config"]["max_iters"]
    ((label, value, total),) = progress_bars(smoke.handin, cell)
    assert label.startswith("baseline:") and "100%" in label and value == total == iters


def test_every_progress_bar_of_the_notebook_finished(smoke):
    bars = [bar for c in code_cells(smoke.handin) for bar in progress_bars(smoke.handin, c)]
    assert len(bars) >= 15  # every training run: baseline, Muon, the sweeps, the mask pair, the larger model
    assert [(label, value) for label, value, total in bars if value != total] == []


def test_every_figure_the_notebook_saves_also_shows_in_it(smoke):
    cells = [c for c in code_cells(smoke.handin) if "helpers.save_figure(" in source(c)]
    shown = [sum("image/png" in o.get("data", {}) for o in c["outputs"]) for c in cells]
    saved = [source(c).count("helpers.save_figure(") for c in cells]
    assert sum(saved) == len(FIGURES) and shown == saved


def test_the_record_tool_printed_each_code_cell_as_it_completed_and_where_it_wrote(smoke):
    n = len(code_cells(smoke.handin))
    lines = [line.split(" done")[0] for line in smoke.printed.splitlines() if line.startswith("code cell ")]
    assert lines == [f"code cell {i} of {n}" for i in range(1, n + 1)]
    assert smoke.printed.splitlines()[-1] == (f"wrote the notebook, handin/, results/run.json, figures/ and the report "
                                              f"into {smoke.dest}; ran in {smoke.workdir}")


# The committed repository: the notebook and hand-in of the run on record


@pytest.fixture(scope="module")
def committed():
    return read(ROOT / "assignment3.ipynb")


def test_the_committed_notebook_has_one_configuration_and_no_machinery_of_profiles_or_precision(committed):
    code = "\n".join(source(c) for c in code_cells(committed)).replace("tqdm.auto", "tqdm")
    assert [word for word in ("gpu", "auto", "bf16", "autocast", "compile", "PROFILE") if word in code] == []


def test_the_committed_notebook_is_short_and_its_lines_fit_the_page(committed):
    lines = [line for c in code_cells(committed) for line in source(c).splitlines()]
    assert [line for line in lines if len(line) > 100] == []
    assert len(lines) <= 600
    assert len(source(tagged(committed, "train")).splitlines()) <= 90


def test_no_code_cell_builds_an_answer_and_every_task_has_a_written_one(committed):
    assert not [c for c in code_cells(committed) if "Answer" in source(c) or "Markdown(f" in source(c)]
    answers = [source(c) for c in committed["cells"] if c["cell_type"] == "markdown"
               and source(c).startswith("**Answer (")]
    assert [a[len("**Answer (")] for a in answers] == list("abcdefgh")


def test_the_notebook_the_hand_in_and_the_helper_module_contain_no_fused_attention():
    for path in (ROOT / "assignment3.ipynb", ROOT / "handin" / "assignment3.ipynb", ROOT / "gpt_helpers.py"):
        assert not FUSED_ATTENTION.search(path.read_text(encoding="utf-8")), path


def test_the_committed_hand_in_is_the_committed_run_and_nothing_else(committed):
    assert sorted(p.name for p in (ROOT / "handin").iterdir()) == ["assignment3.ipynb", "report.pdf"]
    handin = read(ROOT / "handin" / "assignment3.ipynb")
    code = [(source(c), c["outputs"]) for c in code_cells(committed)]
    assert [(source(c), c["outputs"]) for c in not_helpers(code_cells(handin))] == code, (
        "make a new run on record: python tools/record_run.py")
    assert not_helpers(handin["cells"]) == committed["cells"], "take the prose: python tools/record_run.py --prose"
    helper = tagged(handin, "helpers")
    assert source(helper) == "%%writefile gpt_helpers.py\n" + (ROOT / "gpt_helpers.py").read_text(encoding="utf-8")
    assert helper["execution_count"] and helper["outputs"][0]["text"] == ["Writing gpt_helpers.py\n"]
    assert (ROOT / "handin" / "report.pdf").read_bytes() == (ROOT / "report" / "report.pdf").read_bytes()


def test_the_committed_notebook_ran_cleanly(committed):
    cells = code_cells(committed)
    assert all(c.get("execution_count") for c in cells)
    assert not [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert nbformat.validate(nbformat.from_dict(committed)) is None
