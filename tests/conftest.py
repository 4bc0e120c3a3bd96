"""Shared fixtures: the model and training code are loaded from the notebook's tagged cells."""

import shutil
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
sys.path.insert(0, str(ROOT))

import gpt_helpers as H  # noqa: E402


@pytest.fixture(scope="session")
def nb():
    """The graded classes and the training loop, straight from the notebook."""
    return H.notebook_cells("model", "train")


@pytest.fixture(scope="session")
def corpus_text() -> str:
    """The verified corpus; the shared copy is placed in data/input.txt when that is missing (no internet here)."""
    if not H.DATA_PATH.exists() and SHARED_CORPUS.exists():
        H.DATA_PATH.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED_CORPUS, H.DATA_PATH)
    return H.load_text(H.DATA_PATH)


@pytest.fixture(scope="session")
def vocab(corpus_text):
    return H.Vocab(corpus_text)


@pytest.fixture(scope="session")
def splits(corpus_text, vocab):
    return H.split_ids(vocab.encode(corpus_text))


@pytest.fixture
def tiny_config(nb):
    return nb.GPTConfig(block_size=16, vocab_size=65, n_layer=2, n_head=2, n_embd=32)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
