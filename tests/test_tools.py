"""tools/record_run.py on small fake notebooks: the hand-in it executes, the notebook to commit, what it refuses,
where a smoke run writes, and --prose, which takes rewritten answers into the executed hand-in."""

import copy

import nbformat
import pytest
import record_run
from conftest import ROOT
from nbclient.exceptions import CellExecutionError

HELPERS = "X = 1\n"


def code(source: str, *tags: str, **fields):
    cell = nbformat.v4.new_code_cell(source, **fields)
    cell.metadata["tags"] = list(tags)
    return cell


def fake_notebook() -> nbformat.NotebookNode:
    """A notebook in the shape of assignment3.ipynb, as a run left it: outputs, counts and nbclient's timings."""
    ran = code("import gpt_helpers as helpers\nprint(1)", execution_count=3,
               outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")])
    ran.metadata["execution"] = {"iopub.status.busy": "2026-12-06T02:54:05Z"}
    cells = [nbformat.v4.new_markdown_cell("# title\nSet `SMOKE = False` to run it all."),
             code("SMOKE = False  # True: tiny runs", "parameters", execution_count=1),
             code("SEED = 1337\nif SMOKE:\n    SEED = 1", "config", execution_count=2), ran,
             nbformat.v4.new_markdown_cell("**Answer (a).** first draft"), code("print(2)", execution_count=4)]
    return nbformat.v4.new_notebook(cells=cells)


def cleared(nb: nbformat.NotebookNode) -> list:
    cells = copy.deepcopy(nb.cells)
    for cell in cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return cells


def test_the_hand_in_is_cleared_and_writes_the_helper_module_just_before_the_first_import():
    nb = fake_notebook()
    original = copy.deepcopy(nb)
    handin = record_run.handin(nb, HELPERS)
    assert nb == original  # a copy: the notebook read is left as it was
    assert [c.get("id") for c in handin.cells[3:5]] == ["helpers-note", "helpers-code"]
    assert handin.cells[5].source.startswith("import gpt_helpers")
    assert handin.cells[4].source == "%%writefile gpt_helpers.py\n" + HELPERS
    assert handin.cells[4].metadata["jupyter"]["source_hidden"] and handin.cells[3].cell_type == "markdown"
    assert all(c.execution_count is None and c.outputs == [] for c in handin.cells if c.cell_type == "code")
    assert [c for c in handin.cells if "execution" in c.metadata] == []
    assert record_run.without_helpers(handin).cells == cleared(nb)  # nothing else changed


def test_only_a_smoke_hand_in_sets_smoke_and_only_in_the_parameters_cell():
    nb = fake_notebook()
    assert record_run.handin(nb, HELPERS).cells[1].source == "SMOKE = False  # True: tiny runs"
    smoke = record_run.handin(nb, HELPERS, smoke=True)
    assert smoke.cells[1].source == "SMOKE = True  # True: tiny runs"
    changed = [c.source for c, before in zip(record_run.without_helpers(smoke).cells, nb.cells)
               if c.source != before.source]
    assert changed == ["SMOKE = True  # True: tiny runs"]


def test_the_notebook_to_commit_is_the_hand_in_without_its_two_helper_cells():
    nb = fake_notebook()
    handin = record_run.handin(nb, HELPERS)
    handin.metadata["widgets"] = {"state": {}}
    committed = record_run.without_helpers(handin)
    assert committed.cells == cleared(nb) and len(handin.cells) == len(committed.cells) + 2
    assert committed.metadata == handin.metadata


def test_a_workdir_that_is_not_empty_is_refused_before_anything_runs(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(record_run, "execute", lambda nb, workdir: ran.append(workdir))
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "left_over.json").write_text("{}")
    with pytest.raises(SystemExit, match="work is not empty: the notebook must run alone in an empty folder"):
        record_run.record(tmp_path / "dest", tmp_path / "work")
    assert ran == [] and not (tmp_path / "dest").exists()


@pytest.mark.parametrize("argv", [["--smoke"], ["--smoke", "--dest", str(ROOT)]])
def test_a_smoke_run_never_writes_into_the_repository(monkeypatch, tmp_path, argv):
    recorded = []
    monkeypatch.setattr(record_run, "record", lambda dest, workdir, smoke: recorded.append((dest, smoke)))
    record_run.main([*argv, "--workdir", str(tmp_path / "work")])
    ((dest, smoke),) = recorded
    assert smoke and ROOT not in [dest.resolve(), *dest.resolve().parents]
    assert list(dest.iterdir()) == []  # a new scratch folder
    dest.rmdir()


def test_a_run_on_record_writes_into_the_repository(monkeypatch, tmp_path):
    recorded = []
    monkeypatch.setattr(record_run, "record", lambda dest, workdir, smoke: recorded.append((dest, workdir, smoke)))
    record_run.main(["--workdir", str(tmp_path / "work")])
    assert recorded == [(ROOT, tmp_path / "work", False)]


def executed_pair(dest):
    """Into dest: a hand-in as a run leaves it (every code cell ran) and its notebook to commit; the committed one."""
    handin = record_run.handin(fake_notebook(), HELPERS)
    for count, cell in enumerate((c for c in handin.cells if c.cell_type == "code"), start=1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"out {count}\n")]
    (dest / "handin").mkdir(parents=True)
    nbformat.write(handin, dest / "handin" / "assignment3.ipynb")
    committed = record_run.without_helpers(handin)
    nbformat.write(committed, dest / "assignment3.ipynb")
    return handin, committed


def test_prose_takes_the_rewritten_answers_into_the_executed_hand_in_and_builds_the_report(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(record_run, "build_report", built.append)
    handin, committed = executed_pair(tmp_path)
    committed.cells[4].source = "**Answer (a).** rewritten by hand"
    nbformat.write(committed, tmp_path / "assignment3.ipynb")
    record_run.main(["--prose", "--dest", str(tmp_path)])
    taken = nbformat.read(tmp_path / "handin" / "assignment3.ipynb", as_version=4)
    assert record_run.without_helpers(taken).cells == committed.cells
    assert taken.cells[3:5] == handin.cells[3:5]  # the helper cells, as they ran
    assert built == [tmp_path]


def test_prose_refuses_a_notebook_whose_code_differs_from_the_run_on_record(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(record_run, "build_report", built.append)
    _, committed = executed_pair(tmp_path)
    committed.cells[-1].source = "print(3)"
    nbformat.write(committed, tmp_path / "assignment3.ipynb")
    before = (tmp_path / "handin" / "assignment3.ipynb").read_bytes()
    with pytest.raises(SystemExit, match="cells or code differ from the run on record's: make a new run on record"):
        record_run.take_prose(tmp_path)
    assert (tmp_path / "handin" / "assignment3.ipynb").read_bytes() == before and built == []


def test_a_cell_that_raises_stops_the_run(tmp_path, capsys):
    nb = nbformat.v4.new_notebook(cells=[code("1 / 0"), code("print('after')")])
    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        record_run.execute(nb, tmp_path)
    assert nb.cells[1].execution_count is None and nb.cells[1].outputs == []
    assert capsys.readouterr().out.startswith("code cell 1 of 2 done")
    kept = nbformat.read(tmp_path / "executed_until_the_error.ipynb", as_version=4)
    assert kept.cells[0].outputs[0]["ename"] == "ZeroDivisionError"
