"""Make a run on record in one command: execute the hand-in notebook alone in an empty folder, then write what it made.

    python tools/record_run.py                    # the profile "auto" picks here: cpu on a machine without a GPU
    python tools/record_run.py --profile cpu      # the cpu run on record (fails if auto would pick gpu here)
    python tools/record_run.py --profile gpu      # the gpu run on record, on a CUDA GPU with bf16
    python tools/record_run.py --profile smoke    # a rehearsal of about a minute: never a record, never the repository

Options: --dest DIR, where to write (default: the repository root; for smoke a new temporary folder);
--workdir DIR, the empty folder to execute in (default: a new temporary folder, kept: it holds the checkpoints);
--notebook PATH, the notebook to hand in (default: assignment3.ipynb); --no-report, skip the report build.

What it does:
1. Builds the hand-in notebook from assignment3.ipynb with its outputs cleared (tools/build_handin.py adds the cell
   that writes gpt_helpers.py). For cpu or gpu, PROFILE stays "auto" and the profile joins PROFILES_ON_RECORD in the
   `profiles` cell; for smoke, the parameters cell says PROFILE = "smoke".
2. Executes it top to bottom, the helper cell included, in the empty folder with only data/input.txt copied in (or
   TINYSHAKESPEARE_PATH set), printing each code cell as it completes. Just before the `reference` cell runs, this
   profile's entry of REFERENCE becomes reported_numbers (the notebook's `reproduction` cell) of the results this
   execution has just written, so the reproduction table at the end compares the run with itself.
3. Refuses to write anything when a cell raised an error, when "auto" chose another profile than the one asked
   for, or when the notebook to be overwritten was edited while it ran.
4. Writes into DEST: handin/assignment3.ipynb (the executed hand-in), assignment3.ipynb (the same without its two
   helper cells), results/<profile>.json and figures/*_<profile>.{png,pdf}; then builds the report into
   report/report.pdf and copies it to handin/report.pdf.
5. Lists the written answers whose numbers or comparisons these results no longer hold (tests/prose_checks.py), to
   be rewritten by hand, and prints a summary.
"""

import argparse
import ast
import importlib.util
import json
import os
import pprint
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))
from build_handin import read_notebook, self_contained, without_helpers  # noqa: E402
from nbcode import cell_source, notebook_cells  # noqa: E402

NOTEBOOK = ROOT / "assignment3.ipynb"
CORPUS = ROOT / "data" / "input.txt"
CORPUS_ENV = "TINYSHAKESPEARE_PATH"
PROFILES = ("auto", "cpu", "gpu", "smoke")
RECORDED_PROFILES = ("cpu", "gpu")
PROFILE_LINE = re.compile(r'^PROFILE = "\w+"', re.M)
ON_RECORD_LINE = re.compile(r"^PROFILES_ON_RECORD = (\[[^\]\n]*\])", re.M)
REFERENCE_LINE = re.compile(r"^REFERENCE = ", re.M)


class RecordError(Exception):
    """A run that cannot go on record; the message says why and what to do."""


# The notebook's sources, edited as text


def with_profile(source: str, profile: str) -> str:
    """The parameters cell's source with `PROFILE = "<profile>"` (its comment kept)."""
    edited, count = PROFILE_LINE.subn(f'PROFILE = "{profile}"', source, count=1)
    if not count:
        raise RecordError(f'the parameters cell has no line PROFILE = "...", so it cannot be set to {profile!r}; '
                          f"its source: {source[:200]!r}")
    return edited


def profiles_on_record(source: str) -> list[str]:
    """The list the profiles cell's line `PROFILES_ON_RECORD = [...]` holds."""
    match = ON_RECORD_LINE.search(source)
    if not match:
        raise RecordError("the profiles cell has no line PROFILES_ON_RECORD = [...] (the profiles whose run on record "
                          "the notebook carries): add it to the cell tagged 'profiles'")
    return ast.literal_eval(match.group(1))


def with_profile_on_record(source: str, profile: str) -> str:
    """The profiles cell's source with `profile` added to PROFILES_ON_RECORD if missing; nothing else changes."""
    on_record = profiles_on_record(source)
    if profile in on_record:
        return source
    match = ON_RECORD_LINE.search(source)
    listed = ", ".join(f'"{p}"' for p in [*on_record, profile])
    return f"{source[: match.start(1)]}[{listed}]{source[match.end(1) :]}"


def reference_entries(source: str) -> dict:
    """The REFERENCE dict (profile name -> reported numbers) a `reference` cell's source defines."""
    match = REFERENCE_LINE.search(source)
    if not match:
        raise RecordError(f"the cell tagged 'reference' has no line REFERENCE = {{...}}; its source: {source[:200]!r}")
    return ast.literal_eval(source[match.end() :])


def reference_source(previous: str, profile: str, numbers: dict) -> str:
    """The `reference` cell's source with `numbers` as `profile`'s entry; the other entries and the lines above
    REFERENCE stay as they were."""
    entries = {**reference_entries(previous), profile: numbers}
    header = previous[: REFERENCE_LINE.search(previous).start()]
    return f"{header}REFERENCE = {pprint.pformat(entries, width=110, sort_dicts=False)}"


# The hand-in to execute


def tagged_cell(nb: dict, tag: str) -> dict:
    """The one cell tagged `tag`."""
    cells = [c for c in nb["cells"] if tag in c["metadata"].get("tags", [])]
    if len(cells) != 1:
        raise RecordError(f"the notebook has {len(cells)} cells tagged {tag!r}, not one: tag exactly one")
    return cells[0]


def cleared(nb: dict) -> dict:
    """`nb` as before its first run: no outputs, execution counts or timings of an earlier run."""
    nb = json.loads(json.dumps(nb))
    nb["metadata"].pop("papermill", None)
    for cell in nb["cells"]:
        for key in ("papermill", "execution"):
            cell["metadata"].pop(key, None)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def set_source(cell: dict, text: str) -> None:
    """Replace a cell's source, in the form it is stored in (a string or a list of lines)."""
    cell["source"] = text if isinstance(cell["source"], str) else text.splitlines(keepends=True)


def handin_notebook(notebook: dict, helpers_source: str, profile: str) -> nbformat.NotebookNode:
    """The hand-in to execute: `notebook` cleared, with the helper cells, its sources set up for `profile`."""
    nb = self_contained(cleared(notebook), helpers_source)
    tagged_cell(nb, "reference")  # fail now rather than after a run of minutes
    if profile == "smoke":
        params = tagged_cell(nb, "parameters")
        set_source(params, with_profile(cell_source(params), profile))
    elif profile in RECORDED_PROFILES:
        profiles = tagged_cell(nb, "profiles")
        set_source(profiles, with_profile_on_record(cell_source(profiles), profile))
    return nbformat.reads(json.dumps(nb), as_version=4)


# The execution


def written_results(workdir: Path) -> dict:
    """The one results file this execution has written into workdir/results."""
    paths = sorted((workdir / "results").glob("*.json"))
    if len(paths) != 1:
        raise RecordError(f"expected one results file in {workdir / 'results'} when the reference cell runs, found "
                          f"{[p.name for p in paths]}: the cell that writes RESULTS must come before it")
    return json.loads(paths[0].read_text(encoding="utf-8"))


def check_profile(chosen: str, requested: str) -> None:
    """Fail when the notebook ran another profile than the one asked for ("auto" accepts any)."""
    if requested == "auto" or chosen == requested:
        return
    why = {"gpu": "the gpu profile needs a CUDA GPU with bf16 (compute capability 8.0 or later)",
           "cpu": "auto picks gpu on a CUDA GPU with bf16 once gpu is on record: record cpu on a machine without one"}
    raise RecordError(f"asked for the {requested} profile, but auto chose {chosen} on this machine: "
                      f"{why.get(requested, 'run with the profile auto picks here')}")


def reference_setter(workdir: Path, notebook_path: Path, requested: str):
    """A hook for just before a cell runs: the `reference` cell gets this profile's entry from the results this
    execution has written, computed by the notebook's own `reproduction` cell."""

    def set_reference(cell, **_) -> None:
        if "reference" not in cell.metadata.get("tags", []):
            return
        results = written_results(workdir)
        check_profile(results["profile"], requested)
        reproduction = notebook_cells("reproduction", notebook=notebook_path, name="record_run_reproduction")
        cell.source = reference_source(cell.source, results["profile"], reproduction.reported_numbers(results))

    return set_reference


def minutes(seconds: float) -> str:
    """Seconds as m:ss."""
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


class Progress:
    """Prints each code cell as it completes: which of how many, its time and the time since the start."""

    def __init__(self, nb: nbformat.NotebookNode):
        self.code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
        self.start = self.cell_start = time.perf_counter()
        self.current = None

    def cell_started(self, cell_index: int, **_) -> None:
        """Note the cell that is about to run and when."""
        self.current, self.cell_start = cell_index, time.perf_counter()

    def name(self, cell_index: int) -> str:
        """'cell 3 of 40': the cell's place among the code cells."""
        return f"cell {self.code_cells.index(cell_index) + 1} of {len(self.code_cells)}"

    def cell_done(self, cell_index: int, **_) -> None:
        """Print the cell that has just completed."""
        now = time.perf_counter()
        print(f"{self.name(cell_index)} done in {now - self.cell_start:.1f} s ({minutes(now - self.start)} elapsed)",
              flush=True)


def error_outputs(nb: dict) -> list[str]:
    """Every error a cell's outputs hold, as 'cell i: name: value'."""
    return [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb["cells"])
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def write_notebook(path: Path, nb: dict) -> Path:
    """Write `nb` as Jupyter does, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nbformat.from_dict(nb)) + "\n", encoding="utf-8")
    return path


def execute(nb: nbformat.NotebookNode, workdir: Path, requested: str) -> nbformat.NotebookNode:
    """Execute `nb` (saved as workdir/assignment3.ipynb) top to bottom in workdir, its reference cell set from this
    run; refuses a run in which a cell raised an error."""
    notebook_path = write_notebook(workdir / "assignment3.ipynb", nb)
    progress, set_reference = Progress(nb), reference_setter(workdir, notebook_path, requested)

    def before_cell(cell, cell_index, **_):
        progress.cell_started(cell_index)
        set_reference(cell)

    client = NotebookClient(nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(workdir)}},
                            on_cell_execute=before_cell, on_cell_executed=progress.cell_done)
    try:
        client.execute()
    except CellExecutionError as error:
        partial = write_notebook(workdir / "executed_until_the_error.ipynb", nb)
        raise RecordError(f"code {progress.name(progress.current)} raised {error.ename}: {error.evalue}; nothing "
                          f"was written. The notebook as far as it ran: {partial}") from error
    errors = error_outputs(nb)
    if errors:
        raise RecordError(f"the executed notebook holds errors ({'; '.join(errors)}); nothing was written")
    return nb


def place_corpus(workdir: Path) -> None:
    """Copy the corpus to workdir/data/input.txt, where a TA keeps it (unless TINYSHAKESPEARE_PATH names a copy)."""
    if CORPUS.exists():
        (workdir / "data").mkdir()
        shutil.copyfile(CORPUS, workdir / "data" / "input.txt")
    elif not os.environ.get(CORPUS_ENV):
        print(f"no corpus at {CORPUS} and {CORPUS_ENV} is not set: the notebook will download it", flush=True)


def empty_workdir(workdir: Path | None) -> Path:
    """The folder to execute in: `workdir`, which must be empty or new, or else a new temporary folder."""
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="record_run_"))
    if workdir.exists() and any(workdir.iterdir()):
        raise RecordError(f"--workdir {workdir} is not empty: the notebook must run in an empty folder; name a new one")
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def destination(profile: str, dest: Path | None) -> Path:
    """Where to write: `dest`, else the repository root; the smoke profile never writes into the repository."""
    if profile != "smoke":
        return dest or ROOT
    if dest is None:
        return Path(tempfile.mkdtemp(prefix="record_run_smoke_"))
    if dest.resolve() == ROOT:
        raise RecordError("the smoke profile is never a record: give --dest another folder than the repository root")
    return dest


# What the run leaves


def check_unchanged(notebook: Path, text_it_ran: str, dest: Path) -> None:
    """Refuse to overwrite the notebook with its executed copy when it was edited while it ran."""
    if (dest / "assignment3.ipynb").resolve() == notebook.resolve() and (
            notebook.read_text(encoding="utf-8") != text_it_ran):
        raise RecordError(f"{notebook} was edited while it ran, and writing its executed copy would undo that; "
                          "nothing was written: make the run again")


def write_record(nb: nbformat.NotebookNode, workdir: Path, dest: Path, profile: str) -> list[Path]:
    """Write the executed hand-in, the notebook to commit, the results and the figures into dest."""
    handin = json.loads(nbformat.writes(nb))
    written = [write_notebook(dest / "handin" / "assignment3.ipynb", handin),
               write_notebook(dest / "assignment3.ipynb", without_helpers(handin))]
    made = [workdir / "results" / f"{profile}.json", *sorted((workdir / "figures").glob(f"*_{profile}.png")),
            *sorted((workdir / "figures").glob(f"*_{profile}.pdf"))]
    for path in made:
        target = dest / path.relative_to(workdir)
        target.parent.mkdir(parents=True, exist_ok=True)
        written.append(Path(shutil.copyfile(path, target)))
    return written


def build_report(profile: str, dest: Path) -> list[Path]:
    """Build the report of dest's results into dest/report/report.pdf and copy it to dest/handin/report.pdf."""
    spec = importlib.util.spec_from_file_location("report_build", ROOT / "report" / "build.py")
    report_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report_build)
    output = dest / "report" / "report.pdf"
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        report_build.build(profile, output=output, root=dest)
    except Exception as error:
        raise RecordError(f"the report did not build ({type(error).__name__}: {error}); the notebook, results and "
                          f"figures are written in {dest}: build the report with python report/build.py --profile "
                          f"{profile}, then python tools/build_handin.py") from error
    return [output, Path(shutil.copyfile(output, dest / "handin" / "report.pdf"))]


def stale_answers(notebook: dict, results: dict) -> dict[str, list[str]] | None:
    """The written answers whose quoted numbers or comparisons `results` no longer hold (tests/prose_checks.py);
    None when that module is not there."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import prose_checks
    except ModuleNotFoundError as error:
        if error.name != "prose_checks":
            raise
        return None
    return prose_checks.stale_answers(notebook, results)


def print_stale_answers(stale: dict[str, list[str]] | None) -> None:
    """List the answers to rewrite by hand, each with its quoted texts."""
    if stale is None:
        print("the prose checks (tests/prose_checks.py) were not found: no list of answers to re-read")
    elif not any(stale.values()):
        print("every written answer still holds for these results")
    else:
        print("answers whose numbers or comparisons no longer hold these results; rewrite them by hand:")
        for tag, quotes in stale.items():
            print(f"  {tag}:" + "".join(f"\n    {quote}" for quote in quotes))


def written_summary(written: list[Path], dest: Path) -> str:
    """The files written, relative to dest, the figures counted rather than listed."""
    names = [p.relative_to(dest).as_posix() for p in written]
    figures = [n for n in names if n.startswith("figures/")]
    others = [n for n in names if not n.startswith("figures/")]
    return ", ".join(others + ([f"{len(figures)} figures in figures/"] if figures else []))


def record(profile: str = "auto", dest: Path | None = None, notebook: Path = NOTEBOOK, workdir: Path | None = None,
           report: bool = True) -> dict:
    """Make a run on record of `profile` (see the module's docstring); returns its results."""
    dest = destination(profile, dest)
    notebook_text = notebook.read_text(encoding="utf-8")
    nb = handin_notebook(json.loads(notebook_text), (ROOT / "gpt_helpers.py").read_text(encoding="utf-8"), profile)
    workdir = empty_workdir(workdir)
    place_corpus(workdir)
    print(f"executing the hand-in notebook ({len(Progress(nb).code_cells)} code cells, profile {profile}) in {workdir}",
          flush=True)
    start = time.perf_counter()
    nb = execute(nb, workdir, profile)
    wall_s = time.perf_counter() - start
    results = written_results(workdir)
    check_profile(results["profile"], profile)
    check_unchanged(notebook, notebook_text, dest)
    written = write_record(nb, workdir, dest, results["profile"])
    if report:
        written += build_report(results["profile"], dest)
    if results["profile"] != "smoke":
        print_stale_answers(stale_answers(read_notebook(dest / "assignment3.ipynb"), results))
    print(f"profile {results['profile']} on {results['machine']['name']}: the notebook's own clock "
          f"{results['notebook_time_s']:.0f} s, the execution {wall_s:.0f} s\nwrote into {dest}: "
          f"{written_summary(written, dest)}\nthe folder it ran in (checkpoints, corpus): {workdir}")
    return results


def main(argv: list[str] | None = None) -> int:
    """The command line; exits with the reason when the run cannot go on record."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=PROFILES, default="auto")
    parser.add_argument("--dest", type=Path, help="where to write (default: the repository root)")
    parser.add_argument("--workdir", type=Path, help="an empty or new folder to execute in")
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK, help="the notebook to hand in")
    parser.add_argument("--no-report", dest="report", action="store_false", help="skip the report build")
    args = parser.parse_args(argv)
    try:
        record(args.profile, args.dest, args.notebook, args.workdir, args.report)
    except RecordError as error:
        raise SystemExit(f"record_run: {error}") from error
    return 0


if __name__ == "__main__":
    sys.exit(main())
