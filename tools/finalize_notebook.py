"""Make an executed notebook the one to commit: drop papermill's injected-parameters cell and check it.

    python tools/finalize_notebook.py SOURCE.ipynb EXECUTED.ipynb DEST.ipynb

Without the injected cell a later `papermill assignment3.ipynb assignment3.ipynb` (README) is not pinned to the
parameters of this run. Refuses (and writes nothing) when a code cell differs from SOURCE or a cell raised an error.
"""

import json
import sys
from pathlib import Path


def code_cells(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def finalize(source: Path, executed: Path, dest: Path) -> int:
    ex = json.loads(Path(executed).read_text(encoding="utf-8"))
    ex["cells"] = [c for c in ex["cells"] if "injected-parameters" not in c["metadata"].get("tags", [])]
    if code_cells(ex) != code_cells(json.loads(Path(source).read_text(encoding="utf-8"))):
        raise SystemExit(f"{executed}: its code cells differ from {source}; execute the current source notebook")
    errors = [o for c in ex["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        raise SystemExit(f"{executed}: a cell raised {errors[0].get('ename')}: {errors[0].get('evalue')}")
    Path(dest).write_text(json.dumps(ex, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(ex["cells"])


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    n = finalize(*map(Path, sys.argv[1:]))
    print(f"wrote {sys.argv[3]}: {n} cells")
