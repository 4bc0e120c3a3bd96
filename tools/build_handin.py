"""Refresh handin/, exactly the two files the course takes: the executed hand-in notebook and the report PDF.

    python report/build.py && python tools/build_handin.py

The hand-in notebook is made by a run on record (python tools/record_run.py): assignment3.ipynb with two cells added
before the helper module is first imported, a short note and a hidden cell holding `%%writefile gpt_helpers.py` and
that module's code verbatim, executed top to bottom alone in an empty folder (a TA has nothing else). The cell is
generated, never edited: gpt_helpers.py stays the one source.

This script never re-creates that notebook. It checks that handin/assignment3.ipynb is the executed hand-in of the
committed assignment3.ipynb (the same code cells with the same outputs, and a helper cell that ran and holds
gpt_helpers.py's current code), takes over the committed notebook's prose (answers rewritten by hand after the run),
and copies report/report.pdf to handin/report.pdf. When the check fails it says to make a new run on record.
"""

import json
import shutil
from pathlib import Path

from nbcode import cell_source as source

ROOT = Path(__file__).resolve().parents[1]
HELPERS_MAGIC = "%%writefile gpt_helpers.py\n"
HELPERS_TAG = "helpers"
HELPER_CELL_IDS = ("helpers-label", "helpers-code")
FILES = ("assignment3.ipynb", "report.pdf")
RECORD_COMMAND = "python tools/record_run.py"


def self_contained(nb: dict, helpers_source: str) -> dict:
    """`nb` with a note and a hidden cell that writes the helper module, before the first `import gpt_helpers`."""
    first_use = next(i for i, c in enumerate(nb["cells"])
                     if c["cell_type"] == "code" and "import gpt_helpers" in "".join(c["source"]))
    label = {"id": HELPER_CELL_IDS[0], "cell_type": "markdown", "metadata": {}, "source": [
        "**The helper module** `gpt_helpers.py` (corpus, dataset, evaluation, figures, the Muon optimiser; no model "
        "code). The hidden cell below holds its code; running it writes the file next to this notebook, so that the "
        "notebook runs on its own in an empty folder. Expand it to read the code."]}
    code = {"id": HELPER_CELL_IDS[1], "cell_type": "code", "execution_count": None, "outputs": [],
            "metadata": {"jupyter": {"source_hidden": True}, "tags": [HELPERS_TAG]},
            "source": (HELPERS_MAGIC + helpers_source).splitlines(keepends=True)}
    return {**nb, "cells": nb["cells"][:first_use] + [label, code] + nb["cells"][first_use:]}


def is_helper(cell: dict) -> bool:
    """Whether `cell` is one of the two cells self_contained inserts."""
    return cell.get("id") in HELPER_CELL_IDS or HELPERS_TAG in cell["metadata"].get("tags", [])


def without_helpers(nb: dict) -> dict:
    """`nb` without the cells self_contained inserted: the notebook to commit."""
    return {**nb, "cells": [c for c in nb["cells"] if not is_helper(c)]}


def embedded_helpers(nb: dict) -> str:
    """The helper module's code inside a hand-in notebook."""
    (cell,) = [c for c in nb["cells"] if HELPERS_TAG in c["metadata"].get("tags", [])]
    return "".join(cell["source"]).removeprefix(HELPERS_MAGIC)


def executed_code(cell: dict) -> tuple:
    """What an execution leaves in a code cell: its source, execution count and outputs."""
    return source(cell), cell.get("execution_count"), cell.get("outputs", [])


def handin_problems(committed: dict, handin: dict, helpers_source: str) -> list[str]:
    """What keeps `handin` from being the executed hand-in of `committed` with `helpers_source` as its helper code."""
    helper_code = [c for c in handin["cells"] if HELPERS_TAG in c["metadata"].get("tags", [])]
    if len(helper_code) != 1:
        return [f"it has {len(helper_code)} cells tagged {HELPERS_TAG!r}, not one"]
    problems = []
    if embedded_helpers(handin) != helpers_source:
        problems.append("its helper cell holds other code than gpt_helpers.py")
    if not helper_code[0].get("execution_count") or not helper_code[0].get("outputs"):
        problems.append("its helper cell did not run with the rest of the notebook")
    cells, committed_cells = without_helpers(handin)["cells"], committed["cells"]
    if [c["cell_type"] for c in cells] != [c["cell_type"] for c in committed_cells]:
        problems.append("its cells are not those of assignment3.ipynb (a cell was added, removed or moved)")
    else:
        code = [(c, mine) for c, mine in zip(cells, committed_cells) if c["cell_type"] == "code"]
        if any(source(c) != source(mine) for c, mine in code):
            problems.append("its code differs from assignment3.ipynb's")
        elif any(executed_code(c) != executed_code(mine) for c, mine in code):
            problems.append("its outputs differ from assignment3.ipynb's")
    if any(not c.get("execution_count") for c in handin["cells"] if c["cell_type"] == "code"):
        problems.append("some of its code cells did not run")
    if any(o.get("output_type") == "error" for c in handin["cells"] for o in c.get("outputs", [])):
        problems.append("a cell raised an error")
    return problems


def with_committed_prose(handin: dict, committed: dict) -> dict:
    """`handin` with the committed notebook's cells (same code and outputs, maybe newer prose) around its helper
    cells; the two notebooks must have passed handin_problems."""
    committed_cells = iter(committed["cells"])
    return {**handin, "cells": [c if is_helper(c) else next(committed_cells) for c in handin["cells"]]}


def read_notebook(path: Path) -> dict:
    """A notebook file as a plain dict."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_notebook(path: Path, nb: dict) -> None:
    """Write `nb` as Jupyter does (sorted keys, one-space indent, UTF-8)."""
    Path(path).write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def build(root: Path = ROOT, dest: Path | None = None) -> Path:
    """Refresh dest (default root/handin): the committed prose into its notebook, the report PDF beside it; refuses
    a hand-in notebook that is not the executed hand-in of root/assignment3.ipynb."""
    dest = dest or root / "handin"
    handin_path = dest / FILES[0]
    if not handin_path.exists():
        raise SystemExit(f"{handin_path} does not exist: make a run on record first ({RECORD_COMMAND})")
    committed, handin = read_notebook(root / "assignment3.ipynb"), read_notebook(handin_path)
    problems = handin_problems(committed, handin, (root / "gpt_helpers.py").read_text(encoding="utf-8"))
    if problems:
        raise SystemExit(f"{handin_path} is not the executed hand-in of assignment3.ipynb: " + "; ".join(problems)
                         + f". Make a new run on record: {RECORD_COMMAND}")
    report = root / "report" / "report.pdf"
    if not report.exists():
        raise SystemExit(f"{report} is missing: run python report/build.py first")
    extra = sorted({p.name for p in dest.iterdir()} - set(FILES))
    if extra:
        raise SystemExit(f"{dest} holds {', '.join(extra)}: only the two files to upload belong there; remove it")
    write_notebook(handin_path, with_committed_prose(handin, committed))
    shutil.copyfile(report, dest / FILES[1])
    return dest


if __name__ == "__main__":
    out = build()
    print(f"wrote {out}/: " + ", ".join(FILES) + ". Upload these two files.")
