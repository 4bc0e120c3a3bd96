"""The report's figures: made at their printed size with legible text, loss axes linear, and saved to the same
bytes every time. Each figure is built from small synthetic inputs shaped like the notebook's."""

import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pymupdf  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import gpt_helpers as H  # noqa: E402

MIN_POINTS = 8.0  # printed size: the report places each figure at its own size
MAX_WIDTH_POINTS = 6.5 * 72  # the report's text width, 16.6 cm

ORDER = " etoahsrni\nldumy,wfcgIbp:.AvkT'EONRSLC;WUHMB?G!D-FYPKVjqxzJQZX3&$"  # the corpus's 65, most frequent first
TEMPERATURES = [1.5, 1.0, 0.8, 0.5, 0.1, 0.0001]
SNIPPET = "GREMIO:\nGood mor"  # 16 characters, as in the notebook


def char_frequencies():
    return H.plot_char_frequencies([(c, 180_000 // (i + 1) ** 2 + 1) for i, c in enumerate(ORDER)])


def loss_curves():
    iters = list(range(0, 701, 50))
    train = [1.6 + 2.6 / (1 + i / 40) for i in iters]
    val = [t + 0.0003 * i for t, i in zip(train, iters)]
    return H.plot_curves({"train (fixed subset)": (iters, train), "validation (fixed subset)": (iters, val)},
                         "training iteration", "Baseline: train and validation loss over 700 iterations",
                         best=(700, val[-1]))


def architecture_curves():
    names = ["baseline", "6 blocks", "width 192", "8 heads", "block 128", "width 192, 6 heads, block 128"]
    chars = [0.1 * k for k in range(1, 11)]  # millions, as the notebook passes them
    curves = {name: (chars, [1.9 + 0.05 * j + 1.0 / k for k in range(1, 11)]) for j, name in enumerate(names)}
    return H.plot_curves(curves, "million characters seen in training", "Architectures")


def attention():
    T = len(SNIPPET)
    scores = torch.randn(4, T, T, generator=torch.Generator().manual_seed(0))
    weights = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
    return H.plot_attention(weights, SNIPPET, "Trained baseline, first block: attention weights on a line of the play")


def temperature_metrics():
    return H.plot_temperature_metrics(TEMPERATURES, {"nll": [2.8, 1.7, 1.6, 1.3, 1.1, 1.1],
                                                     "known_word_share": [0.34, 0.6, 0.71, 0.93, 0.88, 0.92],
                                                     "distinct_4gram_ratio": [0.99, 0.93, 0.85, 0.78, 0.39, 0.17]})


FIGURES = {"char_freq": char_frequencies, "baseline_loss": loss_curves, "architectures": architecture_curves,
           "attention": attention, "temperature": temperature_metrics}
ALL = pytest.mark.parametrize("name", FIGURES)


def save(name, directory):
    fig = FIGURES[name]()
    try:
        H.save_figure(fig, name, directory)
    finally:
        plt.close(fig)


def saved_pdf(name, directory):
    save(name, directory)
    return directory / f"{name}.pdf"


def text_spans(pdf_path) -> list[dict]:
    with pymupdf.open(pdf_path) as doc:
        return [span for page in doc for block in page.get_text("dict")["blocks"] for line in block.get("lines", [])
                for span in line["spans"] if span["text"].strip()]


@ALL
def test_every_text_in_the_saved_figure_prints_at_eight_points_or_more(name, tmp_path):
    spans = text_spans(saved_pdf(name, tmp_path))
    assert len(spans) >= 5, "the PDF should carry the figure's texts as text, or their sizes cannot be checked"
    small = [(span["text"], round(span["size"], 2)) for span in spans if span["size"] < MIN_POINTS - 1e-3]
    assert not small


@ALL
def test_the_saved_figure_fits_the_report_text_width(name, tmp_path):
    with pymupdf.open(saved_pdf(name, tmp_path)) as doc:
        assert doc[0].rect.width <= MAX_WIDTH_POINTS + 0.5


def test_making_the_same_figure_twice_gives_byte_identical_pdf_and_png_files(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)  # matplotlib would then date the PDF by it, not the clock
    for name in FIGURES:
        save(name, tmp_path / "first")
    time.sleep(1.1)  # a date written into the file, to the second, would now differ
    for name in FIGURES:
        save(name, tmp_path / "second")
    for name in FIGURES:
        for suffix in ("pdf", "png"):
            first, second = (tmp_path / run / f"{name}.{suffix}" for run in ("first", "second"))
            assert first.read_bytes() == second.read_bytes(), f"{name}.{suffix}"


def test_loss_axes_are_linear_and_the_one_log_axis_says_so_in_its_label():
    log_axes = []
    for name, make in FIGURES.items():
        fig = make()
        for ax in fig.axes:
            log_axes += [(name, label) for scale, label in ((ax.get_xscale(), ax.get_xlabel()),
                                                            (ax.get_yscale(), ax.get_ylabel())) if scale == "log"]
        plt.close(fig)
    assert log_axes == [("char_freq", "share of the corpus (%, log scale)")]


def test_no_axis_prints_a_scale_offset_such_as_1e6():
    for name, make in FIGURES.items():
        fig = make()
        fig.draw_without_rendering()
        assert [ax.xaxis.get_offset_text().get_text() for ax in fig.axes if ax.xaxis.get_offset_text().get_text()
                ] + [ax.yaxis.get_offset_text().get_text() for ax in fig.axes
                     if ax.yaxis.get_offset_text().get_text()] == [], name
        plt.close(fig)


def test_the_axis_labels_the_helpers_write_count_characters_not_tokens():
    labels = []
    for make in FIGURES.values():
        fig = make()
        labels += [label for ax in fig.axes for label in (ax.get_xlabel(), ax.get_ylabel())]
        plt.close(fig)
    assert any("character" in label for label in labels)
    assert [label for label in labels if "token" in label.lower()] == []


@ALL
def test_save_figure_writes_a_png_and_a_pdf_named_after_the_figure(name, tmp_path):
    save(name, tmp_path / "figures")
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [f"{name}.pdf", f"{name}.png"]
