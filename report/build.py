"""Build report/report.pdf from report/report.typ and results/<profile>.json.

    python report/build.py                 # the profile of the notebook's parameters cell (the reported run)
    python report/build.py --profile smoke
"""

import argparse
import json
import re
import warnings
from pathlib import Path

import typst

ROOT = Path(__file__).resolve().parents[1]


def notebook_profile(notebook: Path | None = None) -> str:
    """The profile the notebook's parameters cell sets: the reported run."""
    nb = json.loads((notebook or ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))
    (cell,) = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    return re.search(r'PROFILE = "(\w+)"', "".join(cell["source"])).group(1)


def placeholders(authors: Path = ROOT / "report" / "authors.toml") -> list[str]:
    """The lines of authors.toml that still say FILL IN."""
    return [line.strip() for line in authors.read_text(encoding="utf-8").splitlines() if "FILL IN" in line]


def build(profile: str | None = None, output: Path = ROOT / "report" / "report.pdf") -> Path:
    """Compile the report for `profile`; the PDF replaces `output` only when compilation succeeds."""
    profile = profile or notebook_profile()
    if not (ROOT / "results" / f"{profile}.json").exists():
        raise FileNotFoundError(f"results/{profile}.json does not exist: run the notebook with PROFILE={profile!r} "
                                "first (see README)")
    unfilled = placeholders()
    if unfilled:
        warnings.warn("\n" + "!" * 100 + "\nreport/authors.toml still holds placeholders; the cover page will show "
                      "them:\n  " + "\n  ".join(unfilled) + "\nFill in your names and matriculation numbers, "
                      "then build again before handing in.\n" + "!" * 100, UserWarning, stacklevel=2)
    pdf = typst.compile(str(ROOT / "report" / "report.typ"), root=str(ROOT), sys_inputs={"profile": profile})
    Path(output).write_bytes(pdf)
    return Path(output)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["cpu", "gpu", "smoke"], help="which results/<profile>.json to report")
    parser.add_argument("--output", type=Path, default=ROOT / "report" / "report.pdf")
    args = parser.parse_args()
    print(f"wrote {build(args.profile, args.output)}")
