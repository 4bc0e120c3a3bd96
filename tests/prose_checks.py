"""The written answers against the results they quote.

Every number in an answer cell (markdown tagged `answer-...` or `intro`) must be named by one entry below:
- QUOTES: the quoted text and the result it is; each number in the text must equal that result, rounded to the
  digits written (a loss to four decimals, a count exactly, a share in % to the percent);
- CLAIMS: a written comparison or a rounded timing, and the predicate on the results that makes it true (a timing
  is held to the band measured across runs, so that a re-run on another CPU needs no new prose);
- DEFINITIONS: numbers that belong to the method, not to a result (the MLP's 4C, the split's 90 %).
`stale_answers` lists, per answer, what no longer holds: a quote that is gone from the text, a number that differs
from its result, a claim whose predicate is false, a number that no entry names.
"""

import math
import re
from collections.abc import Callable
from typing import NamedTuple


class Quote(NamedTuple):
    answer: str
    text: str
    value: Callable  # results -> the number (or a tuple of numbers, one per number in `text`, in order)


class Claim(NamedTuple):
    answer: str
    text: str
    holds: Callable  # results -> bool


class Definition(NamedTuple):
    answer: str
    text: str
    why: str


def run_by_path(r: dict, path: str) -> dict:
    """A training run of the results by name: "baseline", "architecture_sweep/6 blocks", ..."""
    out = r
    for key in path.split("/"):
        out = out[key]
    return out


def best(r: dict, path: str) -> float:
    return run_by_path(r, path)["best_val_loss"]


def val_at(r: dict, path: str, it: int) -> float:
    """A run's validation loss on its fixed subset at iteration `it`."""
    history = run_by_path(r, path)["history"]
    return history["val_loss"][history["iter"].index(it)]


def gap_at(r: dict, path: str, it: int) -> float:
    """Validation minus training loss (fixed subsets) at iteration `it`."""
    history = run_by_path(r, path)["history"]
    i = history["iter"].index(it)
    return history["val_loss"][i] - history["train_loss"][i]


QUOTES: list[Quote] = []
CLAIMS: list[Claim] = []
DEFINITIONS: list[Definition] = []

NUMBER = re.compile(r"(?<![\w.^_{])\d[\d,]*(?:\.\d+)?(?![\w{}])( ?%)?")


def numbers_in(text: str) -> list[re.Match]:
    """The numbers written in `text`, code spans left out; a trailing % is part of the match."""
    text = re.sub(r"`[^`]*`", lambda m: " " * len(m.group()), text)
    return [m for m in NUMBER.finditer(text) if m.group().rstrip(" %").rstrip(",")]


def written_value(match: re.Match) -> tuple[float, int, bool]:
    """(value, decimals, is a percentage) of a written number such as "1,808,256", "1.8548" or "61 %"."""
    token = match.group().rstrip(" %").rstrip(",")
    decimals = len(token.split(".")[1]) if "." in token else 0
    return float(token.replace(",", "")), decimals, match.group().endswith("%")


def agrees(match: re.Match, value: float) -> bool:
    """Whether a written number is `value` rounded to the digits written."""
    written, decimals, percent = written_value(match)
    value = 100 * value if percent else value
    return math.isclose(round(value, decimals), written, abs_tol=10 ** -(decimals + 3))


def answer_texts(notebook: dict) -> dict[str, str]:
    """The markdown of every answer cell (and the introduction), by its tag."""
    out = {}
    for cell in notebook["cells"]:
        for tag in cell["metadata"].get("tags", []):
            if tag.startswith("answer-") or tag == "intro":
                out[tag] = "".join(cell["source"])
    return out


def squash(text: str) -> str:
    """Text with every run of white space made one space, so that a quote may cross a line break."""
    return re.sub(r"\s+", " ", text)


def stale_answers(notebook: dict, results: dict) -> dict[str, list[str]]:
    """Per answer, what no longer holds for `results`; an empty dict when every answer is true to them."""
    texts = {tag: squash(text) for tag, text in answer_texts(notebook).items()}
    problems: dict[str, list[str]] = {}
    named: dict[str, list[tuple[int, int]]] = {tag: [] for tag in texts}

    def find(entry) -> int | None:
        text = texts.get(entry.answer, "")
        at = text.find(squash(entry.text))
        if at < 0:
            problems.setdefault(entry.answer, []).append(f"no longer in the text: {entry.text!r}")
            return None
        named[entry.answer].append((at, at + len(squash(entry.text))))
        return at

    for quote in QUOTES:
        if find(quote) is None:
            continue
        value = quote.value(results)
        values = value if isinstance(value, tuple) else (value,)
        found = numbers_in(squash(quote.text))
        if len(found) != len(values):
            problems.setdefault(quote.answer, []).append(
                f"{quote.text!r} holds {len(found)} numbers, its entry names {len(values)}")
        for match, v in zip(found, values):
            if not agrees(match, v):
                problems.setdefault(quote.answer, []).append(f"{quote.text!r}: {match.group()} is now {v:.6g}")
    for claim in CLAIMS:
        if find(claim) is not None and not claim.holds(results):
            problems.setdefault(claim.answer, []).append(f"no longer true: {claim.text!r}")
    for definition in DEFINITIONS:
        find(definition)
    for tag, text in texts.items():
        for match in numbers_in(text):
            if not any(start <= match.start() and match.end() <= end for start, end in named[tag]):
                context = text[max(0, match.start() - 30) : match.end() + 10]
                problems.setdefault(tag, []).append(f"no entry names {match.group()!r} in '...{context}...'")
    return problems
