"""Shared fixtures: the graded classes and the training loop come from the notebook's tagged cells."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))  # notebook_cells, the record tool
sys.path.insert(0, str(ROOT / "bench"))  # the fused-attention reference

from nbcode import notebook_cells  # noqa: E402

import gpt_helpers as H  # noqa: E402


@pytest.fixture(scope="session")
def nb():
    """GPTConfig, CausalSelfAttention, MLP, Block, GPT, TrainConfig, lr_factor and train, from the notebook."""
    return notebook_cells("model", "train")


@pytest.fixture(scope="session")
def corpus_text() -> str:
    """The checksummed corpus (data/input.txt, placed there beforehand or downloaded on first use)."""
    return H.load_text()


@pytest.fixture(scope="session")
def vocab(corpus_text):
    return H.Vocab(corpus_text)


@pytest.fixture(scope="session")
def splits(corpus_text, vocab):
    return H.split_ids(vocab.encode(corpus_text))


@pytest.fixture
def tiny_config(nb):
    return nb.GPTConfig(vocab_size=65, block_size=16, n_block=2, n_head=2, n_embd=32, dropout=0.0)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
