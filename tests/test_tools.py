"""tools/finalize_notebook.py: what gets committed after a papermill run."""

import json

import nbformat
import pytest
from finalize_notebook import finalize


def write(path, cells):
    nb = nbformat.v4.new_notebook(cells=cells)
    path.write_text(json.dumps(nb))
    return path


def source_cells():
    params = nbformat.v4.new_code_cell('PROFILE = "auto"')
    params.metadata["tags"] = ["parameters"]
    return [nbformat.v4.new_markdown_cell("# title"), params, nbformat.v4.new_code_cell("print(PROFILE)")]


def executed_cells(code="print(PROFILE)", error=False):
    cells = source_cells()
    injected = nbformat.v4.new_code_cell('PROFILE = "cpu"')
    injected.metadata["tags"] = ["injected-parameters"]
    last = nbformat.v4.new_code_cell(code)
    last.outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])] if error else [
        nbformat.v4.new_output("stream", name="stdout", text="cpu\n")]
    return [cells[0], cells[1], injected, last]


def test_drops_the_injected_parameters_cell_and_keeps_outputs(tmp_path):
    src = write(tmp_path / "src.ipynb", source_cells())
    ex = write(tmp_path / "ex.ipynb", executed_cells())
    assert finalize(src, ex, tmp_path / "out.ipynb") == 3
    out = json.loads((tmp_path / "out.ipynb").read_text())
    assert [c["source"] for c in out["cells"]] == ["# title", 'PROFILE = "auto"', "print(PROFILE)"]
    assert out["cells"][2]["outputs"][0]["text"] == "cpu\n"


@pytest.mark.parametrize("kwargs,message", [(dict(code="print(1)"), "differ"), (dict(error=True), "ValueError")])
def test_refuses_a_stale_or_failed_run_and_writes_nothing(tmp_path, kwargs, message):
    src = write(tmp_path / "src.ipynb", source_cells())
    ex = write(tmp_path / "ex.ipynb", executed_cells(**kwargs))
    dest = tmp_path / "out.ipynb"
    dest.write_text("previous")
    with pytest.raises(SystemExit, match=message):
        finalize(src, ex, dest)
    assert dest.read_text() == "previous"
