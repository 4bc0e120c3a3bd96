"""Write the reported run's numbers into the notebook's `reported` cell, from results/<profile>.json.

    python tools/set_reported.py            # the profile of the notebook's parameters cell (cpu)

The notebook's last section compares a re-run with these numbers, so the hand-in needs nothing beside itself. The
cell changes only when the results do; after it changes, run the notebook again so that its outputs show the
comparison with the numbers it now holds.
"""

import json
import pprint
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbcode import cell_source, notebook_cells  # noqa: E402

HEADER = "# The run the PDF reports: its profile, device, precision and losses, copied from its results file\n"


def reported_cell(results: dict, notebook: Path = ROOT / "assignment3.ipynb") -> str:
    """The `reported` cell's source: the notebook's own reported_numbers of `results`."""
    numbers = notebook_cells("reproduction", notebook=notebook, name="reproduction_cell").reported_numbers(results)
    return HEADER + f"REPORTED = {pprint.pformat(numbers, width=110, sort_dicts=False)}"


def notebook_profile(nb: dict) -> str:
    (params,) = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    return re.search(r'PROFILE = "(\w+)"', cell_source(params)).group(1)


def set_reported(notebook: Path = ROOT / "assignment3.ipynb", results_dir: Path = ROOT / "results") -> bool:
    """Rewrite the `reported` cell from the results of the notebook's profile; True if it changed."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    results_path = results_dir / f"{notebook_profile(nb)}.json"
    if not results_path.exists():
        raise SystemExit(f"{results_path} does not exist: run the notebook first (README)")
    (cell,) = [c for c in nb["cells"] if "reported" in c["metadata"].get("tags", [])]
    source = reported_cell(json.loads(results_path.read_text(encoding="utf-8")), notebook)
    if cell_source(cell) == source:
        return False
    cell["source"] = source.splitlines(keepends=True)
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


if __name__ == "__main__":
    changed = set_reported()
    print("the reported cell changed: run the notebook again" if changed else "the reported cell is up to date")
