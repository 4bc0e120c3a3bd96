"""The written discussion against the run on record: every number the notebook's answers quote is a number of
results/<profile>.json, and every written comparison still holds for those numbers. A re-run that changes them fails
here instead of leaving false prose. The report's written discussions (its `#answer[...]` blocks) are checked the
same way; its other numbers are read from the results by Typst."""

import json
import math
import re
from collections import Counter

import pytest
import set_reported
from conftest import ROOT

import gpt_helpers as H

NOTEBOOK = json.loads((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))
PROFILE = set_reported.notebook_profile(NOTEBOOK)
R = json.loads((ROOT / "results" / f"{PROFILE}.json").read_text(encoding="utf-8"))
REPORT = (ROOT / "report" / "report.typ").read_text(encoding="utf-8")


def markdown(cell) -> str:
    return "".join(cell["source"])


ANSWERS = [markdown(c) for c in NOTEBOOK["cells"] if c["cell_type"] == "markdown" and "__" not in markdown(c)
           and (markdown(c).startswith("**Answer (") or "<!-- answer -->" in markdown(c))]
PROSE = "\n\n".join(markdown(c) for c in NOTEBOOK["cells"] if c["cell_type"] == "markdown")


def report_answers(source: str) -> list[str]:
    """The bodies of the report's `#answer[...]` blocks (brackets balanced)."""
    out = []
    for start in (m.end() for m in re.finditer(r"#answer\[", source)):
        depth, i = 1, start
        while depth:
            depth += {"[": 1, "]": -1}.get(source[i], 0)
            i += 1
        out.append(source[start : i - 1])
    return out


REPORT_ANSWERS = report_answers(REPORT)


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
    out = [math.log(r["data"]["vocab_size"]), r["notebook_time_s"] / 60,
           abs(r["optimizer_comparison"]["time_ratio"] - 1),  # how far apart the optimisers' training times are
           b["train_config"]["batch_size"] * b["config"]["block_size"],  # characters per iteration
           3 + len(r["architecture_sweep"]) + len(r["lr_sweep"]) - 1 + 2,  # training runs (the lr sweep reuses one)
           b["config"]["block_size"] - 1]  # characters two neighbouring windows share
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
    out += [subset_offset(b), subset_offset(large), corrected_equal_tokens_gap(r)]
    return out


def subset_offset(run: dict) -> float:
    """How far the kept weights' loss on the whole validation split lies above the fixed subset's lowest loss."""
    return run["best_val_loss"] - min(run["history"]["val_loss"])


def corrected_equal_tokens_gap(r: dict) -> float:
    """The baseline's loss minus the larger model's at equal tokens, each corrected by its subset's offset."""
    c = r["comparison"]["equal_tokens"]
    return (c["baseline"] + subset_offset(r["baseline"])) - (c["large"] + subset_offset(r["large"]))


def corpus_numbers() -> list[float]:
    """How often each character occurs in the corpus (answer (a) quotes a few), as counts and as shares."""
    text = H.load_text()
    return [x for n in Counter(text).values() for x in (n, n / len(text))]


KNOWN = sorted(set(leaves(R)) | set(derived(R)) | set(corpus_numbers()))
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


def test_every_number_the_reports_discussion_quotes_is_a_number_of_the_run():
    assert len(REPORT_ANSWERS) >= 7, "the report's written discussions are not marked with #answer[...]"
    unknown = [(n, a[:40]) for a in REPORT_ANSWERS for n, pct in quoted_numbers(a)
               if n not in ALLOWED and not matches(n, pct)]
    assert unknown == []


def test_the_number_check_finds_a_stale_number():
    assert not matches("1.2345", False) and not matches("97.3", True)


# Written comparisons: (a phrase the notebook's answers contain, the phrase in the report or None, what must hold)
def _val(r, run):
    return r[run]["history"]["val_loss"]


def _gap(r, run):
    h = r[run]["history"]
    return {it: v - t for it, v, t in zip(h["iter"], h["val_loss"], h["train_loss"])}


def _ranking(runs: dict) -> list[str]:
    return sorted(runs, key=lambda name: runs[name]["best_val_loss"])


def _at(r, tau: str, key: str) -> float:
    return r["temperature_metrics"][key][[str(t) for t in r["temperature_metrics"]["temperature"]].index(tau)]


COMBO = "width 192, 6 heads, block 128"
COMPARISONS = [
    # (f)
    ("The run has not converged", "The run has not converged",
     lambda r: r["baseline"]["best_iter"] == r["baseline"]["history"]["iter"][-1]),
    ("which still falls at every evaluation", "which still falls at every evaluation",
     lambda r: all(a > b for a, b in zip(_val(r, "baseline"), _val(r, "baseline")[1:]))),
    ("Up to iteration 250 it stays small", "Up to iteration 250 it stays small",
     lambda r: max(g for it, g in _gap(r, "baseline").items() if it <= 250) < 0.05),
    ("From iteration 300 on it widens", "From iteration 300 on it widens",
     lambda r: min(g for it, g in _gap(r, "baseline").items() if it >= 300)
     > max(g for it, g in _gap(r, "baseline").items() if it <= 250)),
    # Muon against AdamW
    ("Muon reaches a validation loss of 1.6734 over the whole split, against AdamW's 1.8548", "0.181 lower",
     lambda r: r["muon"]["best_val_loss"] < r["baseline"]["best_val_loss"]),
    ("The figure shows Muon ahead from the first evaluation after the warm-up on", None,
     lambda r: _val(r, "muon")[1] < _val(r, "baseline")[1]),
    ("Read at AdamW's last second of training, Muon had already reached",
     "Read at AdamW's last second of training, Muon had already reached",
     lambda r: (at := r["optimizer_comparison"]["at_adamw_time"])["muon"] < at["adamw"]),
    ("of the same training time", "of the same training time",
     lambda r: abs(r["optimizer_comparison"]["time_ratio"] - 1) <= 0.1),
    # the extras of (b)
    ("Its validation loss is just as low", None, lambda r: r["no_mask"]["without the mask"]["val_loss"] < 0.1),
    ("Heads 2 and 3 give the previous character only", "Heads 2 and 3 give the previous character only",
     lambda r: min(r["attention"]["previous"][:2]) > 0.5 > max(r["attention"]["previous"][2:])),
    # (g)
    ("the model itself finds it unlikely", "the model itself finds it unlikely",
     lambda r: _at(r, "1.5", "nll") > r["baseline"]["best_val_loss"] + 0.5),
    ("At τ = 0.5 almost every word is real", "almost every word is real",
     lambda r: _at(r, "0.5", "known_word_share") > 0.9),
    ("These low temperatures give the text the model finds most likely", "give the text the model finds most likely",
     lambda r: sorted(r["temperature_metrics"]["nll"])[:2] == sorted([_at(r, "0.1", "nll"), _at(r, "0.0001", "nll")])),
    ("τ between 0.5 and 0.8 is the best compromise", "is the best compromise",
     lambda r: all(_at(r, t, "known_word_share") > 0.7 and _at(r, t, "distinct_4gram_ratio") > 0.75
                   for t in ("0.5", "0.8"))),
    # (h)
    ("The baseline itself is best (2.5048), closely followed by the combination", "The baseline itself is best",
     lambda r: _ranking(r["architecture_sweep"])
     == ["baseline", COMBO, "8 heads", "6 blocks", "block 128", "width 192"]),
    ("It is also the most expensive", "also the most expensive",
     lambda r: max(r["architecture_sweep"], key=lambda n: r["architecture_sweep"][n]["ms_per_iter"]) == COMBO
     and max(r["architecture_sweep"], key=lambda n: r["architecture_sweep"][n]["memory_mb"]) == COMBO),
    ("0.004 is best", "0.004 is best", lambda r: _ranking(r["lr_sweep"]) == ["0.004", "0.001", "0.016"]),
    ("Like the baseline it is still improving at its last evaluation", "it is still improving at its last",
     lambda r: r["large"]["best_iter"] == r["large"]["history"]["iter"][-1]),
    ("*At equal tokens* the larger model is better", "the larger model is better",
     lambda r: r["comparison"]["equal_tokens"]["large"] < r["comparison"]["equal_tokens"]["baseline"]),
    ("Corrected by these offsets the gap shrinks to about", "still in the larger model's favour",
     lambda r: corrected_equal_tokens_gap(r) > 0),
    ("*At equal time* the baseline is far better", "the baseline is far better",
     lambda r: r["comparison"]["equal_time"]["baseline"] < r["comparison"]["equal_time"]["large"] - 0.1),
    ("and twice the context", "and twice the context",
     lambda r: r["large"]["config"]["block_size"] == 2 * r["baseline"]["config"]["block_size"]),
]


@pytest.mark.parametrize("phrase, in_report, holds", COMPARISONS, ids=[c[0][:50] for c in COMPARISONS])
def test_every_written_comparison_holds_for_the_run(phrase, in_report, holds):
    assert phrase in re.sub(r"\s+", " ", PROSE), "the notebook no longer says this: update the list above"
    if in_report:
        assert in_report in re.sub(r"\s+", " ", " ".join(REPORT_ANSWERS)), "the report no longer says this"
    assert holds(R)


def test_a_comparison_fails_when_the_numbers_turn():
    turned = json.loads(json.dumps(R))
    turned["comparison"]["equal_tokens"]["large"] = turned["comparison"]["equal_tokens"]["baseline"] + 0.01
    holds = dict((c[0], c[2]) for c in COMPARISONS)["*At equal tokens* the larger model is better"]
    assert holds(R) and not holds(turned)
