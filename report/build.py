"""Build report/report.pdf from report/report.typ, results/run.json and the notebook's answers: markdown cells tagged
`answer-<id>`, converted by pandoc to Typst and placed by `#answer("<id>")`, each exactly once."""

import json
import re
import warnings
from pathlib import Path

import pypandoc
import typst

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "report"  # report.typ and authors.toml always come from here, whatever the root
TAG = "answer-"
LABEL = re.compile(r"^\s*\*\*Answer \([a-z]\)\.\*\*\s*")  # "**Answer (a).**": in the report, the heading says it
READER = "gfm+tex_math_dollars+smart"  # how pandoc reads the notebook's markdown, as Jupyter renders it
CODE_OR_MATH = re.compile(r"(`+).*?\1|(?<!\\)\$.*?(?<!\\)\$", re.S)  # in pandoc's Typst: raw text, or math
OPERATOR_SPACE = re.compile(r'("\)?) (?=\\\()')  # \operatorname{f}(x) becomes "f" \( x \): Typst prints the space
PLACED = re.compile(r'#answer\("([\w-]+)"\)')


def placeholders(authors: Path = REPORT / "authors.toml") -> list[str]:
    """The lines of authors.toml that still say FILL IN."""
    return [line.strip() for line in authors.read_text(encoding="utf-8").splitlines() if "FILL IN" in line]


def answer_cells(notebook: Path) -> dict[str, str]:
    """{id: markdown} of the notebook's cells tagged `answer-<id>`, in notebook order."""
    answers = {}
    for cell in json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]:
        for tag in (t for t in cell["metadata"].get("tags", []) if t.startswith(TAG)):
            if cell["cell_type"] != "markdown" or tag.removeprefix(TAG) in answers:
                raise ValueError(f"{notebook}: the tag {tag!r} must mark exactly one markdown cell")
            answers[tag.removeprefix(TAG)] = "".join(cell["source"])
    return answers


def placed_answers(source: str) -> list[str]:
    """The ids report.typ places with `#answer("<id>")`, in order."""
    return PLACED.findall(source)


def check_answers(in_notebook, placed) -> None:
    """Raise ValueError unless the report places every answer of the notebook, once, and nothing else."""
    unplaced = [a for a in in_notebook if a not in placed]
    absent = [a for a in placed if a not in in_notebook]
    twice = sorted({a for a in placed if list(placed).count(a) > 1})
    problems = [f"{what}: {', '.join(TAG + a for a in ids)}" for what, ids in [
        ("answer cells of the notebook that report/report.typ does not place", unplaced),
        ("answers report/report.typ places that the notebook has no cell for", absent),
        ("answers report/report.typ places more than once", twice)] if ids]
    if problems:
        raise ValueError("the report and the notebook's answers disagree; place each answer-<id> cell once with "
                         '#answer("<id>") in report/report.typ:\n  ' + "\n  ".join(problems))


def to_typst(markdown: str) -> str:
    """One answer's markdown as Typst markup, without its "**Answer (x).**" label."""
    markup = pypandoc.convert_text(LABEL.sub("", markdown), "typst", format=READER)
    return CODE_OR_MATH.sub(lambda m: m[0] if m[1] else OPERATOR_SPACE.sub(r"\1", m[0]), markup)


def build(output: Path = REPORT / "report.pdf", root: Path = ROOT) -> Path:
    """Compile the report of root's results/run.json (root holds assignment3.ipynb, results/ and figures/)."""
    root = Path(root).resolve()
    if not (results := root / "results" / "run.json").exists():
        raise FileNotFoundError(f"{results} does not exist: run the notebook first")
    source = (REPORT / "report.typ").read_text(encoding="utf-8")
    answers = answer_cells(root / "assignment3.ipynb")
    check_answers(answers, placed_answers(source))
    if unfilled := placeholders():
        warnings.warn(f"\n{'!' * 100}\nreport/authors.toml still holds placeholders; the cover page will show them:\n  "
                      + "\n  ".join(unfilled) + "\nFill in your names and matriculation numbers, then build again "
                      f"before handing in.\n{'!' * 100}", UserWarning, stacklevel=2)
    inputs = {"authors": (REPORT / "authors.toml").read_text(encoding="utf-8"),
              **{TAG + name: to_typst(markdown) for name, markdown in answers.items()}}
    # The source goes in as bytes, so that Typst's root can be any folder: its paths (/results, /figures) are root's.
    pdf = typst.compile(source.encode("utf-8"), root=str(root), sys_inputs=inputs)
    Path(output).write_bytes(pdf)  # only once compilation succeeded
    return Path(output)


if __name__ == "__main__":
    print(f"wrote {build()}")
