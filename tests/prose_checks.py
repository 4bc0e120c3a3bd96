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

import functools
import math
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple


class Quote(NamedTuple):
    answer: str
    text: str
    value: Callable  # results -> the number (or a tuple of numbers, one per number in `text`, in order)
    rerun_tolerance: float = 0.0  # how far a re-run of the same code may land from the written number


class Claim(NamedTuple):
    answer: str
    text: str
    holds: Callable  # results -> bool
    record_only: bool = False  # about the drawn text of a sample, which a re-run on other kernels draws anew


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

NUMBER = re.compile(r"(?<![\w.^_{,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w{}]|,\d)( ?%)?")


def numbers_in(text: str) -> list[re.Match]:
    """The numbers written in `text`, code spans left out; a trailing % is part of the match."""
    text = re.sub(r"`[^`]*`", lambda m: " " * len(m.group()), text)
    return list(NUMBER.finditer(text))


def written_value(match: re.Match) -> tuple[float, int, bool]:
    """(value, decimals, is a percentage) of a written number such as "1,808,256", "1.8548" or "61 %"."""
    token = match.group().rstrip(" %")
    decimals = len(token.split(".")[1]) if "." in token else 0
    return float(token.replace(",", "")), decimals, match.group().endswith("%")


def agrees(match: re.Match, value: float, tolerance: float = 0.0) -> bool:
    """Whether a written number is `value` rounded to the digits written, or within `tolerance` of it (a share in %
    compares in percentage points)."""
    written, decimals, percent = written_value(match)
    value = 100 * value if percent else value
    tolerance = 100 * tolerance if percent else tolerance
    if tolerance == 0:
        return math.isclose(round(value, decimals), written, abs_tol=10 ** -(decimals + 3))
    return abs(value - written) <= tolerance + 0.5 * 10**-decimals


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


def stale_answers(notebook: dict, results: dict, rerun: bool = False) -> dict[str, list[str]]:
    """Per answer, what no longer holds for `results`; an empty dict when every answer is true to them. For the
    results of a re-run (`rerun`), a quote may lie within its entry's tolerance, and claims about drawn text are
    left out."""
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
            if not agrees(match, v, quote.rerun_tolerance if rerun else 0.0):
                problems.setdefault(quote.answer, []).append(f"{quote.text!r}: {match.group()} is now {v:.6g}")
    for claim in CLAIMS:
        if find(claim) is not None and not (rerun and claim.record_only) and not claim.holds(results):
            problems.setdefault(claim.answer, []).append(f"no longer true: {claim.text!r}")
    for definition in DEFINITIONS:
        find(definition)
    for tag, text in texts.items():
        for match in numbers_in(text):
            if not any(start <= match.start() and match.end() <= end for start, end in named[tag]):
                context = text[max(0, match.start() - 30) : match.end() + 10]
                problems.setdefault(tag, []).append(f"no entry names {match.group()!r} in '...{context}...'")
    return problems


# ------------------------------------------------------------------------------------------------ the entries

LOSS = 0.02  # a loss of a re-run: the notebook's LOSS_TOLERANCE (float rounding differs between kernel sets)
LOSS_DIFFERENCE = 0.03  # a difference of two losses of a re-run
UNSTABLE = 0.05  # a run at a learning rate too high to be stable: it amplifies rounding most
SAMPLE = 0.1  # a share measured on a drawn sample: a re-run on other kernels draws other text
SAMPLE_NLL = 0.2  # nats per character of a drawn sample
HEAD_SHARE = 0.03  # the share of attention a trained head gives a position


@functools.cache
def corpus_counts() -> Counter:
    """How often each character occurs in the corpus (answer (a) quotes a few)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for a caller outside the tests
    import gpt_helpers

    return Counter(gpt_helpers.load_text())


def share_of(char: str) -> float:
    counts = corpus_counts()
    return counts[char] / sum(counts.values())


def gap_max_until(r: dict, path: str, it: int) -> float:
    """The largest validation-minus-training gap (fixed subsets) up to iteration `it`."""
    history = run_by_path(r, path)["history"]
    return max(gap_at(r, path, i) for i in history["iter"] if i <= it)


def subset_offset(r: dict, path: str) -> float:
    """How far a run's whole-split best loss lies above its fixed subset's lowest loss."""
    run = run_by_path(r, path)
    return run["best_val_loss"] - min(run["history"]["val_loss"])


def training_runs(r: dict) -> int:
    """The models the notebook trains: the learning-rate and batch sweeps each show one run of the sweep before them
    again, without training it twice."""
    sweeps = len(r["architecture_sweep"]) + len(r["lr_sweep"]) - 1 + len(r["batch_sweep"]) - 1
    return 3 + len(r["no_mask"]) + sweeps


def still_falling(r: dict, path: str) -> bool:
    """The run's best evaluation is its last, and the loss fell at every evaluation."""
    losses = run_by_path(r, path)["history"]["val_loss"]
    return losses.index(min(losses)) == len(losses) - 1 and all(b < a for a, b in zip(losses, losses[1:]))


def muon_ahead_at_equal_time(r: dict) -> bool:
    """Muon's loss at each evaluation after the first lies below AdamW's lowest of the same training time."""
    adamw, muon = r["baseline"]["history"], r["muon"]["history"]
    return all(loss < min(a for a, t_a in zip(adamw["val_loss"], adamw["train_time_s"]) if t_a <= t)
               for loss, t in zip(muon["val_loss"][1:], muon["train_time_s"][1:]))


def behind_then_ahead(r: dict) -> tuple[int, int, int]:
    """At equal characters (both runs evaluate every 102,400): where the larger model was first and last behind the
    baseline, and where it was ahead again after that."""
    baseline = dict(zip(r["baseline"]["history"]["tokens"], r["baseline"]["history"]["val_loss"]))
    points = [(t, v) for t, v in zip(r["large"]["history"]["tokens"], r["large"]["history"]["val_loss"])
              if t in baseline and t > 0]
    behind = [t for t, v in points if v > baseline[t]]
    ahead = [t for t, v in points if v < baseline[t] and t > max(behind)]
    return behind[0], behind[-1], ahead[0]


def sweep(r: dict, name: str) -> float:
    return best(r, f"architecture_sweep/{name}")


COMBINATION = "width 192, 6 heads, block 128"
TOP_THREE = {"baseline", COMBINATION, "8 heads"}

QUOTES += [
    Quote("intro", "it trains 15 small models", training_runs),
    Quote("answer-a", "1,115,394 characters (40,000 lines)", lambda r: (r["data"]["n_chars"], r["data"]["n_lines"])),
    Quote("answer-a", "Only 65 distinct characters", lambda r: r["data"]["vocab_size"]),
    Quote("answer-a", "space alone is 15.2 % of the text", lambda r: share_of(" ")),
    Quote("answer-a", "appear only 1, 3 and 27 times",
          lambda r: (corpus_counts()["$"], corpus_counts()["&"], corpus_counts()["3"])),
    Quote("answer-a", "share 63 of their 64 characters",
          lambda r: (r["baseline"]["config"]["block_size"] - 1, r["baseline"]["config"]["block_size"])),
    Quote("answer-d", r"$\ln 65 = 4.174$", lambda r: (r["data"]["vocab_size"], math.log(r["data"]["vocab_size"]))),
    Quote("answer-d", "gives 4.2320 nats per character", lambda r: val_at(r, "baseline", 0), LOSS),
    Quote("answer-f", "804,096 parameters", lambda r: r["baseline"]["n_params"]),
    Quote("answer-f", "700 iterations of 32 windows of 64 characters",
          lambda r: (r["baseline"]["history"]["iter"][-1], r["baseline"]["train_config"]["batch_size"],
                     r["baseline"]["config"]["block_size"])),
    Quote("answer-f", "1.43 million characters in all, 1.4 passes over the training split",
          lambda r: (r["baseline"]["history"]["tokens"][-1] / 1e6,
                     r["baseline"]["history"]["tokens"][-1] / r["data"]["n_train"])),
    Quote("answer-f", "from 4.2320 nats per character", lambda r: val_at(r, "baseline", 0), LOSS),
    Quote("answer-f", "uniform guessing over 65 characters gives ln 65 = 4.174",
          lambda r: (r["data"]["vocab_size"], r["data"]["vocab_size"], math.log(r["data"]["vocab_size"]))),
    Quote("answer-f", "to 2.4982 after 100 iterations", lambda r: (val_at(r, "baseline", 100), 100), LOSS),
    Quote("answer-f", "to 1.8583 on the fixed subset at iteration 700 (1.8580 over the whole validation split)",
          lambda r: (r["baseline"]["history"]["val_loss"][-1], r["baseline"]["history"]["iter"][-1],
                     best(r, "baseline")), LOSS),
    Quote("answer-f", "a tenth of its peak (0.00040)", lambda r: r["baseline"]["history"]["lr"][-1]),
    Quote("answer-f", "Up to iteration 250 it stays small (at most 0.037)",
          lambda r: (250, gap_max_until(r, "baseline", 250)), LOSS_DIFFERENCE),
    Quote("answer-f", "from iteration 300 on it widens, to 0.126 at iteration 400",
          lambda r: (300, gap_at(r, "baseline", 400), 400), LOSS_DIFFERENCE),
    Quote("answer-f", "from iteration 550 to the end it stays near 0.185",
          lambda r: (550, gap_at(r, "baseline", 700)), LOSS_DIFFERENCE),
    Quote("answer-muon", "a validation loss of 1.6764 over the whole split, against AdamW's 1.8580: 0.182 lower",
          lambda r: (best(r, "muon"), best(r, "baseline"), r["optimizer_comparison"]["muon_gain"]), LOSS),
    Quote("answer-no-mask", "falls to 0.052 nats per character within 300 iterations, against 2.017",
          lambda r: (r["no_mask"]["without the mask"]["train_loss"], 300, r["no_mask"]["with the mask"]["train_loss"]),
          LOSS),
    Quote("answer-no-mask", "just as low (0.055)", lambda r: r["no_mask"]["without the mask"]["val_loss"], LOSS),
    Quote("answer-no-mask", "single small block after 300 iterations", lambda r: 300),
    Quote("answer-attention", "average 56 % and 58 % of a query's weight to the character just before it (and 15 % "
          "and 12 % to the query itself)", lambda r: (*r["attention"]["previous"][:2], *r["attention"]["itself"][:2]),
          HEAD_SHARE),
    Quote("answer-attention", "the previous character only 26 % each",
          lambda r: r["attention"]["previous"][2] if round(100 * r["attention"]["previous"][2]) == round(
              100 * r["attention"]["previous"][3]) else math.nan, HEAD_SHARE),
    Quote("answer-g", "only 31 % of its words", lambda r: r["temperature_metrics"]["known_word_share"][0], SAMPLE),
    Quote("answer-g", "(2.607 nats per character", lambda r: r["temperature_metrics"]["nll"][0], SAMPLE_NLL),
    Quote("answer-g", "many real words (54 % and 70 %)",
          lambda r: tuple(r["temperature_metrics"]["known_word_share"][1:3]), SAMPLE),
    Quote("answer-g", "most words are real (86 %)", lambda r: r["temperature_metrics"]["known_word_share"][3], SAMPLE),
    Quote("answer-g", "only 27 % and 16 % of its 4-character sequences are distinct, against 93 %",
          lambda r: (*r["temperature_metrics"]["distinct_4gram_ratio"][4:6], 4,
                     r["temperature_metrics"]["distinct_4gram_ratio"][1]), SAMPLE),
    Quote("answer-g", "(1.154 and 1.055 nats per character)", lambda r: tuple(r["temperature_metrics"]["nll"][4:6]),
          SAMPLE_NLL),
    Quote("answer-h-architectures", "(80 iterations, 163,840 characters)",
          lambda r: (r["architecture_sweep"]["baseline"]["history"]["iter"][-1],
                     r["architecture_sweep"]["baseline"]["history"]["tokens"][-1])),
    Quote("answer-h-architectures", "between 2.50 and 2.61",
          lambda r: (min(map(lambda n: sweep(r, n), r["architecture_sweep"])),
                     max(map(lambda n: sweep(r, n), r["architecture_sweep"]))), LOSS),
    Quote("answer-h-architectures", "within 0.003 of each other",
          lambda r: max(sweep(r, n) for n in TOP_THREE) - min(sweep(r, n) for n in TOP_THREE), LOSS_DIFFERENCE),
    Quote("answer-h-architectures", "the baseline (2.5048), the combination of width 192, 6 heads and block 128 "
          "(2.5057), and 8 heads (2.5077)",
          lambda r: (sweep(r, "baseline"), 192, 6, 128, sweep(r, COMBINATION), 8, sweep(r, "8 heads")), LOSS),
    Quote("answer-h-architectures", "6 blocks (2.5140), then a longer block alone (2.5417), then a wider model "
          "alone (2.6127)", lambda r: (6, sweep(r, "6 blocks"), sweep(r, "block 128"), sweep(r, "width 192")), LOSS),
    Quote("answer-h-architectures", "2.2 times the baseline's parameters",
          lambda r: r["architecture_sweep"][COMBINATION]["n_params"] / r["baseline"]["n_params"]),
    Quote("answer-h-architectures", "151 MiB per training step against 87",
          lambda r: (r["architecture_sweep"][COMBINATION]["memory_mb"], r["baseline"]["memory_mb"])),
    Quote("answer-h-learning-rate", "a learning rate of 0.001 learns more slowly (2.5292)",
          lambda r: (0.001, r["lr_sweep"]["0.001"]["best_val_loss"]), LOSS),
    Quote("answer-h-learning-rate", "0.016 is too large (2.9147", lambda r: (0.016, r["lr_sweep"]["0.016"][
        "best_val_loss"]), UNSTABLE),
    Quote("answer-h-learning-rate", "0.004 is best (2.5057)", lambda r: (0.004, r["lr_sweep"]["0.004"][
        "best_val_loss"]), LOSS),
    Quote("answer-h-learning-rate", "The long run uses 0.004", lambda r: r["large"]["train_config"]["learning_rate"]),
    Quote("answer-h-batch-size", "the learning rate of 0.004 and the same 163,840 characters",
          lambda r: (r["large"]["train_config"]["learning_rate"],
                     r["batch_sweep"]["16"]["history"]["tokens"][-1])),
    Quote("answer-h-batch-size", "batches of 8 windows (160 iterations) reach 2.4750, batches of 16 (80 iterations) "
          "2.5057, and batches of 32 (40 iterations) 2.6823",
          lambda r: tuple(x for b in ("8", "16", "32") for x in (int(b), r["batch_sweep"][b]["history"]["iter"][-1],
                                                                  r["batch_sweep"][b]["best_val_loss"])), LOSS),
    Quote("answer-h-batch-size", "batches of 8 windows and the same 1,638,400 characters as planned, in 1,600 "
          "iterations", lambda r: (r["large"]["train_config"]["batch_size"], r["large"]["history"]["tokens"][-1],
                                   r["large"]["history"]["iter"][-1])),
    Quote("answer-h", "4 blocks, 6 heads, width 192 and a block of 128 characters: 1,808,256 parameters, 2.2 times the "
          "baseline's 804,096", lambda r: (r["large"]["config"]["n_block"], r["large"]["config"]["n_head"],
                                           r["large"]["config"]["n_embd"], r["large"]["config"]["block_size"],
                                           r["large"]["n_params"], r["comparison"]["params_ratio"],
                                           r["baseline"]["n_params"])),
    Quote("answer-h", "learning rate 0.004 and batches of 8 windows (from the sweeps) for 1,600 iterations, 1.64 "
          "million characters", lambda r: (r["large"]["train_config"]["learning_rate"],
                                           r["large"]["train_config"]["batch_size"],
                                           r["large"]["history"]["iter"][-1],
                                           r["large"]["history"]["tokens"][-1] / 1e6)),
    Quote("answer-h", "1.7838 nats per character against the baseline's 1.8580: 0.074 lower",
          lambda r: (best(r, "large"), best(r, "baseline"), r["comparison"]["gain"]), LOSS),
    Quote("answer-h", "after the baseline's 1.43 million characters its lowest validation loss on its fixed subset is "
          "1.7811, against the baseline's 1.8583",
          lambda r: (r["comparison"]["equal_tokens"]["tokens"] / 1e6, r["comparison"]["equal_tokens"]["large"],
                     r["comparison"]["equal_tokens"]["baseline"]), LOSS),
    Quote("answer-h", "half as many characters (8,192 against 16,384)",
          lambda r: (r["large"]["train_config"]["eval_tokens"], r["baseline"]["train_config"]["eval_tokens"])),
    Quote("answer-h", "the larger model's subset lies 0.032 below the whole split",
          lambda r: subset_offset(r, "large"), LOSS_DIFFERENCE),
    Quote("answer-h", "shrinks to about 0.045",
          lambda r: (r["comparison"]["equal_tokens"]["baseline"] + subset_offset(r, "baseline"))
          - (r["comparison"]["equal_tokens"]["large"] + subset_offset(r, "large")), LOSS_DIFFERENCE),
    Quote("answer-h", "(8 windows of 128 characters) costs about as much as a baseline step (32 windows of 64)",
          lambda r: (r["large"]["train_config"]["batch_size"], r["large"]["config"]["block_size"],
                     r["baseline"]["train_config"]["batch_size"], r["baseline"]["config"]["block_size"])),
    Quote("answer-h", "one training step needs 87 MiB and 89 MiB of memory",
          lambda r: (r["baseline"]["memory_mb"], r["large"]["memory_mb"])),
    Quote("answer-h", "15 training runs", training_runs),
    Quote("answer-h", "from 0.2 to 0.7 million characters its loss lay above the baseline's, and it has been below "
          "from 0.8 million on", lambda r: tuple(t / 1e6 for t in behind_then_ahead(r)), 0.1),
]

CLAIMS += [
    Claim("answer-f", "The validation loss falls at every evaluation, the last one included, which is also the best",
          lambda r: still_falling(r, "baseline")),
    Claim("answer-f", "The run has not converged", lambda r: still_falling(r, "baseline")),
    Claim("answer-f", "validation loss has not turned up", lambda r: still_falling(r, "baseline")),
    Claim("answer-f", "from iteration 550 to the end it stays near",
          lambda r: max(gap_at(r, "baseline", i) for i in range(550, 701, 50))
          - min(gap_at(r, "baseline", i) for i in range(550, 701, 50)) < 0.01),
    Claim("answer-g", "at τ = 0.5 more words are real, but the text already repeats itself",
          lambda r: r["temperature_metrics"]["known_word_share"][3] > r["temperature_metrics"]["known_word_share"][2]
          and r["temperature_metrics"]["distinct_4gram_ratio"][3]
          < r["temperature_metrics"]["distinct_4gram_ratio"][2]),
    Claim("answer-f", "The gap between the validation and the training loss grows during the run",
          lambda r: gap_at(r, "baseline", 700) > gap_max_until(r, "baseline", 250)),
    Claim("answer-muon", "in about the same training time as AdamW",
          lambda r: 0.85 < r["optimizer_comparison"]["time_ratio"] < 1.1),
    Claim("answer-muon", "below AdamW's lowest of the same training time at every evaluation after the first",
          muon_ahead_at_equal_time),
    Claim("answer-no-mask", "it writes a handful of characters, mostly `O` and `:`, over and over",
          lambda r: len(set(r["no_mask"]["without the mask"]["sample"][6:])) <= 8
          and Counter(r["no_mask"]["without the mask"]["sample"][6:]).most_common(2)[0][0] in "O:"),
    Claim("answer-attention", "Heads 0 and 1 give on average",
          lambda r: min(r["attention"]["previous"][:2]) > 0.5 > max(r["attention"]["previous"][2:])),
    Claim("answer-g", "(\"the some the some\")", lambda r: "the some the some" in r["samples"]["0.1"], True),
    Claim("answer-h-architectures", "these three are the best three both at three quarters of the budget and at its "
          "end, but the order of the second and third changes",
          lambda r: set(r["architecture_ranking"]["end"][:3]) == set(r["architecture_ranking"]["three_quarters"][:3])
          == TOP_THREE and r["architecture_ranking"]["end"][:3] != r["architecture_ranking"]["three_quarters"][:3]),
    Claim("answer-h-architectures", "The other three keep their order at both points",
          lambda r: r["architecture_ranking"]["end"][3:] == r["architecture_ranking"]["three_quarters"][3:]
          == ["6 blocks", "block 128", "width 192"]),
    Claim("answer-h-architectures", "it costs about twice the baseline's time per iteration",
          lambda r: 1.7 < r["architecture_sweep"][COMBINATION]["ms_per_iter"]
          / r["architecture_sweep"]["baseline"]["ms_per_iter"] < 2.6),
    Claim("answer-h-architectures", "at this budget it is as good as the baseline",
          lambda r: abs(sweep(r, COMBINATION) - sweep(r, "baseline")) < 0.005),
    Claim("answer-h-learning-rate", "The long run uses 0.004", lambda r: r["large"]["train_config"][
        "learning_rate"] == float(min(r["lr_sweep"], key=lambda lr: r["lr_sweep"][lr]["best_val_loss"]))),
    Claim("answer-h-batch-size", "The three runs took about the same training time",
          lambda r: max(run["train_time_s"] for run in r["batch_sweep"].values())
          < 1.25 * min(run["train_time_s"] for run in r["batch_sweep"].values())),
    Claim("answer-h-batch-size", "a batch of half the size costs about half as much per step",
          lambda r: all(0.4 < r["batch_sweep"][small]["ms_per_iter"] / r["batch_sweep"][large]["ms_per_iter"] < 0.6
                        for small, large in (("8", "16"), ("16", "32")))),
    Claim("answer-h", "Like the baseline it is still improving at its last evaluation",
          lambda r: still_falling(r, "large") or r["large"]["best_iter"] == r["large"]["history"]["iter"][-1]),
    Claim("answer-h", "the baseline's within 0.002 of it", lambda r: abs(subset_offset(r, "baseline")) <= 0.002),
    Claim("answer-h", "*At equal characters* the larger model is ahead at the end",
          lambda r: r["comparison"]["equal_tokens"]["large"] < r["comparison"]["equal_tokens"]["baseline"]),
    Claim("answer-h", "still more than 0.2 above the baseline's",
          lambda r: r["comparison"]["equal_time"]["large"] - r["comparison"]["equal_time"]["baseline"] > 0.2),
    Claim("answer-h", "costs about as much as a baseline step (32 windows of 64) or a little more",
          lambda r: 0.95 < r["comparison"]["ms_per_iter_ratio"] < 1.3),
    Claim("answer-h", "It made more than twice as many steps",
          lambda r: r["large"]["history"]["iter"][-1] > 2 * r["baseline"]["history"]["iter"][-1]),
    Claim("answer-h", "it trained about two and a half times as long in all",
          lambda r: 2.2 < r["large"]["train_time_s"] / r["baseline"]["train_time_s"] < 2.8),
    Claim("answer-h", "baseline trained in a little over a minute, the larger model in about three minutes",
          lambda r: 60 < r["baseline"]["train_time_s"] < 100 and 160 < r["large"]["train_time_s"] < 220),
    Claim("answer-h", "took about ten minutes", lambda r: 540 < r["notebook_time_s"] < 720),
    Claim("intro", "in about ten minutes on two CPU cores", lambda r: 540 < r["notebook_time_s"] < 720),
    Claim("answer-f", "in a little over a minute on two CPU cores", lambda r: 60 < r["baseline"]["train_time_s"] < 100),
    Claim("answer-h", "names a real speaker (\"POMPEY\") where the baseline invents one (\"POLIXENENENEY\")",
          lambda r: "POMPEY:" in r["comparison_samples"]["larger model"]
          and "POLIXENENENEY" in r["comparison_samples"]["baseline"], True),
    Claim("answer-h", "an AMD EPYC CPU with PyTorch 2.13 in float32",
          lambda r: "AMD EPYC" in r["machine"]["name"] and r["machine"]["torch"].startswith("2.13")
          and r["machine"]["precision"] == "fp32"),
]

DEFINITIONS += [
    Definition("intro", "# Assignment 3", "the assignment's number"),
    Definition("intro", "Python 3.10 or later with PyTorch 2.1 or later", "the versions the code needs"),
    Definition("intro", "The corpus (1.1 MB)", "the size of the corpus file"),
    Definition("intro", "SHA-256", "the checksum's name"),
    Definition("answer-a", "the digit 3", "a character of the corpus"),
    Definition("answer-a", "the first 90 % for training and the last 10 % for validation", "the split, in the code"),
    Definition("answer-b", "$0$ where a key comes", "the mask's definition"),
    Definition("answer-g", "for τ < 1", "the definition of the temperature"),
    Definition("answer-g", "for τ > 1", "the definition of the temperature"),
    Definition("answer-g", "τ = 1 samples", "the definition of the temperature"),
    Definition("answer-g", "τ → 0 always", "the definition of the temperature"),
    Definition("answer-g", "At τ = 1.5 the text", "a temperature of the assignment"),
    Definition("answer-g", "At τ = 1 and 0.8 it has", "temperatures of the assignment"),
    Definition("answer-g", "τ = 0.5 most words", "a temperature of the assignment"),
    Definition("answer-g", "At τ = 0.1 and 0.0001 the text", "temperatures of the assignment"),
    Definition("answer-g", "at τ = 1. These", "a temperature of the assignment"),
    Definition("answer-g", "τ = 0.8 is the best compromise", "a temperature of the assignment"),
    Definition("answer-g", "at τ = 0.5 more words", "a temperature of the assignment"),
    Definition("answer-h", "The samples at τ = 0.8", "the temperature of the comparison"),
    Definition("answer-attention", "Heads 0 and 1", "head numbers"),
    Definition("answer-attention", "Heads 2 and 3", "head numbers"),
]
