"""The corpus, vocabulary, split and datasets (gpt_helpers)."""

import hashlib

import pytest
import torch
from torch.utils.data import DataLoader

import gpt_helpers as H


def test_corpus_has_the_documented_size_vocabulary_and_checksum(corpus_text):
    assert len(corpus_text) == 1_115_394
    assert len(set(corpus_text)) == 65
    assert hashlib.sha256(H.DATA_PATH.read_bytes()).hexdigest() == H.CORPUS_SHA256


def test_download_verifies_the_checksum_and_moves_the_file_into_place(tmp_path):
    src = tmp_path / "source.txt"
    src.write_text("to be or not to be\n")
    dest = tmp_path / "data" / "input.txt"
    H.download_corpus(dest, url=src.as_uri(), sha256=hashlib.sha256(src.read_bytes()).hexdigest())
    assert dest.read_text() == "to be or not to be\n"
    assert list(dest.parent.iterdir()) == [dest]  # no temporary file left behind


def test_download_with_a_wrong_checksum_is_rejected_and_leaves_no_file(tmp_path):
    src = tmp_path / "source.txt"
    src.write_text("not shakespeare")
    dest = tmp_path / "data" / "input.txt"
    with pytest.raises(ValueError, match="SHA-256"):
        H.download_corpus(dest, url=src.as_uri())
    assert list(dest.parent.iterdir()) == []


def test_offline_download_says_how_to_place_the_file_by_hand(tmp_path):
    dest = tmp_path / "input.txt"
    with pytest.raises(RuntimeError, match="by hand"):
        H.download_corpus(dest, url=(tmp_path / "missing.txt").as_uri())
    assert not dest.exists()


def test_load_text_refuses_a_corrupted_corpus(tmp_path):
    bad = tmp_path / "input.txt"
    bad.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n")
    with pytest.raises(ValueError, match="expected 86c4e6aa"):
        H.load_text(bad)
    assert bad.exists()  # the user's file is reported, never deleted


def test_environment_variable_points_at_another_copy(monkeypatch, corpus_text, tmp_path):
    copy = tmp_path / "shakespeare.txt"
    copy.write_text(corpus_text, encoding="utf-8")
    monkeypatch.setenv(H.CORPUS_ENV, str(copy))
    assert H.load_text() == corpus_text
    monkeypatch.setenv(H.CORPUS_ENV, str(tmp_path / "nowhere.txt"))
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        H.load_text()


def test_vocabulary_is_sorted_and_decode_inverts_encode(corpus_text, vocab):
    assert vocab.chars == sorted(set(corpus_text))
    s = corpus_text[10_000:12_000]
    ids = vocab.encode(s)
    assert ids.dtype == torch.int64
    assert vocab.decode(ids) == s


def test_encoding_an_unknown_character_names_it(vocab):
    with pytest.raises(ValueError, match="'é'"):
        vocab.encode("café")


def test_split_is_contiguous_ninety_ten(splits, corpus_text, vocab):
    train, val = splits
    assert len(train) == int(0.9 * len(corpus_text)) == 1_003_854
    assert len(train) + len(val) == len(corpus_text)
    assert vocab.decode(val[:50]) == corpus_text[1_003_854 : 1_003_854 + 50]


def test_item_is_a_window_and_the_same_window_one_character_later(splits):
    train, _ = splits
    ds = H.CharDataset(train, block_size=8)
    assert len(ds) == len(train) - 8
    x, y = ds[123]
    assert x.tolist() == train[123:131].tolist()
    assert y.tolist() == train[124:132].tolist()
    assert x.dtype == y.dtype == torch.int64
    for bad in (len(ds), -1):
        with pytest.raises(IndexError, match=f"index {bad} out of range"):
            ds[bad]


def test_dataloader_batches_equal_stacked_items(splits):
    train, _ = splits
    ds = H.CharDataset(train, block_size=32)
    starts = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:5]
    x, y = next(iter(DataLoader(ds, batch_size=5, sampler=starts.tolist())))
    assert x.shape == y.shape == (5, 32)
    assert torch.equal(x, torch.stack([ds[int(i)][0] for i in starts]))
    assert torch.equal(y, torch.stack([ds[int(i)][1] for i in starts]))


def test_block_size_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="block_size"):
        H.CharDataset(torch.arange(10), block_size=10)


@pytest.mark.parametrize("n, block_size", [(100, 7), (101, 10), (11, 10), (12, 10)])
def test_eval_windows_predict_every_position_exactly_once(n, block_size):
    ids = torch.arange(n)
    targets = []
    for x, y in H.eval_windows(ids, block_size):
        assert torch.equal(y[:, :-1], x[:, 1:])  # y is x shifted left
        assert torch.equal(y - x, torch.ones_like(x))  # next id, since ids are 0..n-1
        targets += y.flatten().tolist()
    assert sorted(targets) == list(range(1, n))


def test_eval_windows_subset_is_evenly_spread_and_sized():
    (x, y), = H.eval_windows(torch.arange(10_000), 10, n_tokens=1_000)
    assert x.shape == (100, 10)
    assert x[0, 0] == 0 and x[-1, 0] == 9_980  # first and last full window
    assert len(set(x[:, 0].tolist())) == 100
