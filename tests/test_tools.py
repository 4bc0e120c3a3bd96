"""tools/record_run.py and tools/build_handin.py on small fake notebooks: the sources a run on record rewrites, the
hand-in it executes, what it refuses, and the hand-in build that checks and refreshes what a run on record made."""

import json
import pprint
import re

import build_handin
import nbformat
import pytest
import record_run
from conftest import ROOT
from record_run import RecordError

PROFILES_SOURCE = ('PROFILES = {"cpu": {}, "gpu": {}}\nPROFILES_ON_RECORD = ["cpu"]  # runs on record\n'
                   'PROMPT = "ROMEO:"\n')
REFERENCE_HEADER = "# The runs on record, per profile\n"


def code(source: str, *tags: str, **fields):
    cell = nbformat.v4.new_code_cell(source, **fields)
    cell.metadata["tags"] = list(tags)
    return cell


def numbers(loss: float) -> dict:
    return {"device_type": "cpu", "precision": "fp32", "runs": {"baseline": {"iters": 10, "best_val_loss": loss,
                                                                            "final_val_loss": loss + 0.01}}}


def reference_cell_source(entries: dict) -> str:
    return f"{REFERENCE_HEADER}REFERENCE = {pprint.pformat(entries, width=110, sort_dicts=False)}"


def fake_notebook() -> dict:
    """A notebook in the shape of assignment3.ipynb, as a run left it: outputs, counts and papermill's metadata."""
    ran = code("import gpt_helpers as helpers\nprint(1)", execution_count=3,
               outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")])
    ran.metadata["papermill"] = {"duration": 1.0}
    cells = [nbformat.v4.new_markdown_cell("# title"), code('PROFILE = "auto"  # or "cpu"', "parameters"),
             code(PROFILES_SOURCE, "profiles"), ran, nbformat.v4.new_markdown_cell("**Answer (a).** 1"),
             code(reference_cell_source({"cpu": numbers(1.5)}), "reference")]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["papermill"] = {"parameters": {}}
    return json.loads(json.dumps(nb))


def executed_handin(nb: dict, helpers_source: str = "X = 1\n") -> dict:
    """`nb` as record_run leaves it: with the helper cells, every code cell run once, in order."""
    handin = build_handin.self_contained(record_run.cleared(nb), helpers_source)
    for count, cell in enumerate((c for c in handin["cells"] if c["cell_type"] == "code"), start=1):
        cell["execution_count"] = count
        cell["outputs"] = [nbformat.v4.new_output("stream", name="stdout", text=f"out {count}\n")]
    return json.loads(json.dumps(handin))


# The sources a run on record rewrites


def test_a_recorded_profile_joins_profiles_on_record_once_and_nothing_else_changes():
    with_gpu = record_run.with_profile_on_record(PROFILES_SOURCE, "gpu")
    assert with_gpu == PROFILES_SOURCE.replace('["cpu"]', '["cpu", "gpu"]')
    assert record_run.with_profile_on_record(with_gpu, "gpu") == with_gpu
    assert record_run.with_profile_on_record(PROFILES_SOURCE, "cpu") == PROFILES_SOURCE


def test_a_profiles_cell_without_profiles_on_record_is_refused_with_what_to_add():
    with pytest.raises(RecordError, match=r"no line PROFILES_ON_RECORD = \[\.\.\.\].*tagged 'profiles'"):
        record_run.with_profile_on_record('PROFILES = {"cpu": {}}\n', "cpu")


def test_the_smoke_profile_replaces_only_the_value_of_profile_in_the_parameters_cell():
    source = 'PROFILE = "auto"  # "auto" or "cpu"\nSEED = 1337\n'
    assert record_run.with_profile(source, "smoke") == 'PROFILE = "smoke"  # "auto" or "cpu"\nSEED = 1337\n'
    with pytest.raises(RecordError, match='no line PROFILE = "..."'):
        record_run.with_profile("SEED = 1337\n", "smoke")


def test_the_reference_cell_gets_this_profiles_numbers_and_keeps_the_others_and_its_comment():
    previous = reference_cell_source({"cpu": numbers(1.5), "gpu": numbers(1.2)})
    new = record_run.reference_source(previous, "cpu", numbers(1.4))
    assert new == reference_cell_source({"cpu": numbers(1.4), "gpu": numbers(1.2)})
    namespace = {}
    exec(new, namespace)
    assert list(namespace["REFERENCE"]) == ["cpu", "gpu"] and namespace["REFERENCE"]["cpu"] == numbers(1.4)


def test_a_profile_new_to_the_reference_cell_comes_after_the_others():
    new = record_run.reference_source(reference_cell_source({"cpu": numbers(1.5)}), "gpu", numbers(1.2))
    assert new == reference_cell_source({"cpu": numbers(1.5), "gpu": numbers(1.2)})


def test_a_reference_cell_without_reference_is_refused_showing_its_source():
    with pytest.raises(RecordError, match="no line REFERENCE = .*REPORTED = "):
        record_run.reference_source("REPORTED = {}", "cpu", numbers(1.5))


# The hand-in it executes


@pytest.mark.parametrize("profile,parameters,on_record", [
    ("auto", 'PROFILE = "auto"  # or "cpu"', '["cpu"]'), ("cpu", 'PROFILE = "auto"  # or "cpu"', '["cpu"]'),
    ("gpu", 'PROFILE = "auto"  # or "cpu"', '["cpu", "gpu"]'), ("smoke", 'PROFILE = "smoke"  # or "cpu"', '["cpu"]')])
def test_the_hand_in_to_execute_is_cleared_has_the_helper_cells_and_is_set_up_for_the_profile(profile, parameters,
                                                                                               on_record):
    nb = record_run.handin_notebook(fake_notebook(), "X = 1\n", profile)
    assert [c.get("id") for c in nb.cells][3:5] == ["helpers-label", "helpers-code"]  # before `import gpt_helpers`
    assert nb.cells[4].source == "%%writefile gpt_helpers.py\nX = 1\n"
    assert all(c.execution_count is None and c.outputs == [] for c in nb.cells if c.cell_type == "code")
    assert "papermill" not in nb.metadata and all("papermill" not in c.metadata for c in nb.cells)
    assert nb.cells[1].source == parameters
    assert nb.cells[2].source == PROFILES_SOURCE.replace('["cpu"]', on_record)


def test_the_helper_note_says_what_the_cell_does_and_nothing_about_a_missing_output():
    (label,) = [c for c in record_run.handin_notebook(fake_notebook(), "", "cpu").cells if c.id == "helpers-label"]
    assert "writes the file next to this notebook" in label.source and "no output" not in label.source


def test_a_notebook_without_a_reference_cell_is_refused_before_it_runs():
    nb = fake_notebook()
    nb["cells"] = nb["cells"][:-1]
    with pytest.raises(RecordError, match="0 cells tagged 'reference', not one"):
        record_run.handin_notebook(nb, "", "cpu")


def test_the_notebook_to_commit_is_the_executed_hand_in_without_its_two_helper_cells():
    nb = fake_notebook()
    handin = executed_handin(nb)
    committed = build_handin.without_helpers(handin)
    assert [c.get("id") for c in committed["cells"]] == [c.get("id") for c in nb["cells"]]
    assert not [c for c in committed["cells"] if "helpers" in c["metadata"].get("tags", [])]


# What it refuses


@pytest.mark.parametrize("requested,chosen,message", [
    ("gpu", "cpu", "asked for the gpu profile, but auto chose cpu on this machine: the gpu profile needs a CUDA GPU "
                   r"with bf16 \(compute capability 8.0 or later\)"),
    ("cpu", "gpu", "auto chose gpu on this machine: auto picks gpu on a CUDA GPU with bf16 once gpu is on record")])
def test_a_run_of_another_profile_than_the_one_asked_for_is_refused_with_the_reason(requested, chosen, message):
    with pytest.raises(RecordError, match=message):
        record_run.check_profile(chosen, requested)


@pytest.mark.parametrize("requested,chosen", [("auto", "cpu"), ("auto", "gpu"), ("cpu", "cpu"), ("smoke", "smoke")])
def test_a_run_of_the_profile_asked_for_or_of_any_under_auto_is_accepted(requested, chosen):
    record_run.check_profile(chosen, requested)


def test_an_error_output_is_named_with_its_cell():
    nb = fake_notebook()
    nb["cells"][3]["outputs"].append(nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[]))
    assert record_run.error_outputs(nb) == ["cell 3: ValueError: bad"]


def test_the_smoke_profile_never_writes_into_the_repository():
    scratch = record_run.destination("smoke", None)
    assert scratch != ROOT and list(scratch.iterdir()) == []
    scratch.rmdir()
    with pytest.raises(RecordError, match="smoke profile is never a record"):
        record_run.destination("smoke", ROOT)
    assert record_run.destination("cpu", None) == ROOT


def test_a_workdir_that_is_not_empty_is_refused(tmp_path):
    (tmp_path / "left_over.json").write_text("{}")
    with pytest.raises(RecordError, match="is not empty: the notebook must run in an empty folder"):
        record_run.empty_workdir(tmp_path)
    assert record_run.empty_workdir(tmp_path / "new") == tmp_path / "new" and (tmp_path / "new").is_dir()


def test_the_results_the_reference_cell_reads_must_be_the_one_file_of_this_run(tmp_path):
    (tmp_path / "results").mkdir()
    with pytest.raises(RecordError, match=r"expected one results file .* found \[\]"):
        record_run.written_results(tmp_path)
    (tmp_path / "results" / "cpu.json").write_text('{"profile": "cpu"}')
    assert record_run.written_results(tmp_path) == {"profile": "cpu"}


def tiny_notebook(last_cell: str = "print(REFERENCE)") -> nbformat.NotebookNode:
    """A notebook that writes results/cpu.json, then holds the reproduction and reference cells, then `last_cell`."""
    return nbformat.v4.new_notebook(cells=[
        code('import json, pathlib\npathlib.Path("results").mkdir()\n'
             'pathlib.Path("results/cpu.json").write_text(json.dumps({"profile": "cpu"}))'),
        code('def reported_numbers(results):\n    return {"ran": results["profile"]}', "reproduction"),
        code(reference_cell_source({"gpu": numbers(1.2)}), "reference"), code(last_cell)])


def test_the_kernel_runs_the_reference_cell_as_rewritten_just_before_it_ran(tmp_path):
    nb = record_run.execute(tiny_notebook(), tmp_path, "cpu")
    assert nb.cells[2].source == reference_cell_source({"gpu": numbers(1.2), "cpu": {"ran": "cpu"}})
    assert nb.cells[3].outputs[0]["text"] == f"{ {'gpu': numbers(1.2), 'cpu': {'ran': 'cpu'}} }\n"
    assert [c.execution_count for c in nb.cells] == [1, 2, 3, 4]


def test_a_run_that_auto_made_another_profile_stops_at_the_reference_cell(tmp_path):
    with pytest.raises(RecordError, match="asked for the gpu profile, but auto chose cpu"):
        record_run.execute(tiny_notebook(), tmp_path, "gpu")


def test_a_cell_that_raises_stops_the_run_and_keeps_the_notebook_as_far_as_it_ran(tmp_path):
    with pytest.raises(RecordError, match="code cell 4 of 4 raised ZeroDivisionError: division by zero; nothing was"):
        record_run.execute(tiny_notebook("1 / 0"), tmp_path, "cpu")
    partial = json.loads((tmp_path / "executed_until_the_error.ipynb").read_text(encoding="utf-8"))
    assert record_run.error_outputs(partial) == ["cell 3: ZeroDivisionError: division by zero"]


# What it prints


def test_progress_names_each_code_cell_of_all_with_the_time_since_the_start(capsys):
    nb = record_run.handin_notebook(fake_notebook(), "", "cpu")
    progress = record_run.Progress(nb)
    progress.cell_started(cell_index=5)
    progress.cell_done(cell_index=5)
    # cell 5 is the import, the fourth code cell: after the parameters, the profiles and the helper cell
    assert capsys.readouterr().out.startswith("cell 4 of 5 done in 0.0 s (0:00 elapsed)")


def test_the_answers_to_reread_are_listed_by_answer_and_missing_prose_checks_are_one_line(capsys):
    record_run.print_stale_answers({"answer-f": ["'1.85': 1.85 is now 1.9"], "answer-g": []})
    assert capsys.readouterr().out.splitlines() == [
        "answers whose numbers or comparisons no longer hold these results; rewrite them by hand:",
        "  answer-f:", "    '1.85': 1.85 is now 1.9", "  answer-g:"]
    record_run.print_stale_answers(None)
    assert capsys.readouterr().out.splitlines() == [
        "the prose checks (tests/prose_checks.py) were not found: no list of answers to re-read"]
    record_run.print_stale_answers({})
    assert capsys.readouterr().out == "every written answer still holds for these results\n"


# The hand-in build after a run on record


def handin_root(tmp_path, committed: dict, handin: dict, helpers_source: str = "X = 1\n"):
    """A repository with the committed notebook, the hand-in, the helper module and a report."""
    (tmp_path / "handin").mkdir()
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.pdf").write_bytes(b"%PDF new")
    (tmp_path / "handin" / "report.pdf").write_bytes(b"%PDF old")
    (tmp_path / "gpt_helpers.py").write_text(helpers_source, encoding="utf-8")
    build_handin.write_notebook(tmp_path / "assignment3.ipynb", committed)
    build_handin.write_notebook(tmp_path / "handin" / "assignment3.ipynb", handin)
    return tmp_path


def test_the_hand_in_build_takes_the_committed_prose_and_the_report_into_the_executed_hand_in(tmp_path):
    handin = executed_handin(fake_notebook())
    committed = build_handin.without_helpers(handin)
    committed["cells"][4]["source"] = ["**Answer (a).** rewritten by hand"]
    root = handin_root(tmp_path, committed, handin)
    build_handin.build(root)
    built = build_handin.read_notebook(root / "handin" / "assignment3.ipynb")
    assert build_handin.without_helpers(built) == committed
    assert [c for c in built["cells"] if build_handin.is_helper(c)] == [c for c in handin["cells"]
                                                                        if build_handin.is_helper(c)]
    assert (root / "handin" / "report.pdf").read_bytes() == b"%PDF new"


def code_changed(committed, handin):
    committed["cells"][3]["source"] = ["print(2)"]


def outputs_changed(committed, handin):
    committed["cells"][3]["outputs"] = []


def helper_cell_not_run(committed, handin):
    handin["cells"][4]["outputs"], handin["cells"][4]["execution_count"] = [], None


def helper_code_changed(committed, handin):
    handin["cells"][4]["source"] = ["%%writefile gpt_helpers.py\n", "X = 2\n"]


def cell_added(committed, handin):
    committed["cells"].append(nbformat.v4.new_markdown_cell("new"))


@pytest.mark.parametrize("change,message", [
    (code_changed, "its code differs from assignment3.ipynb's"),
    (outputs_changed, "its outputs differ from assignment3.ipynb's"),
    (helper_cell_not_run, "its helper cell did not run with the rest of the notebook"),
    (helper_code_changed, "its helper cell holds other code than gpt_helpers.py"),
    (cell_added, "its cells are not those of assignment3.ipynb (a cell was added, removed or moved)")])
def test_the_hand_in_build_refuses_a_hand_in_that_is_not_the_executed_committed_notebook(tmp_path, change, message):
    handin = executed_handin(fake_notebook())
    committed = build_handin.without_helpers(json.loads(json.dumps(handin)))
    change(committed, handin)
    root = handin_root(tmp_path, committed, handin)
    before = (root / "handin" / "assignment3.ipynb").read_text(encoding="utf-8")
    with pytest.raises(SystemExit, match=f"not the executed hand-in of assignment3.ipynb: {re.escape(message)}.*"
                                         "Make a new run on record: python tools/record_run.py"):
        build_handin.build(root)
    assert (root / "handin" / "assignment3.ipynb").read_text(encoding="utf-8") == before
    assert (root / "handin" / "report.pdf").read_bytes() == b"%PDF old"
