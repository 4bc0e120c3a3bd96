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
LARGE = "6 blocks, 6 heads, width 192"  # the larger model's architecture, as the notebook names it
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


def quotes(r: dict, counts: Counter) -> dict[str, dict[str, tuple]]:
    """{answer: {quoted text: its values}}: what each written number is."""
    b, m, lg, d = r["baseline"], r["muon"], r["large"], r["data"]
    arch = {name: run["best_val_loss"] for name, run in r["architecture_sweep"].items()}
    lr = {name: run["best_val_loss"] for name, run in r["lr_sweep"].items()}
    batch, equal = r["batch_sweep"], r["batch_comparison"]["at_equal_tokens"]
    tm, opt, cmp = r["temperature_metrics"], r["optimizer_comparison"], r["comparison"]
    bh = b["history"]
    gap_end = bh["val_loss"][-1] - bh["train_loss"][-1]
    sweep = r["architecture_sweep"]
    sb = sweep["baseline"]["history"]
    close = [arch[name] for name in ("6 blocks", LARGE, "baseline")]
    runs = 3 + len(r["no_mask"]) + len(arch) + len(lr) + len(batch) - 1  # the batch sweep reuses one run
    return {
        "intro": {"trains 16 small models": (runs,), "about 80 minutes": (round(r["notebook_time_s"] / 600) * 10,)},
        "answer-a": {"1,115,394 characters (40,000 lines)": (d["n_chars"], d["n_lines"]),
                     "Only 65 distinct": (d["vocab_size"],),
                     "Space alone is 15.2 %": (counts[" "] / d["n_chars"],),
                     "appear 1, 3 and 27 times": (counts["$"], counts["&"], counts["3"]),
                     "the first 90 % to train, the last 10 % to validate": (d["n_train"] / d["n_chars"],
                                                                            d["n_val"] / d["n_chars"])},
        "answer-d": {"gives 4.196": (val_at(b, 0),)},
        "answer-f": {"812,288 parameters": (b["n_params"],),
                     "batches of 32 windows instead of 128": (b["train_config"]["batch_size"], 128),
                     "peak learning rate to 0.002": (b["train_config"]["learning_rate"],),
                     "It trained for 3,000 iterations: 12.3 million characters (about 12 passes": (
                         bh["iter"][-1], bh["tokens"][-1] / 1e6, bh["tokens"][-1] / d["n_train"]),
                     "from 4.196 to 2.013 after 500 iterations": (val_at(b, 0), val_at(b, 500), 500),
                     "at iteration 2,900, score 1.535": (b["best_iter"], b["best_val_loss"]),
                     "fell by only 0.005": (r["baseline_last_tenth_gain"],),
                     "the last evaluation is 0.001 above the best": (bh["val_loss"][-1] - min(bh["val_loss"]),),
                     "0.15 at iteration 500, 0.30 at the end, where the training loss is 1.247": (
                         gap_at(b, 500), 500, gap_end, bh["train_loss"][-1])},
        "answer-muon": {"After 206 seconds of training": (opt["seconds"],),
                        "is 1.932, AdamW's 2.056": (opt["Muon"], opt["AdamW"]),
                        "Muon's 400 iterations reach 1.950 and AdamW's 500 reach 2.043": (
                            m["history"]["iter"][-1], m["best_val_loss"],
                            r["lr_sweep"]["0.004"]["history"]["iter"][-1], lr["0.004"])},
        "answer-no-mask": {"falls to 0.052 within 300 iterations, against 2.017": (
                               r["no_mask"]["without the mask"]["train_loss"], 300,
                               r["no_mask"]["with the mask"]["train_loss"]),
                           "as low (0.055)": (r["no_mask"]["without the mask"]["val_loss"],)},
        "answer-attention": {"On these 16 characters": (len(r["attention"]["text"]),),
                             "more than 21 %": (max(r["attention"]["previous"]),),
                             "In head 0": (0,)},
        "answer-g": {"only 51 %": (tm["known_word_share"][0],), "(2.114 nats": (tm["nll"][0],),
                     "with 83 % and 93 % real words": tuple(tm["known_word_share"][1:3]),
                     "only 36 % and 28 % of its 4-character sequences are distinct, against 91 %": (
                         *tm["distinct_4gram_ratio"][4:], 4, tm["distinct_4gram_ratio"][1])},
        "answer-h-architectures": {
            "After 700 iterations of 16 windows at a rate of 0.004 (1.43 million characters; 2.87 million for the "
            "block of 256)": (sb["iter"][-1], sweep["baseline"]["train_config"]["batch_size"],
                              sweep["baseline"]["train_config"]["learning_rate"], sb["tokens"][-1] / 1e6,
                              sweep["block 256"]["history"]["tokens"][-1] / 1e6, 256),
            "A width of 192 is best (1.829)": (192, arch["width 192"]),
            "6 blocks (1.933), the combination (1.936) and the baseline (1.939) lie within 0.006": (
                6, arch["6 blocks"], arch[LARGE], arch["baseline"], max(close) - min(close)),
            "8 heads (1.982) and a block of 256 (1.968)": (8, arch["8 heads"], 256, arch["block 256"]),
            "3.3 times the baseline's parameters": (cmp["params_ratio"],)},
        "answer-h-learning-rate": {
            "0.001 reaches 2.289, 0.002 reaches 2.152 and 0.004 reaches 2.043": (
                0.001, lr["0.001"], 0.002, lr["0.002"], 0.004, lr["0.004"]),
            "The long run uses 0.004": (lg["train_config"]["learning_rate"],)},
        "answer-h-batch-size": {
            "the rate of 0.004 and 500 iterations each": (lg["train_config"]["learning_rate"],
                                                          batch["4"]["history"]["iter"][-1]),
            "batches of 4 windows reach 2.474, of 8 reach 2.311 and of 16 reach 2.043": tuple(
                x for size in ("4", "8", "16") for x in (int(size), batch[size]["best_val_loss"])),
            "Up to the 0.26 million characters and 64 seconds": (r["batch_comparison"]["tokens"] / 1e6,
                                                                 r["batch_comparison"]["seconds"]),
            "batch 4 reaches 2.468 and batch 8 2.476 at both budgets, batch 16 2.524 at equal characters and 2.484": (
                4, equal["4"], 8, equal["8"], 16, equal["16"], r["batch_comparison"]["at_equal_time"]["16"]),
            "Batch 4 had": (4,),
            "keeps 16 windows": (lg["train_config"]["batch_size"],),
            "over 30 minutes": (round(lg["train_time_s"] / 600) * 10,)},
        "answer-h": {
            "6 blocks, 6 heads, width 192, a block of 128 characters and dropout 0.1: 2,693,760 parameters, 3.3 "
            "times the baseline's 812,288": (lg["config"]["n_block"], lg["config"]["n_head"], lg["config"]["n_embd"],
                                             lg["config"]["block_size"], lg["config"]["dropout"], lg["n_params"],
                                             cmp["params_ratio"], b["n_params"]),
            "(rate 0.02) and AdamW at 0.004": (0.02, lg["train_config"]["learning_rate"]),
            "batches of 16 windows for 4,000 iterations (8.19 million characters)": (
                lg["train_config"]["batch_size"], lg["history"]["iter"][-1], lg["history"]["tokens"][-1] / 1e6),
            "1.483 against the baseline's 1.535: 0.052 lower": (lg["best_val_loss"], b["best_val_loss"], cmp["gain"]),
            "fell by 0.010": (cmp["large_last_tenth_gain"],),
            "Muon alone was 0.12 ahead of AdamW": (opt["AdamW"] - opt["Muon"],),
            "after 8.19 million characters its lowest validation loss on the fixed subset is 1.458, against the "
            "baseline's 1.596": (cmp["equal_tokens"]["tokens"] / 1e6, cmp["equal_tokens"]["large"],
                                 cmp["equal_tokens"]["baseline"]),
            "it had reached 1.633, against the baseline's 1.546": (cmp["equal_time"]["large"],
                                                                   cmp["equal_time"]["baseline"]),
            "91 % of its sampled words": (r["comparison_samples"]["known_word_share"]["larger model"],),
            "(the baseline's: 93 %)": (r["comparison_samples"]["known_word_share"]["baseline"],),
            "the larger model in about 30": (round(lg["train_time_s"] / 600) * 10,),
            "(16 training runs) in about 80": (runs, round(r["notebook_time_s"] / 600) * 10)},
    }


def claims(r: dict) -> dict[str, dict[str, bool]]:
    """{answer: {written comparison or timing: whether the results make it true}}."""
    b, lg = r["baseline"], r["large"]
    ranking, arch, cmp = r["architecture_ranking"], r["architecture_sweep"], r["comparison"]
    minutes = {name: run["train_time_s"] / 60 for name, run in (("baseline", b), ("large", lg))}
    best = {name: run["best_val_loss"] for name, run in arch.items()}
    batch, at_time = r["batch_sweep"], r["batch_comparison"]["at_equal_time"]
    equal_order = sorted(r["batch_comparison"]["at_equal_tokens"], key=r["batch_comparison"]["at_equal_tokens"].get)
    return {
        "answer-f": {"in about 11 minutes": about(minutes["baseline"], 11, 1),
                     "the curve has flattened": r["baseline_last_tenth_gain"] <= 0.01,
                     "The gap between validation and training loss grows all along": gap_at(b, 300) < gap_at(
                         b, 1200) < b["history"]["val_loss"][-1] - b["history"]["train_loss"][-1]},
        "answer-muon": {"The long run uses Muon": r["optimizer_comparison"]["chosen"] == "Muon"
                        and r["optimizer_comparison"]["Muon"] < r["optimizer_comparison"]["AdamW"]},
        "answer-no-mask": {"only repeats `O` and `:` and a few other characters": {
            c for c, _ in Counter(r["no_mask"]["without the mask"]["sample"][len("ROMEO:"):]).most_common(2)}
            == {"O", ":"}},
        "answer-g": {"At τ = 0.5 every word is real": r["temperature_metrics"]["known_word_share"][3] == 1.0},
        "answer-h-architectures": {
            "every run is below 2.0 and still falling": all(
                run["best_iter"] == run["history"]["iter"][-1] and run["best_val_loss"] < 2.0 for run in arch.values()),
            "is best": min(best, key=best.get) == ranking["end"][0] == "width 192",
            "are the two worst, the longer block despite twice the characters": set(sorted(best, key=best.get)[-2:])
                == set(ranking["end"][-2:]) == {"8 heads", "block 256"}
                and arch["block 256"]["history"]["tokens"][-1] == 2 * arch["baseline"]["history"]["tokens"][-1],
            "differs only in the order of the combination and 6 blocks": ranking["end"][3:] == ranking[
                "three_quarters"][3:]
                and ranking["end"][1:3] == ranking["three_quarters"][2:0:-1] == ["6 blocks", LARGE]},
        "answer-h-learning-rate": {"The largest rate is best": min(r["lr_sweep"], key=lambda k: r["lr_sweep"][k][
            "best_val_loss"]) == max(r["lr_sweep"], key=float)},
        "answer-h-batch-size": {
            "at equal iterations more characters help": batch["4"]["best_val_loss"] > batch["8"]["best_val_loss"]
            > batch["16"]["best_val_loss"],
            "had finished its schedule there": r["batch_comparison"]["tokens"] == batch["4"]["history"]["tokens"][-1],
            "the order turns, but the gaps are small": equal_order == ["4", "8", "16"]
            == sorted(at_time, key=at_time.get) and max(at_time.values()) - min(at_time.values()) < 0.1,
            "at both budgets": all(at_time[b] == r["batch_comparison"]["at_equal_tokens"][b] for b in ("4", "8")),
            "the best at equal iterations": min(batch, key=lambda b: batch[b]["best_val_loss"]) == "16"},
        "answer-h": {
            "It is still improving": lg["best_iter"] == lg["history"]["iter"][-1],
            "*At equal characters* the larger model is far ahead": cmp["equal_tokens"]["large"]
                < cmp["equal_tokens"]["baseline"] - 0.05,
            "*At equal time* it is behind": cmp["equal_time"]["large"] > cmp["equal_time"]["baseline"],
            "A step costs about twice as much": about(cmp["ms_per_iter_ratio"], 2, 0.5),
            "the whole run took about three times as long": about(cmp["time_ratio"], 3, 0.5),
            "the baseline trained in about 11 minutes": about(minutes["baseline"], 11, 1),
            "an AMD EPYC CPU, float32": "AMD EPYC" in r["machine"]["name"]},
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
    swapped = with_text("answer-f", "score 1.535 over", "score 1.483 over")
    found = problems(swapped, RESULTS, counts)
    assert any("no quote names '1.483'" in p for p in found) and any("no longer in the text" in p for p in found)


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
    slower["comparison"]["ms_per_iter_ratio"] = 3.0  # "about twice as much" no longer holds
    assert any("A step costs about twice as much" in p for p in problems(NOTEBOOK, slower, counts))


def test_numbers_are_read_as_written():
    text = "1,808,256 parameters, a loss of 1.858 and 61 % of words; $C^2$, `x[0]`, 4C and τ = 0.8 are not results"
    found = [m.group() for m in NUMBER.finditer(NOT_RESULTS.sub(lambda s: " " * len(s[0]), text))]
    assert found == ["1,808,256", "1.858", "61 %"]


def test_the_answers_total_at_most_1500_words():
    words = sum(len(text.split()) for tag, text in answers(NOTEBOOK).items() if tag.startswith("answer-"))
    assert words <= 1500
