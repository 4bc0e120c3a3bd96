"""Helpers for the character-level GPT notebook: corpus, dataset, evaluation, Muon, figures, the run's record.
No model code: the graded classes live in the notebook."""

import hashlib
import importlib.util
import json
import math
import os
import sys
import urllib.request
from contextlib import contextmanager, nullcontext
from pathlib import Path

import matplotlib
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


# --------------------------------------------------------------------------- the machine and training support

def choose_profile(requested: str, profiles, on_record, device: torch.device, capability=None) -> tuple[str, str]:
    """(profile, why) for PROFILE = `requested`. "auto" picks "gpu" on a CUDA GPU with bf16 tensor cores (compute
    capability 8.0 or later) when the notebook carries a gpu run on record to compare with, and "cpu" elsewhere."""
    if requested != "auto":
        if requested not in profiles:
            raise ValueError(f"PROFILE={requested!r} is not one of {['auto', *profiles]}: set one of them in the "
                             "parameters cell")
        return requested, "set in the parameters cell"
    if device.type != "cuda":
        return "cpu", f"no CUDA GPU here ({device.type}); the cpu profile runs on any device"
    major, minor = capability or torch.cuda.get_device_capability(device)
    if (major, minor) < (8, 0):
        return "cpu", f"this GPU has compute capability {major}.{minor}, below the 8.0 that bf16 tensor cores need"
    if "gpu" not in on_record:
        return "cpu", "the notebook carries no gpu run on record to compare with yet"
    return "gpu", f"a CUDA GPU with bf16 tensor cores (compute capability {major}.{minor})"


def profile_settings(profile: str, device: torch.device, capability=None, system: str = sys.platform):
    """(precision, compile) of a profile: float32 and eager for every profile but `gpu`, on any device. `gpu` needs
    bf16 tensor cores (compute capability 8.0 or later) and compiles where Triton runs (Linux)."""
    if profile != "gpu":
        return "fp32", False
    if device.type != "cuda":
        raise ValueError(f"PROFILE='gpu' needs a CUDA GPU, this machine runs on {device.type}: use PROFILE='cpu'")
    major, minor = capability or torch.cuda.get_device_capability(device)
    if (major, minor) < (8, 0):
        raise ValueError(f"PROFILE='gpu' needs bf16 tensor cores (compute capability 8.0 or later), this GPU has "
                         f"{major}.{minor}: use PROFILE='cpu'")
    return "bf16", system.startswith("linux") and importlib.util.find_spec("triton") is not None


def autocast(device: torch.device, precision: str):
    """bf16 autocast for "bf16" (the weights stay float32); nothing for "fp32"."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA and MPS run asynchronously), so that a host clock times it."""
    {"cuda": torch.cuda.synchronize, "mps": lambda: torch.mps.synchronize()}.get(device.type, lambda: None)()


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
def evaluate(model: torch.nn.Module, windows, precision: str = "fp32", batch_size: int = 64) -> float:
    """Mean cross-entropy (nats per character) over every target of `windows` (from eval_windows), in eval mode.
    Each batch sums in float32 on the device (Apple's MPS has no float64); the host adds the sums."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in windows:
        for i in range(0, len(x), batch_size):
            with autocast(x.device, precision):
                logits = model(x[i : i + batch_size])
            total += F.cross_entropy(logits.float().flatten(0, 1), y[i : i + batch_size].flatten(),
                                     reduction="sum").item()
            count += y[i : i + batch_size].numel()
    model.train(was_training)
    return total / count


def training_memory_mb(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str = "fp32") -> float:
    """Memory of one AdamW step on (x, y), counted from its tensors (the same on every device): weights, gradients and
    AdamW's two moments (4 copies of the parameters), plus the activations saved for the backward pass."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}  # storage address -> bytes: a storage saved twice counts once

    def keep(t):
        if t.untyped_storage().data_ptr() not in weights:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t), autocast(x.device, precision):
        F.cross_entropy(model(x).float().flatten(0, 1), y.flatten())
    return (4 * sum(p.numel() * p.element_size() for p in model.parameters()) + sum(saved.values())) / 2**20


class _NotebookLine:
    """Where a progress bar draws in a notebook: one display output, replaced at every redraw, so that the saved
    notebook holds the bar's last state instead of a trail of carriage returns."""

    encoding = "utf-8"  # tqdm draws its bar with Unicode blocks

    def __init__(self):
        self.handle = sys.modules["IPython"].display.display({"text/plain": ""}, raw=True, display_id=True)

    def write(self, s: str) -> None:
        if s.strip():
            self.handle.update({"text/plain": s.strip("\r\n")}, raw=True)

    def flush(self) -> None:
        pass


def progress(total: int, desc: str):
    """A tqdm bar with the time left and the loop's postfix; in a notebook on one output line, else on stderr."""
    from tqdm import tqdm  # imported here: only training needs it

    shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
    return tqdm(total=total, desc=desc, file=_NotebookLine() if hasattr(shell, "kernel") else sys.stderr, ncols=100,
                mininterval=1.0, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} "
                "[{elapsed} elapsed, {remaining} left{postfix}]")


# --------------------------------------------------------------------------- Muon (our extra in (f))

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # torch.optim.Muon's quintic Newton-Schulz iteration (Keller Jordan)


def newton_schulz(G: torch.Tensor, steps: int = 5, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """About U V^T for every matrix U S V^T of G (n, rows, cols), computed in `dtype`."""
    a, b, c = NS_COEFFICIENTS
    tall = G.size(-2) > G.size(-1)
    X = G.to(dtype).mT if tall else G.to(dtype)  # iterate on the smaller Gram matrix X X^T
    X = X / X.norm(dim=(-2, -1), keepdim=True).clamp(min=1e-7)  # Frobenius norm 1: every singular value <= 1
    for _ in range(steps):
        A = X @ X.mT
        X = torch.baddbmm(X, torch.baddbmm(A, A, A, beta=b, alpha=c), X, beta=a)  # a X + (b A + c A^2) X
    return X.mT if tall else X


class Muon(torch.optim.Optimizer):
    """One optimiser: Muon for the parameter groups marked `use_muon` (2-D matrices), AdamW for the others. Muon's
    update is torch.optim.Muon's (Nesterov momentum, 5 Newton-Schulz steps, the rate scaled by sqrt(max(1, rows/cols)),
    decoupled weight decay), with the matrices of one shape orthogonalised together in `ns_dtype`."""

    def __init__(self, groups, lr: float = 1e-3, betas=(0.9, 0.99), eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.95, ns_dtype: torch.dtype = torch.float32):
        super().__init__(groups, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      use_muon=False))
        self.ns_dtype = ns_dtype
        if bad := [tuple(p.shape) for g in self.param_groups if g["use_muon"] for p in g["params"] if p.dim() != 2]:
            raise ValueError(f"Muon takes 2-D weight matrices only, got a parameter of shape {bad[0]}; put biases, "
                             "gains and embeddings in a group without use_muon (AdamW)")

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            (self._muon if group["use_muon"] else self._adamw)(group, params)

    def _adamw(self, group, params):
        (beta1, beta2), lr = group["betas"], group["lr"]
        for p in params:
            state = self.state[p]
            if not state:
                state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            state["step"] += 1
            p.mul_(1 - lr * group["weight_decay"])
            state["exp_avg"].lerp_(p.grad, 1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2 ** state["step"])).add_(group["eps"])
            p.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - beta1 ** state["step"]))

    def _muon(self, group, params):
        lr, m = group["lr"], group["momentum"]
        stacks = {}  # (short side, long side) -> [(parameter, its update, wide)]
        for p in params:
            buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
            buf.lerp_(p.grad, 1 - m)  # buf = m buf + (1 - m) g
            update = p.grad.lerp(buf, m)  # Nesterov: (1 - m) g + m buf
            wide = p.size(0) <= p.size(1)
            stacks.setdefault(tuple(sorted(p.shape)), []).append((p, update if wide else update.mT, wide))
        for entries in stacks.values():
            ps, updates, wides = zip(*entries)
            ortho = newton_schulz(torch.stack(updates), dtype=self.ns_dtype).to(ps[0].dtype)
            for p, o, wide in zip(ps, ortho.unbind(0), wides):
                p.mul_(1 - lr * group["weight_decay"])
                p.add_(o if wide else o.mT, alpha=-lr * math.sqrt(max(1, p.size(0) / p.size(1))))


def muon_groups(model: torch.nn.Module, learning_rate: float, muon_lr: float, weight_decay: float) -> list[dict]:
    """Muon for the 2-D weight matrices inside the blocks; AdamW for the rest, as GPT.get_optimizer groups it
    (weight decay on the embeddings and the tied head, none on gains and biases)."""
    named = dict(model.named_parameters())  # the tied embedding and head appear once
    matrices = [p for n, p in named.items() if ".blocks." in f".{n}" and p.dim() == 2]
    rest = [p for p in named.values() if all(p is not q for q in matrices)]
    return [dict(params=matrices, lr=muon_lr, weight_decay=0.0, use_muon=True),
            dict(params=[p for p in rest if p.dim() >= 2], lr=learning_rate, weight_decay=weight_decay),
            dict(params=[p for p in rest if p.dim() < 2], lr=learning_rate, weight_decay=0.0)]


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
# Applied inside each plotting function only (figure_style), so a user's other plots keep their settings. The figures
# are made at their printed size, so these are printed points: nothing smaller than 8.
FIGURE_STYLE = {"font.size": 9, "axes.titlesize": 10, "figure.titlesize": 10, "axes.labelsize": 9,
                "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8}


@contextmanager
def figure_style():
    """FIGURE_STYLE for the figures made inside, the settings as before afterwards, but for interactive mode: the
    first figure of a Jupyter session switches it on, and undoing that would keep every later figure from showing."""
    with plt.rc_context(FIGURE_STYLE):
        yield
        interactive = matplotlib.is_interactive()
    matplotlib.interactive(interactive)


def save_figure(fig, name: str, profile: str, directory) -> None:
    """Save `fig` as <directory>/<name>_<profile>.png (notebook, README) and .pdf (report), at the figure's own size,
    and the same bytes each time: no creation date in the PDF (the PNG carries none), and the layout fixed first."""
    if fig.get_layout_engine() is not None:
        for _ in range(5):  # constrained layout moves the axes a little less at each draw, never quite settling
            fig.draw_without_rendering()
        fig.set_layout_engine("none")  # keep this layout: every later draw, and so every save, is then the same
    Path(directory).mkdir(parents=True, exist_ok=True)
    for suffix, metadata in (("png", {}), ("pdf", {"CreationDate": None})):
        fig.savefig(Path(directory) / f"{name}_{profile}.{suffix}", dpi=150, metadata=metadata)


CHAR_LABELS = {"\n": "\\n", " ": "␣"}  # how a figure shows the invisible characters


def plot_char_frequencies(counts: list[tuple[str, int]]):
    """Share of each character, most frequent first (log scale: the rare ones stay visible)."""
    chars, n = zip(*counts)
    labels = [CHAR_LABELS.get(c, c) for c in chars]
    with figure_style():
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


LOSS_TICKS = (1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.4, 2.6, 2.8, 3.0, 3.2, 3.5, 4.0, 4.5)  # + every 0.1 near the lowest

def plot_curves(curves: dict, xlabel: str, title: str, best: tuple | None = None, figsize=(FIGURE_WIDTH, 3.6)):
    """Loss curves {label: (x, y)} on a log axis labelled every 0.1 nats near the lowest loss; `best`: (x, y)."""
    with figure_style():
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        for label, (x, y) in curves.items():
            ax.plot(x, y, marker="o", markersize=2.5, label=label)
        if best is not None:
            ax.scatter(*best, color="black", zorder=3, label=f"lowest validation loss {best[1]:.4f} (fixed subset)")
        lowest = min(min(y) for _, y in curves.values())
        low, high = 0.97 * lowest, 1.03 * max(max(y) for _, y in curves.values())
        fine = [round(0.1 * k, 1) for k in range(math.ceil(10 * low), math.floor(10 * lowest) + 6)]  # every 0.1 nats
        ticks = sorted({t for t in (*LOSS_TICKS, *fine) if low <= t <= high})
        ax.set(yscale="log", ylim=(low, high), xlabel=xlabel, ylabel="cross-entropy (nats per character,\nlog scale)",
               title=title)
        ax.set_yticks(ticks, [f"{t:.1f}" for t in ticks], minor=False), ax.minorticks_off(), ax.grid(True, alpha=0.3)
        ax.legend()
    return fig


def plot_attention(weights: torch.Tensor, text: str, title: str):
    """One panel per head of attention weights (n_head, T, T) on `text`, queries down, keys across, one colour bar.
    At most 6.5 inches wide with 8-point labels, so that it prints at its own size on a report page."""
    n_head, T = weights.shape[0], weights.shape[-1]
    cols = 2 if n_head % 2 == 0 else 1
    labels = [CHAR_LABELS.get(c, c) for c in text]
    with figure_style():
        fig, axes = plt.subplots(n_head // cols, cols, figsize=(FIGURE_WIDTH, 3.1 * n_head // cols), squeeze=False,
                                 sharex=True, sharey=True, layout="constrained")
        for h, ax in enumerate(axes.flat):
            image = ax.imshow(weights[h].float().cpu().tolist(), cmap="Blues", vmin=0, vmax=1)
            ax.set_title(f"head {h}")
            ax.set_xticks(range(T), labels, family="monospace")
            ax.set_yticks(range(T), labels, family="monospace")
        for ax in axes[-1]:
            ax.set_xlabel("key: the character attended to")
        for ax in axes[:, 0]:
            ax.set_ylabel("query: predicts what follows it")
        fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
        fig.suptitle(title)
    return fig


def plot_temperature_metrics(temperatures: list[float], metrics: dict[str, list[float]]):
    """One panel per metric, the temperature on a categorical axis (its values are not evenly spaced)."""
    labels = {"nll": "NLL under the model\n(nats/char)", "known_word_share": "share of words that\noccur in training",
              "distinct_4gram_ratio": "distinct 4-grams\n(1 = no repetition)"}
    with figure_style():
        fig, axes = plt.subplots(1, len(metrics), figsize=(FIGURE_WIDTH, 2.6), squeeze=False, layout="constrained")
        for ax, (key, values) in zip(axes.flat, metrics.items()):
            ax.plot(range(len(temperatures)), values, "o")
            ax.set_xticks(range(len(temperatures)), [str(t) for t in temperatures], rotation=40, ha="right",
                          rotation_mode="anchor")  # slanted: "0.0001" is wider than the room under one point
            ax.set(xlabel="temperature τ", ylabel=labels.get(key, key))
            ax.grid(True, alpha=0.3)
        fig.suptitle("The samples at each temperature")
    return fig


# --------------------------------------------------------------------------- the run's record

def write_json(path, data) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
