"""Shared fixtures: the model and training code are loaded from the notebook's tagged cells."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # the shared fused-attention reference

import gpt_helpers as H  # noqa: E402


@pytest.fixture(scope="session")
def nb():
    """The graded classes and the training loop, straight from the notebook."""
    return H.notebook_cells("model", "train")


@pytest.fixture(scope="session")
def corpus_text() -> str:
    """The verified corpus (downloaded to data/input.txt on first use, or placed there beforehand)."""
    return H.load_text()


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
