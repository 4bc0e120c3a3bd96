"""The written answers against the run on record (results/run.json).

QUOTES binds a piece of an answer's text to the values it writes: each number in the piece, in order, is its value
rounded to the digits written (a share in % to the percent). Every number of an answer must lie in a quote, so a
number that no result names fails, and so does a quote that left the text. CLAIMS binds a comparison or a rounded
timing in words to the measured values that make it true (a threshold it writes, "more than 0.2", needs no
quote). Math, code and the assignment's temperatures (τ = 0.8)
are definitions, not results."""

import copy
import json
import re
from collections import Counter

import pytest
from conftest import ROOT

NOTEBOOK = json.loads((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))
RESULTS = json.loads((ROOT / "results" / "run.json").read_text(encoding="utf-8"))
NUMBER = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w]|,\d)( ?%)?")
NOT_RESULTS = re.compile(r"`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|τ [=<>→] [\d.]+", re.S)  # code, math, temperatures


def answers(notebook: dict) -> dict[str, str]:
    """{tag: text} of the answer cells and the introduction, white space squashed."""
    return {tag: " ".join("".join(cell["source"]).split()) for cell in notebook["cells"]
            for tag in cell["metadata"].get("tags", []) if tag.startswith("answer-") or tag == "intro"}


def about(value: float, n: float, step: float) -> bool:
    """Whether `value` is "about n": within one rounding step of it."""
    return abs(value - n) <= step


def val_at(run: dict, it: int) -> float:
    return run["history"]["val_loss"][run["history"]["iter"].index(it)]


def gap_at(run: dict, it: int) -> float:
    """Validation minus training loss (fixed subsets) at iteration `it`."""
    i = run["history"]["iter"].index(it)
    return run["history"]["val_loss"][i] - run["history"]["train_loss"][i]


def still_falling(run: dict) -> bool:
    losses = run["history"]["val_loss"]
    return all(b < a for a, b in zip(losses, losses[1:]))


def quotes(r: dict, counts: Counter) -> dict[str, dict[str, tuple]]:
    """{answer: {quoted text: its values}}: what each written number is."""
    b, m, lg, d = r["baseline"], r["muon"], r["large"], r["data"]
    arch = {name: run["best_val_loss"] for name, run in r["architecture_sweep"].items()}
    lr = {name: run["best_val_loss"] for name, run in r["lr_sweep"].items()}
    batch = r["batch_sweep"]
    tm = r["temperature_metrics"]
    short = r["architecture_sweep"]["baseline"]["history"]
    eq = r["comparison"]["equal_tokens"]
    behind = [t for t, v in zip(lg["history"]["tokens"], lg["history"]["val_loss"]) if 0 < t <= b["history"][
        "tokens"][-1] and v > dict(zip(b["history"]["tokens"], b["history"]["val_loss"]))[t]]
    runs = 3 + len(r["no_mask"]) + len(arch) + len(lr) - 1 + len(batch) - 1  # each sweep reuses one run
    return {
        "intro": {"trains 15 small models": (runs,)},
        "answer-a": {"1,115,394 characters (40,000 lines)": (d["n_chars"], d["n_lines"]),
                     "Only 65 distinct": (d["vocab_size"],),
                     "Space alone is 15.2 %": (counts[" "] / d["n_chars"],),
                     "appear 1, 3 and 27 times": (counts["$"], counts["&"], counts["3"]),
                     "the first 90 % to train, the last 10 % to validate": (d["n_train"] / d["n_chars"],
                                                                            d["n_val"] / d["n_chars"])},
        "answer-d": {"gives 4.232": (val_at(b, 0),)},
        "answer-f": {"804,096 parameters": (b["n_params"],),
                     "700 iterations of 32 windows of 64 characters": (b["history"]["iter"][-1],
                                                                       b["train_config"]["batch_size"],
                                                                       b["config"]["block_size"]),
                     "1.43 million characters, 1.4 passes": (b["history"]["tokens"][-1] / 1e6,
                                                             b["history"]["tokens"][-1] / d["n_train"]),
                     "from 4.232 to 2.498 after 100 iterations": (val_at(b, 0), val_at(b, 100), 100),
                     "to 1.858 over the whole validation split": (b["best_val_loss"],),
                     "Up to iteration 250 it stays below 0.04": (250, max(gap_at(b, i) for i in range(0, 251, 50))),
                     "from iteration 550 to the end it stays near 0.185": (550, gap_at(b, b["history"]["iter"][-1]))},
        "answer-muon": {"1.676 over the whole split, against AdamW's 1.858": (m["best_val_loss"], b["best_val_loss"]),
                        "(600 iterations against 700)": (m["history"]["iter"][-1], b["history"]["iter"][-1])},
        "answer-no-mask": {"falls to 0.052 within 300 iterations, against 2.017": (
                               r["no_mask"]["without the mask"]["train_loss"], 300,
                               r["no_mask"]["with the mask"]["train_loss"]),
                           "as low (0.055)": (r["no_mask"]["without the mask"]["val_loss"],)},
        "answer-attention": {"this snippet of 24 characters": (len(r["attention"]["text"]),),
                             "56 % and 58 %": tuple(r["attention"]["previous"][:2]),
                             "26 % each": (sum(r["attention"]["previous"][2:]) / 2,)},
        "answer-g": {"only 31 %": (tm["known_word_share"][0],), "(2.607 nats": (tm["nll"][0],),
                     "with 54 % and 70 % real words": tuple(tm["known_word_share"][1:3]),
                     "86 % are real": (tm["known_word_share"][3],),
                     "only 27 % and 16 % of its 4-character sequences are distinct, against 93 %": (
                         *tm["distinct_4gram_ratio"][4:], 4, tm["distinct_4gram_ratio"][1]),
                     "(1.154 and 1.055 nats": tuple(tm["nll"][4:])},
        "answer-h-architectures": {
            "(80 iterations, 163,840 characters)": (short["iter"][-1], short["tokens"][-1]),
            "between 2.50 and 2.61": (min(arch.values()), max(arch.values())),
            "The baseline (2.505), 8 heads (2.508) and the combination of width 192, 6 heads and block 128 (2.506)": (
                arch["baseline"], 8, arch["8 heads"], 192, 6, 128, arch["width 192, 6 heads, block 128"]),
            "within 0.003": (max(arch[n] for n in r["architecture_ranking"]["end"][:3])
                             - min(arch[n] for n in r["architecture_ranking"]["end"][:3]),),
            "6 blocks (2.514), a longer block (2.542) and a wider model (2.613)": (
                6, arch["6 blocks"], arch["block 128"], arch["width 192"]),
            "2.2 times its parameters": (r["comparison"]["params_ratio"],)},
        "answer-h-learning-rate": {
            "0.001 learns more slowly (2.529), 0.016 is too large (2.915), and 0.004 is best (2.506)": (
                0.001, lr["0.001"], 0.016, lr["0.016"], 0.004, lr["0.004"]),
            "The long run uses 0.004": (lg["train_config"]["learning_rate"],)},
        "answer-h-batch-size": {
            "learning rate of 0.004 and the same 163,840 characters": (lg["train_config"]["learning_rate"],
                                                                       batch["16"]["history"]["tokens"][-1]),
            "batches of 8 windows (160 iterations) reach 2.475, batches of 16 (80 iterations) 2.506, and batches "
            "of 32 (40 iterations) 2.682": tuple(x for size in ("8", "16", "32") for x in (
                int(size), batch[size]["history"]["iter"][-1], batch[size]["best_val_loss"])),
            "batches of 8 windows for the planned 1,638,400 characters, in 1,600 iterations": (
                lg["train_config"]["batch_size"], lg["history"]["tokens"][-1], lg["history"]["iter"][-1])},
        "answer-h": {
            "4 blocks, 6 heads, width 192 and a block of 128 characters: 1,808,256 parameters, 2.2 times the "
            "baseline's 804,096": (lg["config"]["n_block"], lg["config"]["n_head"], lg["config"]["n_embd"],
                                   lg["config"]["block_size"], lg["n_params"], r["comparison"]["params_ratio"],
                                   b["n_params"]),
            "learning rate 0.004 and batches of 8 windows": (lg["train_config"]["learning_rate"],
                                                             lg["train_config"]["batch_size"]),
            "for 1,600 iterations, 1.64 million characters": (lg["history"]["iter"][-1],
                                                               lg["history"]["tokens"][-1] / 1e6),
            "1.784 against the baseline's 1.858: 0.074 lower": (lg["best_val_loss"], b["best_val_loss"],
                                                               r["comparison"]["gain"]),
            "after the baseline's 1.43 million characters its lowest validation loss on its fixed subset is 1.781, "
            "against the baseline's 1.858": (eq["tokens"] / 1e6, eq["large"], eq["baseline"]),
            "From 0.2 to 0.7 million characters": (behind[0] / 1e6, behind[-1] / 1e6),
            "(15 training runs)": (runs,)},
    }


def claims(r: dict) -> dict[str, dict[str, bool]]:
    """{answer: {written comparison or timing: whether the results make it true}}."""
    b, m, lg = r["baseline"], r["muon"], r["large"]
    ranking, arch = r["architecture_ranking"], r["architecture_sweep"]
    minutes = {name: run["train_time_s"] / 60 for name, run in (("baseline", b), ("large", lg))}
    adamw_by_time = list(zip(b["history"]["train_time_s"], b["history"]["val_loss"]))
    return {
        "intro": {"it took about ten minutes": about(r["notebook_time_s"] / 60, 10, 1)},
        "answer-f": {"The run has not converged: the validation loss falls at every evaluation, and the last one is "
                     "the best": still_falling(b),
                     "in a little over a minute": 1 < minutes["baseline"] < 1.5},
        "answer-muon": {
            "in about the same training time": about(r["optimizer_comparison"]["time_ratio"], 1, 0.1),
            "After the first evaluation its loss stays below AdamW's at equal time": all(
                loss < min(v for t_a, v in adamw_by_time if t_a <= t)
                for t, loss in zip(m["history"]["train_time_s"][1:], m["history"]["val_loss"][1:]))},
        "answer-no-mask": {"only repeats `O` and `:` and a few other characters": set(
            Counter(r["no_mask"]["without the mask"]["sample"][len("ROMEO:"):]).most_common(2)[i][0]
            for i in range(2)) == {"O", ":"}},
        "answer-attention": {"the other two give it 26 % each": round(100 * r["attention"]["previous"][2]) == round(
            100 * r["attention"]["previous"][3])},
        "answer-h-architectures": {
            "the order of the last two changes between three quarters of the budget and its end":
                set(ranking["end"][:3]) == set(ranking["three_quarters"][:3]) and ranking["end"][1:3]
                == ranking["three_quarters"][2:0:-1],
            "Behind them come 6 blocks": ranking["end"][3:] == ranking["three_quarters"][3:]
                == ["6 blocks", "block 128", "width 192"],
            "as good as the baseline here": about(arch["width 192, 6 heads, block 128"]["best_val_loss"],
                                                  arch["baseline"]["best_val_loss"], 0.005)},
        "answer-h-learning-rate": {"a factor of four away": r["lr_sweep"].keys() == {"0.001", "0.004", "0.016"},
                                   "0.004 is best": min(r["lr_sweep"], key=lambda k: r["lr_sweep"][k][
                                       "best_val_loss"]) == "0.004"},
        "answer-h-batch-size": {"a budget ten times shorter than the long run": lg["history"]["tokens"][-1]
                                == 10 * r["batch_sweep"]["16"]["history"]["tokens"][-1]},
        "answer-h": {
            "Like the baseline it is still improving at its last evaluation": lg["best_iter"]
                == lg["history"]["iter"][-1] and still_falling(b),
            "*At equal characters* the larger model is ahead at the end": r["comparison"]["equal_tokens"]["large"]
                < r["comparison"]["equal_tokens"]["baseline"],
            "costs about as much as a baseline step": about(r["comparison"]["ms_per_iter_ratio"], 1, 0.1),
            "it made more than twice as many": lg["history"]["iter"][-1] > 2 * b["history"]["iter"][-1],
            "its loss was still more than 0.2 above the baseline's": r["comparison"]["equal_time"]["large"]
                - r["comparison"]["equal_time"]["baseline"] > 0.2,
            "the baseline trained in a little over a minute": 1 < minutes["baseline"] < 1.5,
            "the larger model in about three minutes": about(minutes["large"], 3, 0.5),
            "in about ten minutes": about(r["notebook_time_s"] / 60, 10, 1),
            "an AMD EPYC CPU in float32": "AMD EPYC" in r["machine"]["name"]},
    }


def agrees(written: re.Match, value: float) -> bool:
    """Whether a written number is `value` rounded to the digits written (a share in % to the percent)."""
    token = written.group().rstrip(" %")
    decimals = len(token.split(".")[1]) if "." in token else 0
    value = 100 * value if written.group().endswith("%") else value
    return round(value, decimals) == float(token.replace(",", ""))


def problems(notebook: dict, r: dict, counts: Counter) -> list[str]:
    """Every way the answers disagree with the results `r`; empty when they agree."""
    texts, found = answers(notebook), []
    quoted = {tag: [] for tag in texts}  # (start, end) of each quote in its answer
    for tag, entries in quotes(r, counts).items():
        for quote, values in entries.items():
            at = texts.get(tag, "").find(quote)
            if at < 0:
                found.append(f"{tag}: no longer in the text: {quote!r}")
                continue
            quoted[tag].append((at, at + len(quote)))
            written = [n for n in NUMBER.finditer(NOT_RESULTS.sub(lambda s: " " * len(s[0]), quote))]
            if len(written) != len(values):
                found.append(f"{tag}: {quote!r} writes {len(written)} numbers, its entry names {len(values)}")
            found += [f"{tag}: {quote!r}: {n.group()} is now {v:.6g}" for n, v in zip(written, values)
                      if not agrees(n, v)]
    for tag, entries in claims(r).items():
        quoted[tag] += [(at, at + len(claim)) for claim in entries if (at := texts.get(tag, "").find(claim)) >= 0]
        found += [f"{tag}: {'no longer in the text' if claim not in texts.get(tag, '') else 'no longer true'}: "
                  f"{claim!r}" for claim, holds in entries.items() if claim not in texts.get(tag, "") or not holds]
    for tag, text in texts.items():
        if tag == "intro":  # versions, sizes and the title's number are not results
            continue
        for n in NUMBER.finditer(NOT_RESULTS.sub(lambda s: " " * len(s[0]), text)):
            if not any(start <= n.start() and n.end() <= end for start, end in quoted[tag]):
                found.append(f"{tag}: no quote names {n.group()!r} in '...{text[max(0, n.start() - 40):n.end()]}'")
    return found


@pytest.fixture(scope="module")
def counts(corpus_text) -> Counter:
    return Counter(corpus_text)


def test_every_answer_is_true_to_the_run_on_record(counts):
    assert problems(NOTEBOOK, RESULTS, counts) == []


def with_text(tag: str, old: str, new: str) -> dict:
    """A copy of the notebook whose answer `tag` says `new` where it said `old`."""
    notebook = copy.deepcopy(NOTEBOOK)
    (cell,) = [c for c in notebook["cells"] if tag in c["metadata"].get("tags", [])]
    text = " ".join("".join(cell["source"]).split())
    assert old in text
    cell["source"] = text.replace(old, new, 1)
    return notebook


def test_the_baseline_loss_swapped_for_the_larger_models_fails(counts):
    swapped = with_text("answer-f", "to 1.858 over the whole", "to 1.784 over the whole")
    found = problems(swapped, RESULTS, counts)
    assert any("no quote names '1.784'" in p for p in found) and any("no longer in the text" in p for p in found)


def test_every_loss_swapped_for_another_written_loss_fails(counts):
    losses = {tag: sorted(set(re.findall(r"\b\d\.\d{3}\b", NOT_RESULTS.sub(" ", text))))
              for tag, text in answers(NOTEBOOK).items()}
    every = sorted({loss for found in losses.values() for loss in found})
    for tag, found in losses.items():
        for loss in found:
            other = next(x for x in every if abs(float(x) - float(loss)) > 0.0015)
            assert problems(with_text(tag, loss, other), RESULTS, counts), f"{tag}: {loss} -> {other}"


def test_a_number_no_result_names_fails(counts):
    added = with_text("answer-f", "The baseline has", "The baseline (about 3.142) has")
    assert any("no quote names '3.142'" in p for p in problems(added, RESULTS, counts))


def test_a_comparison_that_turns_fails(counts):
    turned = copy.deepcopy(RESULTS)
    equal = turned["comparison"]["equal_tokens"]
    equal["baseline"], equal["large"] = equal["large"], equal["baseline"]
    assert any("no longer true: '*At equal characters*" in p for p in problems(NOTEBOOK, turned, counts))


def test_a_ratio_in_words_must_match_the_measured_one(counts):
    slower = copy.deepcopy(RESULTS)
    slower["comparison"]["ms_per_iter_ratio"] = 1.2  # "about as much" no longer holds
    assert any("about as much as a baseline step" in p for p in problems(NOTEBOOK, slower, counts))


def test_numbers_are_read_as_written():
    text = "1,808,256 parameters, a loss of 1.858 and 61 % of words; $C^2$, `x[0]`, 4C and τ = 0.8 are not results"
    found = [m.group() for m in NUMBER.finditer(NOT_RESULTS.sub(lambda s: " " * len(s[0]), text))]
    assert found == ["1,808,256", "1.858", "61 %"]


def test_the_answers_total_at_most_1500_words():
    words = sum(len(text.split()) for tag, text in answers(NOTEBOOK).items() if tag.startswith("answer-"))
    assert words <= 1500
