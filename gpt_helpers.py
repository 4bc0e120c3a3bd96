"""Helpers for the character-level GPT notebook: corpus, dataset, evaluation, Muon, figures. No model code."""

import hashlib
import math
import os
import urllib.request
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.data import Dataset

DATA_PATH = Path(__file__).resolve().parent / "data" / "input.txt"
CORPUS_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
CORPUS_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
CORPUS_ENV = "TINYSHAKESPEARE_PATH"  # points at another copy of the corpus


# --------------------------------------------------------------------------- corpus, vocabulary and dataset

def download_corpus(dest: Path = DATA_PATH, url: str = CORPUS_URL, sha256: str = CORPUS_SHA256) -> Path:
    """Download the corpus to `dest`; the file appears there only once its checksum is verified."""
    dest, part = Path(dest), Path(f"{dest}.part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            part.write_bytes(response.read())
    except OSError as err:  # no network, or no such file
        raise RuntimeError(f"could not download the corpus from {url} ({err}). Without internet, copy tiny shakespeare "
                           f"(SHA-256 {sha256}) to {dest} by hand, or set {CORPUS_ENV} to its path") from err
    if (got := hashlib.sha256(part.read_bytes()).hexdigest()) != sha256:
        part.unlink()
        raise ValueError(f"the file downloaded from {url} has SHA-256 {got}, expected {sha256}; nothing was written "
                         f"to {dest}. Retry, or place a correct copy there by hand")
    os.replace(part, dest)
    return dest


def load_text(path: Path | None = None) -> str:
    """The checksummed corpus, from `path`, ${TINYSHAKESPEARE_PATH} or data/input.txt (downloaded when missing)."""
    path = Path(path or os.environ.get(CORPUS_ENV) or DATA_PATH)
    if not path.exists() and path != DATA_PATH:
        raise FileNotFoundError(f"{path} does not exist: point {CORPUS_ENV} at a copy of the corpus, or unset it to "
                                f"download the corpus to {DATA_PATH}")
    data = (path if path.exists() else download_corpus(path)).read_bytes()
    if (got := hashlib.sha256(data).hexdigest()) != CORPUS_SHA256:
        raise ValueError(f"{path} has SHA-256 {got}, expected {CORPUS_SHA256} (tiny shakespeare): delete it to "
                         "download it again, or replace it with the right file")
    return data.decode("utf-8")


class Vocab:
    """The sorted distinct characters of a text; character i has id i."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> torch.Tensor:
        """int64 ids of `s`; characters outside the vocabulary are a ValueError that names them."""
        if unknown := sorted(set(s) - set(self.stoi)):
            raise ValueError(f"characters {unknown} are not in the vocabulary of {len(self)} characters; use only "
                             "characters that occur in the training text")
        return torch.tensor([self.stoi[c] for c in s], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids))


def split_ids(ids: torch.Tensor, train_fraction: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """Contiguous split: the first `train_fraction` of the text for training, the rest for validation."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction}")
    n = int(train_fraction * len(ids))
    return ids[:n], ids[n:]


class CharDataset(Dataset):
    """Item i is (x, y): `block_size` ids from position i, and the same window one character later (the targets)."""

    def __init__(self, ids: torch.Tensor, block_size: int):
        if not 1 <= block_size < len(ids):
            raise ValueError(f"block_size must lie in [1, {len(ids) - 1}] for {len(ids)} ids, got {block_size}")
        self.ids, self.block_size = ids, block_size

    def __len__(self) -> int:
        return len(self.ids) - self.block_size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        chunk = self.ids[i : i + self.block_size + 1]
        return chunk[:-1], chunk[1:]


# --------------------------------------------------------------------------- evaluation

def eval_windows(ids: torch.Tensor, block_size: int, n_tokens: int | None = None) -> list[tuple[torch.Tensor, ...]]:
    """Non-overlapping (x, y) windows in which every position of `ids` after the first is a target once: the full
    windows as (n, block_size) tensors, then the shorter rest. With `n_tokens`: only evenly spaced full windows
    holding about that many targets, a fixed subset (the same at every evaluation)."""
    n_full = (len(ids) - 1) // block_size
    starts = torch.arange(n_full) * block_size
    if n_tokens is not None and n_tokens < n_full * block_size:
        starts = starts[torch.linspace(0, n_full - 1, max(1, n_tokens // block_size)).round().long()]
    chunks = ids[(starts[:, None] + torch.arange(block_size + 1)).to(ids.device)]
    rest = ids[n_full * block_size :]
    full_split = n_tokens is None and len(rest) > 1
    return [(chunks[:, :-1], chunks[:, 1:])] + ([(rest[None, :-1], rest[None, 1:])] if full_split else [])


@torch.no_grad()
def evaluate(model: torch.nn.Module, windows, batch_size: int = 64) -> float:
    """Mean cross-entropy (nats per character) over every target of `windows` (from eval_windows), in eval mode.
    Each batch sums in float32 on the device (Apple's MPS has no float64); the host adds the sums."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in windows:
        for i in range(0, len(x), batch_size):
            logits = model(x[i : i + batch_size])
            total += F.cross_entropy(logits.flatten(0, 1), y[i : i + batch_size].flatten(), reduction="sum").item()
            count += y[i : i + batch_size].numel()
    model.train(was_training)
    return total / count


# --------------------------------------------------------------------------- Muon (our extra in (f))

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # torch.optim.Muon's quintic Newton-Schulz iteration (Keller Jordan)


def newton_schulz(G: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """About U V^T for every matrix U S V^T of G (n, rows, cols)."""
    a, b, c = NS_COEFFICIENTS
    tall = G.size(-2) > G.size(-1)
    X = G.mT if tall else G  # iterate on the smaller Gram matrix X X^T
    X = X / X.norm(dim=(-2, -1), keepdim=True).clamp(min=1e-7)  # Frobenius norm 1: every singular value <= 1
    for _ in range(steps):
        A = X @ X.mT
        X = torch.baddbmm(X, torch.baddbmm(A, A, A, beta=b, alpha=c), X, beta=a)  # a X + (b A + c A^2) X
    return X.mT if tall else X


class Muon(torch.optim.Optimizer):
    """Muon for 2-D weight matrices: torch.optim.Muon's update (Nesterov momentum, 5 Newton-Schulz steps, the rate
    scaled by sqrt(max(1, rows/cols))) in float32, with the matrices of one shape orthogonalised together."""

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95):
        super().__init__(params, dict(lr=lr, momentum=momentum))
        if bad := [tuple(p.shape) for g in self.param_groups for p in g["params"] if p.dim() != 2]:
            raise ValueError(f"Muon takes 2-D weight matrices only, got a parameter of shape {bad[0]}; give biases, "
                             "gains and embeddings to AdamW (MuonAdamW does)")

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, m = group["lr"], group["momentum"]
            stacks = {}  # (short side, long side) -> [(parameter, its update, wide)]
            for p in (p for p in group["params"] if p.grad is not None):
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.lerp_(p.grad, 1 - m)  # buf = m buf + (1 - m) g
                update = p.grad.lerp(buf, m)  # Nesterov: (1 - m) g + m buf
                wide = p.size(0) <= p.size(1)
                stacks.setdefault(tuple(sorted(p.shape)), []).append((p, update if wide else update.mT, wide))
            for entries in stacks.values():
                ps, updates, wides = zip(*entries)
                for p, o, wide in zip(ps, newton_schulz(torch.stack(updates)).unbind(0), wides):
                    p.add_(o if wide else o.mT, alpha=-lr * math.sqrt(max(1, p.size(0) / p.size(1))))


class MuonAdamW:
    """One optimiser for the training loop: Muon for the 2-D weight matrices inside the blocks (no weight decay),
    torch's AdamW for the rest, grouped as GPT.get_optimizer groups it (decay on the embeddings and the tied head,
    none on gains and biases). `param_groups` lists both, so a schedule sets every group's rate."""

    def __init__(self, model: torch.nn.Module, learning_rate: float, muon_lr: float, weight_decay: float, betas):
        named = dict(model.named_parameters())  # the tied embedding and head appear once
        matrices = [p for n, p in named.items() if ".blocks." in f".{n}" and p.dim() == 2]
        rest = [p for p in named.values() if all(p is not q for q in matrices)]
        self.muon = Muon(matrices, lr=muon_lr)
        self.adamw = torch.optim.AdamW([dict(params=[p for p in rest if p.dim() >= 2], weight_decay=weight_decay),
                                        dict(params=[p for p in rest if p.dim() < 2], weight_decay=0.0)],
                                       lr=learning_rate, betas=betas)
        self.param_groups = self.muon.param_groups + self.adamw.param_groups

    def step(self) -> None:
        self.muon.step()
        self.adamw.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none)
        self.adamw.zero_grad(set_to_none)


# --------------------------------------------------------------------------- looking inside the model

class RecordSoftmax(TorchFunctionMode):
    """Inside `with RecordSoftmax() as seen:`, seen.outputs lists every softmax computed, in order: run through a
    GPT, the attention weights of each layer, (B, n_head, T, T), observed without changing a line of the model."""

    def __init__(self):
        super().__init__()
        self.outputs = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in (F.softmax, torch.softmax, torch.Tensor.softmax):
            self.outputs.append(out.detach())
        return out


class NoCausalMask(TorchFunctionMode):
    """Inside `with NoCausalMask():`, torch.tril returns a matrix of ones: an attention layer that builds its causal
    mask with torch.tril then masks nothing, and every position sees the whole window (the experiment in (f))."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.tril:
            return torch.ones_like(args[0])
        return func(*args, **(kwargs or {}))


# --------------------------------------------------------------------------- figures

FIGURE_WIDTH = 6.5  # inches: the report places each figure at its own size on a text width of 16.6 cm
# The figures are made at their printed size, so these are printed points: nothing smaller than 8.
plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "figure.titlesize": 10, "axes.labelsize": 9,
                     "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8})


def save_figure(fig, name: str, directory) -> None:
    """Save `fig` as <directory>/<name>.png (notebook, README) and .pdf (report), at the figure's own size; the PDF
    without a creation date, so that the same figure gives the same bytes."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(directory) / f"{name}.png", dpi=150)
    fig.savefig(Path(directory) / f"{name}.pdf", metadata={"CreationDate": None})


CHAR_LABELS = {"\n": "\\n", " ": "␣"}  # how a figure shows the invisible characters


def plot_char_frequencies(counts: list[tuple[str, int]]):
    """Share of each character, most frequent first (log scale: the rare ones stay visible)."""
    chars, n = zip(*counts)
    labels = [CHAR_LABELS.get(c, c) for c in chars]
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, 3.0), layout="constrained")
    ax.bar(range(len(chars)), [100 * k / sum(n) for k in n])
    # every other label one line lower: 8-point characters need more room than one bar's width
    ax.set_xticks(range(len(chars)), [("\n" if i % 2 else "") + label for i, label in enumerate(labels)],
                  family="monospace")
    ax.set(xlabel="character (␣ = space, \\n = newline), most frequent first",
           ylabel="share of the corpus (%, log scale)", yscale="log",
           title=f"The {len(chars)} distinct characters of the corpus")
    ax.yaxis.set_major_formatter("{x:g}")  # 0.01 rather than 10⁻², whose exponent would print at 5.6 points
    ax.yaxis.set_minor_formatter(plt.NullFormatter())
    return fig


def plot_curves(curves: dict, xlabel: str, title: str, best: tuple | None = None, figsize=(FIGURE_WIDTH, 3.6)):
    """Loss curves {label: (x, y)} on a linear axis; `best`: the (x, y) point to mark."""
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    for label, (x, y) in curves.items():
        ax.plot(x, y, marker="o", markersize=2.5, label=label)
    if best is not None:
        ax.scatter(*best, color="black", zorder=3, label=f"lowest validation loss {best[1]:.3f} (fixed subset)")
    ax.set(xlabel=xlabel, ylabel="cross-entropy (nats per character)", title=title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


def plot_run(run: dict, title: str):
    """A run's training and validation loss on its fixed subsets, its lowest validation loss marked."""
    h = run["history"]
    return plot_curves({"train (fixed subset)": (h["iter"], h["train_loss"]),
                        "validation (fixed subset)": (h["iter"], h["val_loss"])}, "training iteration", title,
                       best=(run["best_iter"], min(h["val_loss"])))


def plot_attention(weights: torch.Tensor, text: str, title: str):
    """One panel per head of attention weights (n_head, T, T) on `text`, queries down, keys across, one colour bar
    from 0 to 0.5 (the first queries see one or two characters: weights near 1 would pale the rest). At most 6.5
    inches wide with 8-point labels, so that it prints at its own size on a report page."""
    n_head, T = weights.shape[0], weights.shape[-1]
    cols = 2 if n_head % 2 == 0 else 1
    labels = [CHAR_LABELS.get(c, c) for c in text]
    fig, axes = plt.subplots(n_head // cols, cols, figsize=(FIGURE_WIDTH, 3.1 * n_head // cols), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    for h, ax in enumerate(axes.flat):
        image = ax.imshow(weights[h].float().cpu().tolist(), cmap="Blues", vmin=0, vmax=0.5)
        ax.set_title(f"head {h}")
        ax.set_xticks(range(T), labels, family="monospace")
        ax.set_yticks(range(T), labels, family="monospace")
    fig.supxlabel("key: the character attended to", fontsize=9)
    fig.supylabel("query: the character whose next one is predicted", fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.6, extend="max", label="attention weight (0.5 and above: darkest)")
    fig.suptitle(title)
    return fig


def plot_temperature_metrics(temperatures: list[float], metrics: dict[str, list[float]]):
    """One panel per metric, the temperature on a categorical axis (its values are not evenly spaced)."""
    labels = {"nll": "NLL under the model\n(nats/char)", "known_word_share": "share of words that\noccur in training",
              "distinct_4gram_ratio": "distinct 4-grams\n(1 = no repetition)"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(FIGURE_WIDTH, 2.6), squeeze=False, layout="constrained")
    for ax, (key, values) in zip(axes.flat, metrics.items()):
        ax.plot(range(len(temperatures)), values, "o")
        ax.set_xticks(range(len(temperatures)), [str(t) for t in temperatures], rotation=40, ha="right",
                      rotation_mode="anchor")  # slanted: "0.0001" is wider than the room under one point
        ax.set(xlabel="temperature τ", ylabel=labels.get(key, key))
        ax.grid(True, alpha=0.3)
    fig.suptitle("The samples at each temperature")
    return fig

