"""Write handin/: exactly the two files the course takes, the executed notebook and the report PDF.

    python tools/build_handin.py

The hand-in notebook is assignment3.ipynb, outputs included, with two cells added before the helper module is first
imported: a short note, then a hidden cell holding `%%writefile gpt_helpers.py` and that module's code verbatim, so
that the notebook runs alone in an empty folder (a TA has nothing else). The cell is generated, never edited:
gpt_helpers.py stays the one source.
"""

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELPERS_MAGIC = "%%writefile gpt_helpers.py\n"
FILES = ("assignment3.ipynb", "report.pdf")


def self_contained(nb: dict, helpers_source: str) -> dict:
    """`nb` with a note and a hidden cell that writes the helper module, before the first `import gpt_helpers`."""
    first_use = next(i for i, c in enumerate(nb["cells"])
                     if c["cell_type"] == "code" and "import gpt_helpers" in "".join(c["source"]))
    label = {"id": "helpers-label", "cell_type": "markdown", "metadata": {}, "source": [
        "**The helper module** `gpt_helpers.py` (corpus, dataset, evaluation, figures, the Muon optimiser; no model "
        "code). The hidden cell below holds its code: running it writes the file next to this notebook, so that the "
        "notebook runs on its own. Expand it to read the code. In the run whose outputs you see, the notebook ran in "
        "its repository, where `gpt_helpers.py` was already in place with exactly this code; that is why this cell "
        "shows no output of its own."]}
    code = {"id": "helpers-code", "cell_type": "code", "execution_count": None, "outputs": [],
            "metadata": {"jupyter": {"source_hidden": True}, "tags": ["helpers"]},
            "source": (HELPERS_MAGIC + helpers_source).splitlines(keepends=True)}
    return {**nb, "cells": nb["cells"][:first_use] + [label, code] + nb["cells"][first_use:]}


def embedded_helpers(nb: dict) -> str:
    """The helper module's code inside a hand-in notebook."""
    (cell,) = [c for c in nb["cells"] if "helpers" in c["metadata"].get("tags", [])]
    return "".join(cell["source"]).removeprefix(HELPERS_MAGIC)


def build(root: Path = ROOT, dest: Path | None = None) -> Path:
    """Write dest (default root/handin) with the two files; refuses a notebook that was not executed cleanly."""
    dest = dest or root / "handin"
    nb = json.loads((root / "assignment3.ipynb").read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if any("injected-parameters" in c["metadata"].get("tags", []) for c in code):
        raise SystemExit("assignment3.ipynb holds papermill's injected parameters: finalize it first (README)")
    if not all(c.get("execution_count") for c in code):
        raise SystemExit("assignment3.ipynb has cells that did not run: execute it top to bottom first (README)")
    if any(o.get("output_type") == "error" for c in code for o in c.get("outputs", [])):
        raise SystemExit("assignment3.ipynb holds an error output: fix it and execute it again")
    report = root / "report" / "report.pdf"
    if not report.exists():
        raise SystemExit(f"{report} is missing: run python report/build.py first")
    handin = self_contained(nb, (root / "gpt_helpers.py").read_text(encoding="utf-8"))
    dest.mkdir(exist_ok=True)
    extra = sorted({p.name for p in dest.iterdir()} - set(FILES))
    if extra:
        raise SystemExit(f"{dest} holds {', '.join(extra)}: only the two files to upload belong there; remove it")
    (dest / FILES[0]).write_text(json.dumps(handin, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    shutil.copyfile(report, dest / FILES[1])
    return dest


if __name__ == "__main__":
    out = build()
    print(f"wrote {out}/: " + ", ".join(FILES) + ". Upload these two files.")
