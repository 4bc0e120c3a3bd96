"""The run on record in one command: the hand-in notebook executed alone in an empty folder, then what it made.

    python tools/record_run.py           # writes assignment3.ipynb, handin/, results/, figures/, report/report.pdf
    python tools/record_run.py --smoke   # a rehearsal of a minute (SMOKE = True), written into a scratch folder
    python tools/record_run.py --prose   # after rewriting answers in assignment3.ipynb: their text into the
                                         # hand-in, and the report built again

The hand-in is assignment3.ipynb without outputs, plus a note and a hidden cell that writes gpt_helpers.py (its one
source) before the notebook first imports it. nbclient runs it top to bottom in a new folder that holds only the
corpus; nothing is edited while it runs.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "report"))
import build as report  # noqa: E402

HELPER_IDS = ("helpers-note", "helpers-code")
NOTE = ("**The helper module** `gpt_helpers.py` (corpus, dataset, evaluation, figures, the Muon optimiser; no model "
        "code). The hidden cell below holds its code; running it writes the file next to this notebook, so that the "
        "notebook runs on its own in an empty folder. Expand it to read the code.")


def handin(nb: nbformat.NotebookNode, helpers_source: str, smoke: bool = False) -> nbformat.NotebookNode:
    """`nb` without outputs, with the helper cells before its first `import gpt_helpers`; `smoke` sets SMOKE."""
    nb = nbformat.from_dict(nb)  # a copy
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if smoke and "parameters" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace("SMOKE = False", "SMOKE = True", 1)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "import gpt_helpers" in c.source)
    code = nbformat.v4.new_code_cell("%%writefile gpt_helpers.py\n" + helpers_source, id=HELPER_IDS[1],
                                     metadata={"jupyter": {"source_hidden": True}, "tags": ["helpers"]})
    nb.cells[first:first] = [nbformat.v4.new_markdown_cell(NOTE, id=HELPER_IDS[0]), code]
    return nb


def without_helpers(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The executed hand-in without its helper cells: the notebook to commit."""
    return nbformat.from_dict({**nb, "cells": [c for c in nb.cells if c.get("id") not in HELPER_IDS]})


def execute(nb: nbformat.NotebookNode, workdir: Path) -> None:
    """Run `nb` in place, in `workdir`, printing each code cell as it completes. A cell that raises stops the run;
    the notebook as far as it ran is kept in `workdir`, and nothing else is written."""
    start, code = time.perf_counter(), [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]

    def done(cell, cell_index, **_):
        print(f"code cell {code.index(cell_index) + 1} of {len(code)} done ({time.perf_counter() - start:.0f} s)",
              flush=True)

    client = NotebookClient(nb, timeout=None, kernel_name="python3", on_cell_executed=done,
                            resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    except CellExecutionError:
        nbformat.write(nb, workdir / "executed_until_the_error.ipynb")
        raise


def record(dest: Path, workdir: Path, smoke: bool = False) -> None:
    """Execute the hand-in in the empty `workdir`, then write notebook, hand-in, results, figures and report."""
    nb = handin(nbformat.read(ROOT / "assignment3.ipynb", as_version=4),
                (ROOT / "gpt_helpers.py").read_text(encoding="utf-8"), smoke)
    workdir.mkdir(parents=True, exist_ok=True)
    if any(workdir.iterdir()):
        raise SystemExit(f"{workdir} is not empty: the notebook must run alone in an empty folder; name a new one")
    if (ROOT / "data" / "input.txt").exists():  # else the notebook downloads it
        (workdir / "data").mkdir()
        shutil.copyfile(ROOT / "data" / "input.txt", workdir / "data" / "input.txt")
    execute(nb, workdir)
    for folder in ("handin", "results", "figures", "report"):
        (dest / folder).mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest / "handin" / "assignment3.ipynb")
    nbformat.write(without_helpers(nb), dest / "assignment3.ipynb")
    shutil.copyfile(workdir / "results" / "run.json", dest / "results" / "run.json")
    for figure in (workdir / "figures").iterdir():
        shutil.copyfile(figure, dest / "figures" / figure.name)
    build_report(dest)


def build_report(dest: Path) -> None:
    """The report of dest's notebook and results, also as the hand-in's PDF."""
    report.build(output=dest / "report" / "report.pdf", root=dest)
    shutil.copyfile(dest / "report" / "report.pdf", dest / "handin" / "report.pdf")


def take_prose(dest: Path) -> None:
    """The markdown of dest/assignment3.ipynb into the executed hand-in, whose code must be the same."""
    committed = nbformat.read(dest / "assignment3.ipynb", as_version=4)
    executed = nbformat.read(dest / "handin" / "assignment3.ipynb", as_version=4)
    if [(c.cell_type, c.source if c.cell_type == "code" else "") for c in committed.cells] != [
            (c.cell_type, c.source if c.cell_type == "code" else "") for c in without_helpers(executed).cells]:
        raise SystemExit("assignment3.ipynb's cells or code differ from the run on record's: make a new run on "
                         "record (python tools/record_run.py)")
    markdown = iter(c.source for c in committed.cells if c.cell_type == "markdown")
    for cell in executed.cells:
        if cell.cell_type == "markdown" and cell.get("id") not in HELPER_IDS:
            cell.source = next(markdown)
    nbformat.write(executed, dest / "handin" / "assignment3.ipynb")
    build_report(dest)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny runs, written into --dest (default: scratch)")
    parser.add_argument("--prose", action="store_true", help="take the answers' new text; run nothing")
    parser.add_argument("--dest", type=Path, help="where to write (default: the repository)")
    parser.add_argument("--workdir", type=Path, help="an empty or new folder to run in (default: a new one)")
    args = parser.parse_args(argv)
    if args.smoke and (args.dest or ROOT).resolve() == ROOT:
        args.dest = Path(tempfile.mkdtemp(prefix="smoke_record_"))  # a rehearsal never writes the record
    dest = args.dest or ROOT
    if args.prose:
        return take_prose(dest)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="record_run_"))
    record(dest, workdir, args.smoke)
    print(f"wrote the notebook, handin/, results/run.json, figures/ and the report into {dest}; ran in {workdir}")


if __name__ == "__main__":
    main()
