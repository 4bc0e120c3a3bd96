"""The written answers against the run on record: every number they quote is the result it names, every written
comparison holds, and no number goes unnamed (the entries are in prose_checks.py). The checks must also catch a
number swapped for another result's value and a comparison that turns, and must pass unchanged for the results of
re-runs of the same code with other CPU kernels (results/reruns/), within the tolerances the entries give."""

import copy
import json

import prose_checks
import pytest
from conftest import ROOT

NOTEBOOK = json.loads((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))
RERUNS = sorted((ROOT / "results" / "reruns").glob("*.json"))


def recorded_results() -> dict:
    """The results of the run whose outputs the committed notebook holds: its first output names the profile."""
    outputs = ["".join(o.get("text", "")) for c in NOTEBOOK["cells"] if c["cell_type"] == "code"
               for o in c.get("outputs", [])]
    profile = next(text for text in outputs if text.startswith("profile ")).split(":")[0].removeprefix("profile ")
    return json.loads((ROOT / "results" / f"{profile}.json").read_text(encoding="utf-8"))


RECORD = recorded_results()


def test_every_answer_is_true_to_the_run_on_record():
    assert prose_checks.stale_answers(NOTEBOOK, RECORD) == {}


@pytest.mark.parametrize("rerun", RERUNS, ids=[p.stem for p in RERUNS])
def test_the_answers_need_no_edit_for_a_rerun_on_another_cpu(rerun):
    results = json.loads(rerun.read_text(encoding="utf-8"))
    assert results["profile"] == RECORD["profile"]
    assert prose_checks.stale_answers(NOTEBOOK, results, rerun=True) == {}


def test_every_answer_and_the_introduction_have_entries():
    tags = set(prose_checks.answer_texts(NOTEBOOK))
    named = {e.answer for e in prose_checks.QUOTES + prose_checks.CLAIMS + prose_checks.DEFINITIONS}
    assert "intro" in tags and named <= tags
    assert {tag for tag, text in prose_checks.answer_texts(NOTEBOOK).items()
            if prose_checks.numbers_in(text)} <= named


def with_answer_text(notebook: dict, tag: str, old: str, new: str) -> dict:
    """A copy of `notebook` whose answer `tag` says `new` where it said `old`."""
    out = copy.deepcopy(notebook)
    (cell,) = [c for c in out["cells"] if tag in c["metadata"].get("tags", [])]
    source = "".join(cell["source"])
    assert old in source
    cell["source"] = source.replace(old, new, 1)
    return out


def loss_quotes() -> list:
    """The quotes of a single loss written to four decimals."""
    return [q for q in prose_checks.QUOTES if len(found := prose_checks.numbers_in(q.text)) == 1
            and prose_checks.written_value(found[0])[1] == 4]


@pytest.mark.parametrize("quote", loss_quotes(), ids=lambda q: f"{q.answer}: {q.text}")
def test_a_loss_swapped_for_another_results_value_fails(quote):
    written = prose_checks.numbers_in(quote.text)[0].group()
    others = {f"{v:.4f}" for v in (q.value(RECORD) for q in loss_quotes()) if isinstance(v, float)} - {written}
    for other in sorted(others)[:5]:
        swapped = with_answer_text(NOTEBOOK, quote.answer, quote.text, quote.text.replace(written, other))
        assert quote.answer in prose_checks.stale_answers(swapped, RECORD)


@pytest.mark.parametrize("claim", prose_checks.CLAIMS, ids=lambda c: f"{c.answer}: {c.text}")
def test_a_claim_is_checked_by_a_predicate_on_the_results(claim):
    assert claim.holds(RECORD) is True


def test_a_comparison_that_turns_fails():
    turned = copy.deepcopy(RECORD)
    equal_tokens = turned["comparison"]["equal_tokens"]
    equal_tokens["baseline"], equal_tokens["large"] = equal_tokens["large"], equal_tokens["baseline"]
    problems = prose_checks.stale_answers(NOTEBOOK, turned)["answer-h"]
    assert any(p.startswith("no longer true: '*At equal characters*") for p in problems)


def test_a_number_that_no_entry_names_fails():
    tag, text = next((t, s) for t, s in prose_checks.answer_texts(NOTEBOOK).items() if t.startswith("answer-"))
    sentence = text.split(". ")[0]
    added = with_answer_text(NOTEBOOK, tag, sentence, sentence + " (about 3.1416)")
    assert any("3.1416" in problem for problem in prose_checks.stale_answers(added, RECORD)[tag])


def test_a_quote_that_left_the_text_fails():
    quote = prose_checks.QUOTES[0]
    edited = with_answer_text(NOTEBOOK, quote.answer, quote.text, "something else")
    assert any("no longer in the text" in problem for problem in prose_checks.stale_answers(edited, RECORD)[
        quote.answer])


def test_numbers_are_read_as_written():
    text = "1,808,256 parameters, a loss of 1.8548 and 61 % of words; $C^2$ and `x[0]` and 4C are not numbers"
    found = [prose_checks.written_value(m) for m in prose_checks.numbers_in(text)]
    assert found == [(1808256.0, 0, False), (1.8548, 4, False), (61.0, 0, True)]


def test_the_reproduction_note_quotes_the_measured_rerun_on_avx2_kernels():
    note = next("".join(c["source"]) for c in NOTEBOOK["cells"] if "".join(c["source"]).startswith("## Reproduction"))
    note = prose_checks.squash(note)
    rerun = json.loads((ROOT / "results" / "reruns" / "cpu_avx2_kernels.json").read_text(encoding="utf-8"))
    moved = {path: abs(prose_checks.best(RECORD, path) - prose_checks.best(rerun, path))
             for path in ("baseline", "large", "lr_sweep/0.016")}
    assert (f"the baseline's best loss moved by {moved['baseline']:.3f} and the larger model's by {moved['large']:.3f}"
            in note)
    assert f"(0.016) by {moved['lr_sweep/0.016']:.3f}" in note
    short_runs = [f"{sweep}/{name}" for sweep in ("architecture_sweep", "batch_sweep") for name in RECORD[sweep]]
    assert all(round(prose_checks.best(RECORD, p), 4) == round(prose_checks.best(rerun, p), 4)
               for p in [*short_runs, "lr_sweep/0.001", "lr_sweep/0.004"])
    assert "(in our runs of this code it got 600 or 650 iterations)" in note
    assert {r["optimizer_comparison"]["muon_iters"] for r in (RECORD, rerun)} <= {600, 650}
    assert "AVX2" in rerun["machine"]["name"] and "AVX512" in RECORD["machine"]["name"]
