"""The PDF report: built from the committed results, it shows their numbers, figures and samples, and the committed
PDF is that build."""

import json
import re
import sys
import warnings

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "report"))
import build as report_build  # noqa: E402

SOURCE = (ROOT / "report" / "report.typ").read_text(encoding="utf-8")


def pdf_pages(path) -> list[str]:
    pypdf = pytest.importorskip("pypdf")
    return [page.extract_text() for page in pypdf.PdfReader(path).pages]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    profile = report_build.notebook_profile()
    with warnings.catch_warnings():  # the committed authors.toml holds placeholders: tested below
        warnings.simplefilter("ignore", UserWarning)
        pdf = report_build.build(profile, tmp_path_factory.mktemp("report") / "report.pdf")
    results = json.loads((ROOT / "results" / f"{profile}.json").read_text(encoding="utf-8"))
    return profile, pdf_pages(pdf), results


def squash(s: str) -> str:
    """Text without white space, math italic tau (as typeset in equations) read as a plain tau."""
    return re.sub(r"\s+", "", s).replace("\U0001d70f", "τ")


def test_page_one_is_the_cover_letter_and_holds_nothing_of_the_build(built):
    _, pages, results = built
    cover = pages[0]
    for text in ["Deep Learning KU", "DAT.C302UF", "WS24", "Assignment 3", "Autoregressive Language Modeling",
                 "Matriculation"]:
        assert text in cover
    assert "(a) The dataset" not in cover
    for build_detail in (".json", "results/", "commit", results["date"], results["machine"]["torch"]):
        assert build_detail not in cover


def test_every_task_has_its_section(built):
    _, pages, _ = built
    body = "\n".join(pages[1:])
    for task in "abcdefgh":
        assert re.search(rf"\({task}\) [A-Z]", body), f"no section ({task})"


def test_report_is_concise(built):
    _, pages, _ = built
    assert len(pages) - 1 <= 10


def test_numbers_in_the_pdf_are_the_results(built):
    _, pages, results = built
    text = squash("\n".join(pages))
    for run in ("baseline", "large"):
        r = results[run]
        assert squash(f"{r['best_val_loss']:.4f}") in text
        assert f"{r['n_params']:,}" in text
        assert f"{r['train_time_s']:.1f}" in text
    for run in results["architecture_sweep"].values():
        assert squash(f"{run['best_val_loss']:.4f}") in text
    assert f"{results['data']['n_chars']:,}" in text
    assert squash(results["machine"]["name"]) in text


def test_all_six_temperatures_appear_with_their_samples(built):
    _, pages, results = built
    text = squash("\n".join(pages))
    assert list(results["samples"]) == ["1.5", "1.0", "0.8", "0.5", "0.1", "0.0001"]
    for tau, sample in results["samples"].items():
        assert f"τ={tau}" in text
        assert squash(sample[:80]) in text


def test_every_figure_the_report_uses_exists_and_has_a_caption(built):
    profile, _, _ = built
    names = re.findall(r'fig\("(\w+)"\)', SOURCE)
    assert set(names) == {"char_freq", "baseline_loss", "optimizers", "attention", "temperature", "architectures",
                          "large_loss", "overlay"}
    for name in names:
        assert (ROOT / "figures" / f"{name}_{profile}.pdf").exists()
    body = "\n".join(line for line in SOURCE.splitlines() if not line.startswith("#show"))
    figures = body.count("figure(")
    assert figures >= len(names) + 3 and body.count("caption:") == figures  # the tables are figures too


def test_no_figure_or_table_is_split_across_pages():
    assert "#show figure: set block(breakable: false)" in SOURCE


def test_the_committed_pdf_is_the_build_of_the_committed_sources(built):
    _, pages, _ = built
    committed = pdf_pages(ROOT / "report" / "report.pdf")
    assert "Assignment 3" in committed[0] and "DAT.C302UF" in committed[0]
    assert [squash(p) for p in committed[1:]] == [squash(p) for p in pages[1:]], "run python report/build.py"


def test_placeholder_authors_warn_but_do_not_fail(tmp_path):
    authors = tmp_path / "authors.toml"
    authors.write_text('[[authors]]\nname = "FILL IN: first author"\nmatriculation = "01234567"\n')
    assert report_build.placeholders(authors) == ['name = "FILL IN: first author"']
    authors.write_text('[[authors]]\nname = "Ada Lovelace"\nmatriculation = "01234567"\n')
    assert report_build.placeholders(authors) == []
    if report_build.placeholders():  # the committed file: building still succeeds, with a loud warning
        with pytest.warns(UserWarning, match="authors.toml still holds placeholders"):
            assert report_build.build(None, tmp_path / "report.pdf").exists()


def test_the_report_follows_the_notebooks_parameters_cell(tmp_path):
    nb = json.loads((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if "parameters" in cell["metadata"].get("tags", []):
            cell["source"] = ['PROFILE = "gpu"\n', "SEED = 1337\n"]
    (tmp_path / "nb.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    assert report_build.notebook_profile(tmp_path / "nb.ipynb") == "gpu"
    assert report_build.notebook_profile() == "cpu"


def test_missing_results_are_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(report_build, "ROOT", tmp_path)
    with pytest.raises(FileNotFoundError, match="run the notebook"):
        report_build.build("smoke", tmp_path / "report.pdf")
    assert not (tmp_path / "report.pdf").exists()


def test_no_expression_swallows_the_punctuation_after_it():
    """In Typst `#x;` (or `#f(x);`, `#(x);`) ends the expression at the `;` and drops it: write `#x\\;`."""
    expression = r"#(?:[A-Za-z_][\w.]*)?(?:\([^()]*(?:\([^()]*\)[^()]*)*\))?;"
    assert not [line for line in SOURCE.splitlines() if re.search(expression, line)]


def test_sentences_around_numbers_keep_their_punctuation(built):
    _, pages, results = built
    text = squash("\n".join(pages))
    tc = results["baseline"]["train_config"]
    assert squash(f"iteration {tc['max_iters']};") in text
    assert squash(f"gradients clipped at norm {tc['grad_clip']:g}.") in text
