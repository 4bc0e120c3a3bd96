"""Build report/report.pdf from report/report.typ and results/<profile>.json.

    python report/build.py            # the results of the profile assignment3.ipynb ran last
    python report/build.py --profile cpu
"""

import argparse
import re
import sys
import warnings
from pathlib import Path

import typst

ROOT = Path(__file__).resolve().parents[1]


def notebook_profile(notebook: Path | None = None) -> str | None:
    """The profile of the executed notebook's run (its last cell prints "wrote results/<profile>.json"), if any."""
    notebook = notebook or ROOT / "assignment3.ipynb"
    found = re.findall(r"wrote results/(\w+)\.json", notebook.read_text(encoding="utf-8")) if notebook.exists() else []
    return found[-1] if found else None


def report_profile(profile: str | None) -> str:
    """`profile`, else the one the notebook ran (so that report and notebook match), else gpu or cpu results."""
    if profile is None:
        profile = notebook_profile() or ("gpu" if (ROOT / "results" / "gpu.json").exists() else "cpu")
    if not (ROOT / "results" / f"{profile}.json").exists():
        raise FileNotFoundError(f"results/{profile}.json does not exist: run the notebook with PROFILE={profile!r} "
                                "first (see README), or pick another --profile")
    return profile


def placeholders(authors: Path = ROOT / "report" / "authors.toml") -> list[str]:
    """The lines of authors.toml that still say FILL IN."""
    return [line.strip() for line in authors.read_text(encoding="utf-8").splitlines() if "FILL IN" in line]


def build(profile: str | None = None, output: Path = ROOT / "report" / "report.pdf") -> Path:
    """Compile the report for `profile`; the PDF replaces `output` only when compilation succeeds."""
    sys.path.insert(0, str(ROOT))
    import gpt_helpers as H

    profile = report_profile(profile)
    unfilled = placeholders()
    if unfilled:
        warnings.warn("\n" + "!" * 100 + "\nreport/authors.toml still holds placeholders; the cover page will show "
                      "them:\n  " + "\n  ".join(unfilled) + "\nFill in your names and matriculation numbers, "
                      "then build again before handing in.\n" + "!" * 100, UserWarning, stacklevel=2)
    with H.atomic_path(output) as tmp:
        typst.compile(str(ROOT / "report" / "report.typ"), output=str(tmp), root=str(ROOT),
                      sys_inputs={"profile": profile})
    return output


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["gpu", "cpu", "smoke"], help="which results/<profile>.json to report")
    parser.add_argument("--output", type=Path, default=ROOT / "report" / "report.pdf")
    args = parser.parse_args()
    print(f"wrote {build(args.profile, args.output)}")
