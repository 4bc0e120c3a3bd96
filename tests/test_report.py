"""The PDF report: built from the committed results, it shows exactly their numbers, figures and samples."""

import json
import re
import sys
import warnings

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "report"))
import build as report_build  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pypdf = pytest.importorskip("pypdf")
    profile = report_build.report_profile(None)
    with warnings.catch_warnings():  # the committed authors.toml holds placeholders: tested below
        warnings.simplefilter("ignore", UserWarning)
        pdf = report_build.build(profile, tmp_path_factory.mktemp("report") / "report.pdf")
    pages = [page.extract_text() for page in pypdf.PdfReader(pdf).pages]
    results = json.loads((ROOT / "results" / f"{profile}.json").read_text())
    return profile, pages, results


def squash(s: str) -> str:
    """Text without white space, math italic tau (as typeset in equations) read as a plain tau."""
    return re.sub(r"\s+", "", s).replace("\U0001d70f", "τ")


def test_page_one_is_the_cover_letter(built):
    _, pages, _ = built
    cover = pages[0]
    for text in ["Deep Learning KU", "DAT.C302UF", "WS24", "Assignment 3", "Autoregressive Language Modeling",
                 "Matriculation"]:
        assert text in cover
    assert "(a) The dataset" not in cover


def test_every_task_has_its_section(built):
    _, pages, _ = built
    body = "\n".join(pages[1:])
    for task in "abcdefgh":
        assert re.search(rf"\({task}\) [A-Z]", body), f"no section ({task})"


def test_report_is_concise(built):
    _, pages, _ = built
    assert len(pages) - 1 <= 8


def test_numbers_in_the_pdf_are_the_results(built):
    _, pages, results = built
    text = squash("\n".join(pages))
    for run in ("baseline", "large"):
        r = results[run]
        assert squash(f"{r['best_val_loss']:.4f}") in text
        assert f"{r['n_params']:,}" in text
        assert f"{r['train_time_s']:.1f}" in text
        assert f"{r['ms_per_iter']:.1f}" in text
    assert f"{results['data']['n_chars']:,}" in text
    assert squash(results["hardware"]["device"]) in text


def test_all_six_temperatures_appear_with_their_samples(built):
    _, pages, results = built
    text = squash("\n".join(pages))
    assert list(results["samples"]) == ["1.5", "1.0", "0.8", "0.5", "0.1", "0.0001"]
    for tau, sample in results["samples"].items():
        assert f"τ={tau}" in text
        assert squash(sample[:80]) in text


def test_every_figure_the_report_uses_exists(built):
    profile, _, _ = built
    source = (ROOT / "report" / "report.typ").read_text()
    names = re.findall(r'fig\("(\w+)"\)', source)
    assert set(names) == {"char_freq", "baseline_loss", "optimizers", "attention", "temperature", "large_loss"}
    for name in names:
        assert (ROOT / "figures" / f"{name}_{profile}.pdf").exists()


def test_committed_pdf_exists_and_starts_with_the_cover():
    pypdf = pytest.importorskip("pypdf")
    first = pypdf.PdfReader(ROOT / "report" / "report.pdf").pages[0].extract_text()
    assert "Assignment 3" in first and "DAT.C302UF" in first


def test_placeholder_authors_warn_but_do_not_fail(tmp_path):
    authors = tmp_path / "authors.toml"
    authors.write_text('[[authors]]\nname = "FILL IN: first author"\nmatriculation = "01234567"\n')
    assert report_build.placeholders(authors) == ['name = "FILL IN: first author"']
    authors.write_text('[[authors]]\nname = "Ada Lovelace"\nmatriculation = "01234567"\n')
    assert report_build.placeholders(authors) == []
    if report_build.placeholders():  # the committed file: building still succeeds, with a loud warning
        with pytest.warns(UserWarning, match="authors.toml still holds placeholders"):
            assert report_build.build(None, tmp_path / "report.pdf").exists()


def test_the_report_follows_the_profile_the_notebook_ran(monkeypatch, tmp_path):
    monkeypatch.setattr(report_build, "ROOT", tmp_path)
    (tmp_path / "results").mkdir()
    for profile in ("cpu", "gpu"):
        (tmp_path / "results" / f"{profile}.json").write_text("{}")
    assert report_build.report_profile(None) == "gpu"  # no executed notebook: the gpu results
    (tmp_path / "assignment3.ipynb").write_text(json.dumps({"cells": [{"outputs": [
        {"text": ["wrote results/cpu.json; the notebook took 494 s on a CPU\n"]}]}]}))
    assert report_build.report_profile(None) == "cpu"  # a cpu rerun of the notebook gets a cpu report
    assert report_build.report_profile("gpu") == "gpu"


def test_committed_report_shows_the_committed_notebooks_run():
    pypdf = pytest.importorskip("pypdf")
    profile = report_build.notebook_profile()
    assert profile is not None and report_build.report_profile(None) == profile
    cover = squash(pypdf.PdfReader(ROOT / "report" / "report.pdf").pages[0].extract_text())
    assert f"results/{profile}.json" in cover


def test_missing_results_are_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(report_build, "ROOT", tmp_path)
    with pytest.raises(FileNotFoundError, match="run the notebook"):
        report_build.report_profile(None)


def test_no_expression_swallows_the_punctuation_after_it():
    """In Typst `#x;` (or `#f(x);`, `#(x);`) ends the expression at the `;` and drops it: write `#x\\;`."""
    source = (ROOT / "report" / "report.typ").read_text()
    expression = r"#(?:[A-Za-z_][\w.]*)?(?:\([^()]*(?:\([^()]*\)[^()]*)*\))?;"
    assert not [line for line in source.splitlines() if re.search(expression, line)]


def test_sentences_around_numbers_keep_their_punctuation(built):
    _, pages, results = built
    text = squash("\n".join(pages))
    assert squash(f"PyTorch {results['hardware']['torch']}, code of commit {results['hardware']['commit']};") in text
    tc = results["baseline"]["train_config"]
    assert squash(f"iteration {tc['max_iters']};") in text and squash(f"norm {tc['grad_clip']:g};") in text


def test_the_cover_date_is_the_run_date(built):
    _, pages, results = built
    day, month, year = results["date"].split("-")[::-1]
    assert f"{day}.{month}.{year}" in pages[0]
