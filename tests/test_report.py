"""The PDF report: built from the notebook's answer cells and the committed results, it shows the notebook's answers
word for word, the results' numbers, figures and samples, and no discussion of its own; the committed PDF is that
build."""

import json
import re
import shutil
import sys
import warnings

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "report"))
import build as report_build  # noqa: E402

pymupdf = pytest.importorskip("pymupdf")
pypandoc = pytest.importorskip("pypandoc")

SOURCE = (ROOT / "report" / "report.typ").read_text(encoding="utf-8")
NOTEBOOK = json.loads((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))
ANSWERS = {tag: "".join(cell["source"]) for cell in NOTEBOOK["cells"] for tag in cell["metadata"].get("tags", [])
           if tag.startswith("answer-")}
LOG_SCALE = {"char_freq"}  # the loss curves are on linear axes


def pdf_pages(path) -> list[str]:
    with pymupdf.open(path) as doc:
        return [page.get_text() for page in doc]


def quiet_build(*args, **kwargs):
    with warnings.catch_warnings():  # the committed authors.toml holds placeholders: tested below
        warnings.simplefilter("ignore", UserWarning)
        return report_build.build(*args, **kwargs)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The report of the repository's run, built once: (PDF path, page texts, results)."""
    pdf = quiet_build(output=tmp_path_factory.mktemp("report") / "report.pdf")
    return pdf, pdf_pages(pdf), json.loads((ROOT / "results" / "run.json").read_text(encoding="utf-8"))


def scratch_root(tmp_path, notebook: dict = NOTEBOOK):
    """A folder to build in: the notebook, and the repository's results/run.json and figures."""
    (tmp_path / "results").mkdir()
    (tmp_path / "assignment3.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    shutil.copy(ROOT / "results" / "run.json", tmp_path / "results" / "run.json")
    shutil.copytree(ROOT / "figures", tmp_path / "figures")
    return tmp_path


def squash(s: str) -> str:
    """Text without white space, math italic tau (as typeset in equations) read as a plain tau."""
    return re.sub(r"\s+", "", s).replace("\U0001d70f", "τ")


# ---------------------------------------------------------------- the answers come from the notebook, once

MARK = "\u2042"  # put where math or code was: pandoc passes it through as text


def letters(s: str) -> str:
    """Only the letters a-z, lower case: what survives hyphenation, line breaks, smart quotes and typesetting."""
    return re.sub(r"[^a-z]", "", s.lower())


def answer_fragments(markdown: str) -> list[str]:
    """An answer as the reader sees it, in the pieces the PDF must hold: pandoc's plain text of the markdown, split
    into sentences, and split again where math, inline code or a table's cell border was (math and code are
    typeset in glyphs of their own, so they are left out). The notebook's "**Answer (x).**" label is left out:
    the report's heading names the task."""
    md = re.sub(r"^\s*\*\*Answer \([a-z]\)\.\*\*", "", markdown)
    md = re.sub(r"(`+).*?\1|\$\$.*?\$\$|\$.*?\$", f" {MARK} ", md, flags=re.S)
    rows = []
    for line in md.splitlines():
        if line.strip().startswith("|"):  # a table row: its cells are pieces; the |---| rule is no text
            line = "" if set(line.strip()) <= set("|-: ") else f" {MARK} ".join(line.strip().strip("|").split("|"))
        rows.append(line)
    plain = pypandoc.convert_text("\n".join(rows), "plain", format=report_build.READER, extra_args=["--wrap=none"])
    pieces = re.split(rf"\s*{MARK}\s*|(?<=[.!?])\s+|\n+", plain)  # plain text: a paragraph or item a line
    return [p.strip() for p in pieces if letters(p)]


def missing_fragments(pdf_text: str, markdown: str) -> list[str]:
    """The pieces of an answer (answer_fragments) that the PDF's text does not hold, in order, letter for letter."""
    text, position, missing = letters(pdf_text), 0, []
    for piece in answer_fragments(markdown):
        found = text.find(letters(piece), position)
        if found < 0:
            missing.append(piece)
        else:
            position = found + len(letters(piece))
    return missing


@pytest.mark.parametrize("tag", list(ANSWERS))
def test_every_answer_of_the_notebook_is_in_the_pdf_word_for_word(built, tag):
    _, pages, _ = built
    assert answer_fragments(ANSWERS[tag]), "an empty answer cell"
    assert missing_fragments("\n".join(pages[1:]), ANSWERS[tag]) == []


def test_the_answer_check_finds_an_altered_or_added_sentence(built):
    _, pages, _ = built
    text = "\n".join(pages[1:])
    for tag, markdown in ANSWERS.items():
        word = re.search(r"[A-Za-z]{3,}", answer_fragments(markdown)[0])[0]  # the first word of its text
        assert missing_fragments(text, markdown.replace(word, word + "zq", 1)), tag
        assert missing_fragments(text, markdown + "\n\nA sentence the report does not hold.") == [
            "A sentence the report does not hold."]


def test_answer_fragments_leave_out_math_code_and_table_rules():
    md = ("**Answer (b).** With $h$ heads each has shape $(B, h, T, C/h)$. Use `torch.tril` here.\n\n"
          "| tensor | shape |\n|---|:---:|\n| keys | $(B, T)$ |\n\n$$x = y$$\nThe end.")
    assert answer_fragments(md) == ["With", "heads each has shape", "Use", "here.", "tensor", "shape", "keys",
                                    "The end."]


def test_answers_convert_as_jupyter_shows_them():
    """Pandoc reads GitHub's markdown with $...$ math, as Jupyter renders it: a list may follow a line directly, a
    line that opens with "(f)" is no list item, and a named operator sits next to its parenthesis."""
    markup = report_build.to_typst("**Answer (b).** The loss falls, as in\n(f) shows:\n- one\n- two\n\n"
                                   "$\\operatorname{GELU}(z) = z\\,\\Phi(z)$ and `$`")
    assert "Answer" not in markup and "as in (f) shows:" in markup
    assert "\n- one\n- two" in markup and '$"GELU"\\( z \\)' in markup and "`$`" in markup


def prose_runs(source: str, words: int = 12) -> list[str]:
    """Runs of more than `words` words of plain text in Typst source, outside comments, headings and the captions'
    [...] arguments. A run is words of letters separated only by white space, each perhaps followed by , . ; : ! or
    ?; anything else (markup such as # [ ] ( ) $ * = " or a hyphen) ends it. Sentences of prose easily make such
    runs; table cells, code and expressions do not."""
    text = re.sub(r"(?m)//.*$|^\s*=.*$", "", source)
    for start in reversed([m.end() for m in re.finditer(r"caption:\s*\[", text)]):
        depth, end = 1, start
        while depth:
            depth += {"[": 1, "]": -1}.get(text[end], 0)
            end += 1
        text = text[:start] + text[end - 1 :]
    run = re.compile(rf"[A-Za-z’']+[,.;:!?]?(?:\s+[A-Za-z’']+[,.;:!?]?){{{words},}}")
    return [m.group() for m in run.finditer(text)]


def test_the_report_source_holds_no_prose_of_its_own():
    assert prose_runs(SOURCE) == []


def test_the_prose_check_finds_a_paragraph_but_not_a_caption_heading_or_table():
    paragraph = "The larger model is better at equal tokens, as the curves of the figure show from the start."
    assert prose_runs(f"#figure(image(\"x.pdf\"))\n\n{paragraph}\n") == [paragraph]
    assert prose_runs(f"#answer[{paragraph}]") == [paragraph]
    assert prose_runs(f"#figure(table([a], [b]), caption: [{paragraph} [nested] {paragraph}])\n= {paragraph}\n"
                      f"// {paragraph}\n#table([model], [4 blocks, 4 heads, width #n, block 64, dropout 0])") == []


def test_the_report_places_every_answer_in_the_notebooks_order():
    assert report_build.placed_answers(SOURCE) == [tag.removeprefix("answer-") for tag in ANSWERS]


def synthetic_notebook(ids) -> dict:
    return {"cells": [{"cell_type": "markdown", "metadata": {"tags": [f"answer-{i}"]}, "source": [f"Answer {i}."]}
                      for i in ids], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_the_build_fails_when_the_notebook_has_an_answer_the_report_does_not_place(tmp_path):
    ids = [*report_build.placed_answers(SOURCE), "new-question"]
    root = scratch_root(tmp_path, synthetic_notebook(ids))
    with pytest.raises(ValueError, match="does not place: answer-new-question$"):
        quiet_build(output=tmp_path / "report.pdf", root=root)
    assert not (tmp_path / "report.pdf").exists()


def test_the_build_fails_when_the_report_places_an_answer_the_notebook_lacks(tmp_path):
    ids = [i for i in report_build.placed_answers(SOURCE) if i != "c"]
    root = scratch_root(tmp_path, synthetic_notebook(ids))
    with pytest.raises(ValueError, match="has no cell for: answer-c$"):
        quiet_build(output=tmp_path / "report.pdf", root=root)


def test_an_answer_placed_twice_or_tagged_on_a_code_cell_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="more than once: answer-a"):
        report_build.check_answers(["a", "b"], ["a", "b", "a"])
    notebook = synthetic_notebook(["a"])
    notebook["cells"].append({"cell_type": "code", "metadata": {"tags": ["answer-b"]}, "source": ["x = 1"]})
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    with pytest.raises(ValueError, match="'answer-b' must mark exactly one markdown cell"):
        report_build.answer_cells(tmp_path / "nb.ipynb")


# ---------------------------------------------------------------- the PDF

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
    assert len(pages) - 1 <= 12


def test_every_text_in_the_pdf_is_at_least_7_points_figures_included(built):
    """pymupdf reads the text inside the embedded PDF figures too, at the size it is printed."""
    pdf, _, _ = built
    with pymupdf.open(pdf) as doc:
        small = {(number + 1, round(span["size"], 1), span["text"].strip()[:30])
                 for number, page in enumerate(doc) for block in page.get_text("dict")["blocks"]
                 for line in block.get("lines", []) for span in line["spans"]
                 if span["text"].strip() and span["size"] < 7}
    assert sorted(small) == []


def test_numbers_in_the_pdf_are_the_results(built):
    _, pages, results = built
    text = squash("\n".join(pages))
    for run in ("baseline", "large"):
        r = results[run]
        assert squash(f"{r['best_val_loss']:.3f}") in text
        assert f"{r['n_params']:,}" in text
        assert f"{r['train_time_s']:.1f}" in text
    for run in [*results["architecture_sweep"].values(), *results["lr_sweep"].values(), results["muon"]]:
        assert squash(f"{run['best_val_loss']:.3f}") in text
    assert f"{results['data']['n_chars']:,}" in text
    assert squash(results["machine"]["name"]) in text


def test_all_six_temperatures_appear_with_their_samples(built):
    _, pages, results = built
    text = squash("\n".join(pages))
    assert list(results["samples"]) == ["1.5", "1.0", "0.8", "0.5", "0.1", "0.0001"]
    for tau, sample in results["samples"].items():
        assert f"τ={tau}" in text
        assert squash(sample[:80]) in text


def figure_captions(source: str) -> dict[str, str]:
    """{figure name: its caption's source} for every `figure(image(fig("name")), caption: [...])`."""
    out = {}
    for m in re.finditer(r'image\(fig\("(\w+)"\)\),\s*caption:\s*\[', source):
        depth, end = 1, m.end()
        while depth:
            depth += {"[": 1, "]": -1}.get(source[end], 0)
            end += 1
        out[m.group(1)] = re.sub(r"\s+", " ", source[m.end() : end - 1])
    return out


def test_every_figure_the_report_uses_exists_and_has_a_caption():
    names = re.findall(r'fig\("(\w+)"\)', SOURCE)
    assert set(names) == {"char_freq", "baseline_loss", "optimizers", "attention", "temperature", "architectures",
                          "large_loss", "overlay"}
    assert set(figure_captions(SOURCE)) == set(names)
    for name in names:
        assert (ROOT / "figures" / f"{name}.pdf").exists()
    body = "\n".join(line for line in SOURCE.splitlines() if not line.startswith(("#show", "#let sweep-table")))
    figures = len(re.findall(r"(?<!set )\bfigure\(|#sweep-table\(", body))  # the tables are figures too
    assert figures >= len(names) + 3 and body.count("caption:") == figures


def test_figures_are_at_their_natural_size_and_captions_name_their_units_and_log_axes():
    assert not re.search(r"image\([^)]*\)?[^)]*(width|height):", SOURCE)
    for name, caption in figure_captions(SOURCE).items():
        assert "token" not in caption, f"{name}: the unit is characters"
        assert ("log scale" in caption) == (name in LOG_SCALE), name


def test_no_figure_or_table_is_split_across_pages():
    assert "#show figure: set block(breakable: false)" in SOURCE


def test_the_committed_pdf_is_the_build_of_the_committed_sources(built):
    _, pages, _ = built
    committed = pdf_pages(ROOT / "report" / "report.pdf")
    assert "Assignment 3" in committed[0] and "DAT.C302UF" in committed[0]
    assert [squash(p) for p in committed[1:]] == [squash(p) for p in pages[1:]], "run python report/build.py"


def test_building_twice_gives_the_same_bytes(built, tmp_path):
    pdf, _, _ = built
    assert quiet_build(output=tmp_path / "again.pdf").read_bytes() == pdf.read_bytes()


def test_placeholder_authors_warn_but_do_not_fail(tmp_path):
    authors = tmp_path / "authors.toml"
    authors.write_text('[[authors]]\nname = "FILL IN: first author"\nmatriculation = "01234567"\n', encoding="utf-8")
    assert report_build.placeholders(authors) == ['name = "FILL IN: first author"']
    authors.write_text('[[authors]]\nname = "Ada Lovelace"\nmatriculation = "01234567"\n', encoding="utf-8")
    assert report_build.placeholders(authors) == []
    if report_build.placeholders():  # the committed file: building still succeeds, with a loud warning
        with pytest.warns(UserWarning, match="authors.toml still holds placeholders"):
            assert report_build.build(tmp_path / "report.pdf").exists()


def test_missing_results_are_a_clear_error(tmp_path):
    path = re.escape(str(tmp_path / "results" / "run.json"))
    with pytest.raises(FileNotFoundError, match=f"{path} does not exist: run the notebook first"):
        report_build.build(tmp_path / "report.pdf", root=tmp_path)
    assert not (tmp_path / "report.pdf").exists()


def test_no_expression_swallows_the_punctuation_after_it():
    """In Typst `#x;` (or `#f(x);`, `#(x);`) ends the expression at the `;` and drops it: write `#x\\;`."""
    expression = r"#(?:[A-Za-z_][\w.]*)?(?:\([^()]*(?:\([^()]*\)[^()]*)*\))?;"
    assert not [line for line in SOURCE.splitlines() if re.search(expression, line)]

