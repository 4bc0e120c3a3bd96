"""The written discussion against the run on record: every number the notebook's answers quote is a number of
results/<profile>.json, and every written comparison still holds for those numbers. A re-run that changes them fails
here instead of leaving false prose. The report's judgments are checked the same way (its numbers are read from the
results by Typst)."""

import json
import math
import re

import pytest
import set_reported
from conftest import ROOT

NOTEBOOK = json.loads((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))
PROFILE = set_reported.notebook_profile(NOTEBOOK)
R = json.loads((ROOT / "results" / f"{PROFILE}.json").read_text(encoding="utf-8"))
REPORT = (ROOT / "report" / "report.typ").read_text(encoding="utf-8")


def markdown(cell) -> str:
    return "".join(cell["source"])


ANSWERS = [markdown(c) for c in NOTEBOOK["cells"] if c["cell_type"] == "markdown" and "__" not in markdown(c)
           and (markdown(c).startswith("**Answer (") or "<!-- answer -->" in markdown(c))]
PROSE = "\n\n".join(markdown(c) for c in NOTEBOOK["cells"] if c["cell_type"] == "markdown")


def leaves(value):
    """Every number in a nested structure of dicts and lists."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v)


def derived(r: dict) -> list[float]:
    """Numbers the prose may quote that are computed from the results rather than stored in them."""
    b, large = r["baseline"], r["large"]
    h = b["history"]
    out = [math.log(r["data"]["vocab_size"]), r["notebook_time_s"] / 60]
    for run in (b, large, r["muon"]):
        rh = run["history"]
        out += [v - t for v, t in zip(rh["val_loss"], rh["train_loss"])]  # the generalisation gap
        out += [rh["val_loss"][0] - v for v in rh["val_loss"]]  # how far the loss has fallen
        out += [rh["val_loss"][i] - rh["val_loss"][i + 1] for i in range(len(rh["val_loss"]) - 1)]
        out += [run["train_time_s"] / 60, run["memory_mb"]]
    out += [b["best_val_loss"] - run["best_val_loss"] for run in r["architecture_sweep"].values()]
    out += [run["n_params"] / b["n_params"] for run in r["architecture_sweep"].values()]
    out += [run["ms_per_iter"] / b["ms_per_iter"] for run in r["architecture_sweep"].values()]
    out += [h["tokens"][-1] / 1e6, large["history"]["tokens"][-1] / 1e6, large["train_time_s"] / b["train_time_s"]]
    c = r["comparison"]
    out += [c["equal_tokens"]["baseline"] - c["equal_tokens"]["large"], c["equal_time"]["baseline"] -
            c["equal_time"]["large"], large["n_params"] / 1e6, b["n_params"] / 1e6]
    return out


KNOWN = sorted(set(leaves(R)) | set(derived(R)))
ALLOWED = {"90", "10", "1", "2", "3", "4", "5", "0"}  # the split, small counts written as digits
NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\w.]*\d)")


def matches(text: str, percent: bool) -> bool:
    value = float(text.replace(",", ""))
    decimals = len(text.split(".")[1]) if "." in text else 0
    scale = 100 if percent else 1
    return any(round(k * scale, decimals) == value or (decimals == 0 and round(k * scale) == value) for k in KNOWN)


def quoted_numbers(text: str):
    """(number, followed by %) for every number in prose, leaving out LaTeX, code and figure names."""
    text = re.sub(r"\$[^$]*\$|`[^`]*`", " ", text)
    for m in NUMBER.finditer(text):
        yield m.group(), text[m.end() : m.end() + 2].strip().startswith("%")


def test_every_number_an_answer_quotes_is_a_number_of_the_run():
    assert ANSWERS, "no written answers found"
    unknown = [(n, a[:40]) for a in ANSWERS for n, pct in quoted_numbers(a) if n not in ALLOWED and not matches(n, pct)]
    assert unknown == []


def test_the_number_check_finds_a_stale_number():
    assert not matches("1.2345", False) and not matches("97.3", True)


# Written comparisons: (a phrase the notebook's answers contain, the phrase in the report or None, what must hold)
COMPARISONS = []


@pytest.mark.parametrize("phrase, in_report, holds", COMPARISONS, ids=[c[0][:50] for c in COMPARISONS])
def test_every_written_comparison_holds_for_the_run(phrase, in_report, holds):
    assert phrase in PROSE, "the notebook no longer says this: update the list above"
    if in_report:
        assert in_report in re.sub(r"\s+", " ", REPORT)
    assert holds(R)
