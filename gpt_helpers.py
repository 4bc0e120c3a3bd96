"""Everything in the character-level GPT notebook that is not the lesson (no model code lives here).

Sections, in the order the notebook first needs them (the figures, needed throughout, stand together near the end):
- the machine: which device, profile and precision to use, the machine's name and bf16 flags, the code's commit;
- files: atomic writes (a reader never sees a half-written file) and JSON;
- corpus and vocabulary: download, checksum, characters <-> ids, train/val split, character counts;
- dataset: `CharDataset`, (context, next-character) pairs for a `DataLoader`, batched without per-item Python;
- observing a layer: a forward hook that records what a module returns (the attention weights in (b) and (f));
- training support: exact evaluation, the Muon optimiser and the optimiser groups, numerics, a progress bar,
  the run's state, checkpoints that refuse another run or other code, and the record a run reports;
- analysis: how a run ended, optimisers at equal time, what attention heads look at, text statistics of samples;
- figures: one function per report figure, saved as PNG (notebook, README) and PDF (report);
- reproduction: the compact record of a run a hand-in carries, and the table that compares a re-run with it;
- notebook loading: `notebook_cells` runs the notebook's tagged cells as a module for the tests and benchmarks.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import types
import urllib.error
import urllib.request
import warnings
from collections import Counter
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.ticker import FormatStrFormatter
from torch.utils.data import Dataset

ROOT = Path(__file__).resolve().parent
DATA_PATH = ROOT / "data" / "input.txt"
CORPUS_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
CORPUS_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
CORPUS_ENV = "TINYSHAKESPEARE_PATH"  # points at another copy of the corpus


# --------------------------------------------------------------------------- the machine

GPU_MIN_CAPABILITY = (8, 0)  # bf16 tensor cores (Ampere and later); older GPUs only emulate bf16, slowly
GPU_MIN_MEMORY_GB = 32  # a data-centre GPU: the gpu profile's larger model and budget assume one
CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}  # CPU instructions that multiply bf16 natively
PRECISIONS = ("auto", "fp32", "bf16")


def pick_device() -> torch.device:
    """CUDA if there is a GPU, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def choose_profile(requested: str, device: torch.device, profiles, gpu=None) -> tuple[str, str]:
    """(profile, why): `requested` itself, or for "auto" the largest profile this machine finishes in its budget.

    `gpu` holds the CUDA device's properties (name, major, minor, total_memory in bytes); by default they are read
    from the device. "gpu" needs bf16 tensor cores and enough memory; any other GPU runs "cpu", on the GPU.
    """
    if requested != "auto":
        if requested not in profiles:
            raise ValueError(f"PROFILE={requested!r} is not one of {sorted(profiles)} or 'auto'")
        return requested, "chosen by hand"
    if device.type != "cuda":
        return "cpu", f"no CUDA GPU ({device.type})"
    gpu = gpu if gpu is not None else torch.cuda.get_device_properties(device)
    capability, memory_gb = (gpu.major, gpu.minor), gpu.total_memory / 1e9
    if capability < GPU_MIN_CAPABILITY:
        return "cpu", (f"{gpu.name} has compute capability {gpu.major}.{gpu.minor}, no bf16 tensor cores "
                       f"(the gpu profile needs {GPU_MIN_CAPABILITY[0]}.{GPU_MIN_CAPABILITY[1]})")
    if memory_gb < GPU_MIN_MEMORY_GB:
        return "cpu", f"{gpu.name} has {memory_gb:.0f} GB, the gpu profile needs {GPU_MIN_MEMORY_GB} GB"
    return "gpu", f"{gpu.name}: bf16 tensor cores and {memory_gb:.0f} GB"


def cpuinfo_field(name: str) -> str | None:
    """The first `name : value` line of /proc/cpuinfo (Linux); None where there is no such file or line."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return None
    return next((line.partition(":")[2].strip() for line in cpuinfo.read_text().splitlines()
                 if line.split(":")[0].strip() == name), None)


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux); empty elsewhere."""
    return set((cpuinfo_field("flags") or "").split())


def auto_precision(device: torch.device, flags: set[str] | None = None, capability=None) -> str:
    """"bf16" where the hardware computes bf16 matrix products natively, else "fp32". The one precision rule.

    CUDA: compute capability 8.0 or later. CPU: AVX-512 BF16 or AMX instructions (without them bf16 is emulated and
    runs many times slower than float32). `flags` and `capability` override what is read from the machine.
    """
    if device.type == "cuda":
        capability = capability if capability is not None else torch.cuda.get_device_capability(device)
        return "bf16" if tuple(capability) >= GPU_MIN_CAPABILITY else "fp32"
    if device.type == "cpu":
        flags = cpu_flags() if flags is None else flags
        return "bf16" if flags & CPU_BF16_FLAGS else "fp32"
    return "fp32"


def resolve_precision(requested: str, device: torch.device) -> str:
    """`requested` ("fp32" or "bf16"), or for "auto" what auto_precision gives this device."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    return auto_precision(device) if requested == "auto" else requested


def device_name(device: torch.device) -> str:
    """The accelerator's or CPU's model name, read from the machine (CPU: with the thread count torch uses)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple {platform.machine()} (MPS)"
    name = cpuinfo_field("model name") or platform.processor() or platform.machine()
    return f"{name} ({torch.get_num_threads()} threads)"


COMMIT_ENV = "RUN_COMMIT"  # names the commit where git cannot tell (a copy of the repository with a stale .git)


def git_commit(folder: Path = ROOT) -> str | None:
    """The commit checked out in `folder` (with "+dirty" if tracked files differ from it); None outside git.

    ${RUN_COMMIT} overrides it."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    try:
        run = dict(cwd=folder, capture_output=True, text=True)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], **run)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run).stdout.strip()
    except OSError:
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "") if head.returncode == 0 else None


def hardware_record(device: torch.device, precision: str) -> dict:
    """What a run records about its machine and code: device, CPU bf16 flags, torch, Python, precision, commit."""
    return {"device": device_name(device), "device_type": device.type,
            "cpu_bf16_flags": sorted(cpu_flags() & CPU_BF16_FLAGS), "torch": torch.__version__,
            "python": platform.python_version(), "precision": precision, "commit": git_commit(Path.cwd())}


# --------------------------------------------------------------------------- files

@contextmanager
def atomic_path(dest: Path):
    """Yield a temporary path beside `dest`; it replaces `dest` only if the block finishes without error.

    Readers see either the old file or the complete new one, never a half-written file.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: Path, data) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------- corpus and vocabulary

def download_corpus(dest: Path = DATA_PATH, url: str = CORPUS_URL, sha256: str = CORPUS_SHA256) -> Path:
    """Download the corpus to `dest`; the file appears only once its checksum is verified."""
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                tmp.write_bytes(response.read())
        except (urllib.error.URLError, OSError) as err:
            raise RuntimeError(
                f"could not download the corpus from {url} ({err}). Without internet, copy "
                f"tiny shakespeare (SHA-256 {sha256}) to {dest} by hand, or set {CORPUS_ENV} to its path."
            ) from err
        got = sha256_of(tmp)
        if got != sha256:
            raise ValueError(
                f"the file downloaded from {url} has SHA-256 {got}, expected {sha256}; nothing was "
                f"written to {dest}. Retry, or place a correct copy there by hand."
            )
    return Path(dest)


def corpus_path() -> Path:
    """Where the corpus is read from: ${TINYSHAKESPEARE_PATH} if set, else data/input.txt."""
    env = os.environ.get(CORPUS_ENV)
    return Path(env) if env else DATA_PATH


def load_text(path: Path | None = None, sha256: str = CORPUS_SHA256) -> str:
    """The verified corpus text; downloads it to data/input.txt when that file is missing."""
    path = Path(path) if path is not None else corpus_path()
    if not path.exists():
        if path != DATA_PATH and os.environ.get(CORPUS_ENV):
            raise FileNotFoundError(f"{CORPUS_ENV}={path} does not exist: point it at a copy of the corpus or unset it")
        download_corpus(path, sha256=sha256)
    got = sha256_of(path)
    if got != sha256:
        raise ValueError(
            f"{path} has SHA-256 {got}, expected {sha256} (tiny shakespeare). Delete it to download "
            "it again, or replace it with the right file."
        )
    return path.read_text(encoding="utf-8")


class Vocab:
    """Character vocabulary: the sorted distinct characters of a text, ids 0..len-1."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> torch.Tensor:
        """int64 ids of `s`; an unknown character raises a ValueError naming it."""
        try:
            return torch.tensor([self.stoi[c] for c in s], dtype=torch.long)
        except KeyError as err:
            raise ValueError(
                f"character {err.args[0]!r} is not in the vocabulary of {len(self)} characters; "
                "use only characters that occur in the training text"
            ) from None

    def decode(self, ids) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return "".join(self.chars[i] for i in ids)


def split_ids(ids: torch.Tensor, train_fraction: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """Contiguous split: the first `train_fraction` for training, the rest for validation (as nanoGPT)."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction}")
    n = int(train_fraction * len(ids))
    return ids[:n], ids[n:]


def char_counts(text: str) -> list[tuple[str, int]]:
    """(character, count), most frequent first."""
    return Counter(text).most_common()


# --------------------------------------------------------------------------- dataset

class CharDataset(Dataset):
    """Item i is (x, y): `block_size` ids starting at i, and the same window shifted left by one."""

    def __init__(self, ids: torch.Tensor, block_size: int):
        if block_size < 1 or len(ids) <= block_size:
            raise ValueError(f"block_size must be in [1, {len(ids) - 1}] for {len(ids)} ids, got {block_size}")
        self.ids = ids
        self.block_size = block_size
        self._offsets = torch.arange(block_size + 1, device=ids.device)

    def __len__(self) -> int:
        return len(self.ids) - self.block_size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        i = i % len(self)
        chunk = self.ids[i : i + self.block_size + 1]
        return chunk[:-1], chunk[1:]

    def batch(self, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Items `starts` at once, as two (len(starts), block_size) tensors: one gather, no Python loop."""
        chunk = self.ids[starts[:, None] + self._offsets]  # (B, block_size + 1)
        return chunk[:, :-1], chunk[:, 1:]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        # DataLoader's batched fetch: one gather instead of len(indices) slices
        x, y = self.batch(torch.as_tensor(indices, device=self.ids.device))
        return list(zip(x.unbind(0), y.unbind(0)))


# --------------------------------------------------------------------------- observing a layer

@contextmanager
def recorded_output(module: torch.nn.Module):
    """Inside the block, record["output"] holds what `module` returned on its latest call (a forward hook).

    Observes a layer as it runs, without changing its code. On an attention layer's `attn_dropout` in eval mode
    (dropout off, so output = input) it records the attention weights.
    """
    record = {}
    handle = module.register_forward_hook(lambda mod, args, output: record.__setitem__("output", output.detach()))
    try:
        yield record
    finally:
        handle.remove()


# --------------------------------------------------------------------------- training support

def eval_chunks(ids: torch.Tensor, block_size: int, max_tokens: int | None = None) -> list[tuple[torch.Tensor, ...]]:
    """Non-overlapping (x, y) windows that predict every position of `ids` after the first exactly once.

    Returns at most two batches: the full windows as (n, block_size) tensors, and a shorter remainder.
    `max_tokens` keeps evenly spaced full windows covering about that many targets (a fixed subset).
    """
    n_full = (len(ids) - 1) // block_size
    starts = torch.arange(n_full, device=ids.device) * block_size
    subset = max_tokens is not None and max_tokens < len(ids) - 1
    if subset:
        starts = starts[torch.linspace(0, n_full - 1, max(1, max_tokens // block_size)).round().long()]
    batches = [CharDataset(ids, block_size).batch(starts)] if n_full else []
    rest = ids[n_full * block_size :]
    if not subset and len(rest) > 1:
        batches.append((rest[None, :-1], rest[None, 1:]))
    return batches


@torch.no_grad()
def evaluate(model: torch.nn.Module, chunks, batch_size: int = 64, precision: str = "fp32") -> float:
    """Exact mean cross-entropy (nats per character) over every target in `chunks` (from eval_chunks)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in chunks:
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            with autocast(xb.device, precision):
                logits, _ = model(xb)
            total += F.cross_entropy(logits.float().flatten(0, 1), yb.flatten(), reduction="sum").double()
            count += yb.numel()
    model.train(was_training)
    return float(total) / count


NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # torch.optim.Muon's quintic Newton-Schulz iteration (Keller Jordan)


def newton_schulz(G: torch.Tensor, steps: int = 5, dtype: torch.dtype = torch.float32, eps: float = 1e-7):
    """Approximately orthogonalise every matrix of G (n, rows, cols): U S V^T -> about U V^T, computed in `dtype`.

    torch.optim.Muon's iteration, batched: the matrices of one shape go through each step in one product.
    """
    a, b, c = NS_COEFFICIENTS
    X = G.to(dtype)
    tall = G.size(-2) > G.size(-1)
    if tall:
        X = X.mT  # iterate on the smaller Gram matrix X X^T
    X = X / X.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)  # Frobenius norm 1: every singular value <= 1
    for _ in range(steps):
        A = X @ X.mT  # (n, r, r)
        B = torch.baddbmm(A, A, A, beta=b, alpha=c)  # b A + c A^2
        X = torch.baddbmm(X, B, X, beta=a)  # a X + B X
    return X.mT if tall else X


class Muon(torch.optim.Optimizer):
    """Muon for 2-D weight matrices, with torch.optim.Muon's update: Nesterov momentum, 5 Newton-Schulz steps,
    the rate scaled by sqrt(max(1, rows/cols)), decoupled weight decay. The matrices of one shape (a tall one
    transposed) are orthogonalised together, in `dtype`: bfloat16 where the hardware multiplies it natively, else
    float32."""

    def __init__(self, params, lr: float = 0.02, weight_decay: float = 0.0, momentum: float = 0.95,
                 ns_steps: int = 5, dtype: torch.dtype = torch.float32):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, ns_steps=ns_steps))
        self.dtype = dtype
        for p in (p for group in self.param_groups for p in group["params"]):
            if p.dim() != 2:
                raise ValueError(f"Muon takes 2-D weight matrices only, got a parameter of shape {tuple(p.shape)}; "
                                 "give biases, gains and embeddings to AdamW")

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, m = group["lr"], group["momentum"]
            stacks = {}  # (short side, long side) -> [(parameter, its update, wide)]
            for p in (p for p in group["params"] if p.grad is not None):
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - m)  # as torch computes it: buf = m buf + (1 - m) g
                update = p.grad.lerp(buf, m)  # Nesterov: (1 - m) g + m buf
                wide = p.size(0) <= p.size(1)
                stacks.setdefault(tuple(sorted(p.shape)), []).append((p, update if wide else update.mT, wide))
            for params, updates, wide in (zip(*entries) for entries in stacks.values()):
                ortho = newton_schulz(torch.stack(updates), group["ns_steps"], self.dtype).to(params[0].dtype)
                scale = [lr * math.sqrt(max(1, p.size(0) / p.size(1))) for p in params]  # tall matrices: larger
                steps = [-s * (o if w else o.mT) for s, o, w in zip(scale, ortho.unbind(0), wide)]
                torch._foreach_mul_(params, 1 - lr * group["weight_decay"])
                torch._foreach_add_(params, steps)


def make_optimizers(model: torch.nn.Module, config, precision: str) -> list[torch.optim.Optimizer]:
    """For config.optimizer "muon": Muon for the 2-D weight matrices inside the blocks, AdamW for the rest
    (embeddings and the tied head, gains, biases); for "adamw": AdamW for everything. `config` is a TrainConfig."""
    if config.optimizer not in ("muon", "adamw"):
        raise ValueError(f"optimizer must be 'muon' or 'adamw', got {config.optimizer!r}")
    named = dict(model.named_parameters())  # the tied embedding and head appear once
    in_blocks = [p for n, p in named.items() if n.startswith("transformer.h.") and p.dim() == 2]
    hidden = in_blocks if config.optimizer == "muon" else []
    rest = [p for p in named.values() if all(p is not q for q in hidden)]
    groups = [{"params": [p for p in rest if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0}]
    betas, fused = (config.beta1, config.beta2), next(model.parameters()).is_cuda
    optimizers = [torch.optim.AdamW(groups, lr=config.lr, betas=betas, fused=fused)]
    if hidden:  # Newton-Schulz in bf16 only where the hardware multiplies bf16 natively
        ns_dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        optimizers.append(Muon(hidden, lr=config.muon_lr, weight_decay=0.0, dtype=ns_dtype))
    for group in (g for opt in optimizers for g in opt.param_groups):
        group["peak_lr"] = group["lr"]  # the training loop's schedule scales every group's peak alike
    return optimizers


def autocast(device: torch.device, precision: str):
    """bf16 autocast for "bf16" (weights stay float32), nothing for "fp32"."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def prepare_device(device: torch.device) -> None:
    """Per training run on CUDA: TF32 for the remaining float32 products, peak memory counted from here."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(device)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously), so that host clocks time it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: peak device memory since prepare_device; CPU: the process's peak resident memory."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # Linux reports KiB


class _NotebookLine:
    """Where a progress bar draws inside a notebook: one display output, replaced at every redraw, so the saved
    notebook holds the bar's last state instead of a trail of carriage returns."""

    encoding = "utf-8"  # tqdm draws its bar with Unicode blocks

    def __init__(self):
        from IPython.display import display

        self.handle = display({"text/plain": ""}, raw=True, display_id=True)

    def write(self, s: str) -> None:
        if s.strip():
            self.handle.update({"text/plain": s.strip("\r\n")}, raw=True)

    def flush(self) -> None:
        pass


def in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


def progress(total: int, desc: str, initial: int = 0):
    """A tqdm bar over a run's iterations: rate, time left, and the postfix set by the loop (the latest val loss).

    In a notebook it draws on one updatable output line; elsewhere on stderr.
    """
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, file=_NotebookLine() if in_notebook() else sys.stderr,
                ncols=100, mininterval=1.0, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} "
                "[{elapsed} elapsed, {remaining} left, {rate_fmt}{postfix}]")


@dataclass
class RunState:
    """A training run's progress. The training loop updates it; checkpoints save it (as a dict of its fields);
    training_record reports it."""

    iter: int = 0  # the latest evaluated iteration
    best_val: float = math.inf
    best_iter: int | None = None
    best_weights: dict | None = None  # a copy of the model's state_dict at best_iter
    train_time_s: float = 0.0  # optimisation only: evaluation excluded
    eval_time_s: float = 0.0
    stopped_early: str | None = None  # why training stopped before max_iters, if it did


def _code_bytes(code: types.CodeType) -> bytes:
    """A function's bytecode, constants (nested functions included) and names; line numbers and comments left out."""
    consts = []
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            consts.append(_code_bytes(c))
        else:
            consts.append(repr(sorted(map(repr, c)) if isinstance(c, frozenset) else c).encode())
    return code.co_code + b"|".join(consts) + repr(code.co_names).encode()


def code_hash(*objects) -> str:
    """A short hash of the code of `objects`: functions, classes, or models (the classes of their modules, PyTorch's
    own left out). It changes when a line of code changes, not when a comment does."""
    targets = []
    for obj in objects:
        if isinstance(obj, torch.nn.Module):
            classes = {type(m) for m in obj.modules() if not type(m).__module__.startswith("torch.")}
            targets += sorted(classes, key=lambda cls: cls.__qualname__)
        else:
            targets.append(obj)
    digest = hashlib.sha256()
    for target in targets:
        functions = ([f for _, f in sorted(vars(target).items()) if inspect.isfunction(f)]
                     if isinstance(target, type) else [target])
        for f in functions:
            digest.update(f.__name__.encode() + _code_bytes(f.__code__))
    return digest.hexdigest()[:16]


def dict_differences(there: dict, here: dict, prefix: str = "") -> list[str]:
    """Where two nested dicts differ, as 'key: value there, value here'."""
    out = []
    for key in sorted(set(there) | set(here)):
        a, b = there.get(key), here.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += dict_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} there, {b!r} here")
    return out


def save_checkpoint(path: Path, fingerprint: dict, model, optimizers, batch_generator, history: dict,
                    state: RunState):
    """Everything a training run needs to continue exactly: weights, optimiser states, random states, progress.

    Written atomically: an interrupted save leaves the previous checkpoint intact.
    """
    rng = {"torch": torch.get_rng_state(), "batches": batch_generator.get_state()}
    if torch.cuda.is_available() and batch_generator.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(batch_generator.device)
    with atomic_path(path) as tmp:
        torch.save({"fingerprint": fingerprint, "model": model.state_dict(),
                    "optimizers": [opt.state_dict() for opt in optimizers], "history": history,
                    "state": dict(vars(state)), "rng": rng}, tmp)


def load_checkpoint(path: Path | None, fingerprint: dict, device: torch.device) -> dict | None:
    """Read a checkpoint (tensors only: no code runs on loading); None if `path` is None or no such file exists.

    Refuses (ValueError) a checkpoint written by another run: other configuration, data, seed or code.
    """
    if path is None or not Path(path).exists():
        return None
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint {path} could not be read ({err}); delete it or pass resume=False") from err
    there = ckpt.get("fingerprint", {})
    differences = dict_differences({k: v for k, v in there.items() if k != "code"},
                                   {k: v for k, v in fingerprint.items() if k != "code"})
    if there.get("code") != fingerprint.get("code"):
        differences.append("the model or training code has changed since it was written")
    if differences:
        raise ValueError(f"checkpoint {path} belongs to another run ({'; '.join(differences)}); "
                         "delete it to train from scratch, or pass resume=False")
    return ckpt


def restore_checkpoint(ckpt: dict, model, optimizers, batch_generator) -> tuple[dict, RunState]:
    """Load a checkpoint's weights, optimiser and random states in place; returns its (history, state)."""
    model.load_state_dict(ckpt["model"])
    for opt, opt_state in zip(optimizers, ckpt["optimizers"], strict=True):
        opt.load_state_dict(opt_state)
    torch.set_rng_state(ckpt["rng"]["torch"].cpu())
    batch_generator.set_state(ckpt["rng"]["batches"].cpu())
    if "cuda" in ckpt["rng"]:
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"].cpu(), batch_generator.device)
    return ckpt["history"], RunState(**ckpt["state"])


def stop_at_nan(state: RunState, iteration: int) -> None:
    """Record in `state` why training stops at a NaN or infinite loss, and warn."""
    state.stopped_early = (f"the training loss became NaN or infinite by iteration {iteration}; training stopped, "
                           f"the best weights (iteration {state.best_iter}) are kept. Lower the learning rate or "
                           "check the data.")
    warnings.warn(state.stopped_early, RuntimeWarning, stacklevel=3)


def steady_ms_per_iter(history: dict) -> float | None:
    """Training milliseconds per iteration after the first evaluation interval (which holds compilation and
    warm-up); None with fewer than three evaluations."""
    steady = history["iter"][1:]
    if len(steady) < 2:
        return None
    return 1000 * (history["train_time_s"][-1] - history["train_time_s"][1]) / (steady[-1] - steady[0])


def training_record(history: dict, state: RunState, device: torch.device, tokens_per_iter: int, **about) -> dict:
    """What a training run reports: `about` (its configuration) plus results, speed and memory from its history."""
    ms_per_iter = steady_ms_per_iter(history) or 1000 * state.train_time_s / max(1, history["iter"][-1])
    return {**about, "best_val_loss": state.best_val, "best_iter": state.best_iter,
            "final_val_loss": history["val_loss"][-1], "iters_done": history["iter"][-1],
            "train_time_s": state.train_time_s, "eval_time_s": state.eval_time_s, "ms_per_iter": ms_per_iter,
            "tokens_per_s": tokens_per_iter / (ms_per_iter / 1000), "peak_memory_mb": peak_memory_mb(device),
            "stopped_early": state.stopped_early, "history": history}


# --------------------------------------------------------------------------- analysis

def how_it_ended(record: dict) -> str:
    """How a run's validation loss ended, read from its history: "still improving" (best at the last evaluation:
    under-trained) or "overfitting" (best before the end, then rising)."""
    return "still improving" if record["best_iter"] == record["history"]["iter"][-1] else "overfitting"


def describe_ending(record: dict) -> str:
    """how_it_ended in words, with the iteration numbers and losses that show it."""
    h = record["history"]
    if how_it_ended(record) == "still improving":
        drop = h["val_loss"][-2] - h["val_loss"][-1] if len(h["val_loss"]) > 1 else float("nan")
        return (f"still improving at the end (its best validation loss comes at the last evaluation, iteration "
                f"{h['iter'][-1]}, {drop:.3f} below the one before): under-trained")
    b = h["iter"].index(record["best_iter"])
    train_falls = h["train_loss"][-1] < h["train_loss"][b]
    return (f"overfitting (its best validation loss comes at iteration {record['best_iter']} of {h['iter'][-1]}, "
            f"then it rises to {record['final_val_loss']:.4f}"
            + (f" while the train loss falls from {h['train_loss'][b]:.4f} to {h['train_loss'][-1]:.4f})"
               if train_falls else ")"))


def steady_train_times(history: dict) -> list[float]:
    """Training seconds at each evaluation, the first interval counted at the run's steady speed.

    Compilation and warm-up fall in the first interval and depend on the compile cache (a second run of the same
    model compiles from the cache), not on the run itself: runs are compared on this time axis.
    """
    ms = steady_ms_per_iter(history)
    times = list(history["train_time_s"])
    if ms is None:
        return times
    extra = max(0.0, times[1] - times[0] - (history["iter"][1] - history["iter"][0]) * ms / 1000)
    return times[:1] + [t - extra for t in times[1:]]


def best_val_within(history: dict, seconds: float) -> float:
    """The best validation loss a run had measured within `seconds` of steady training time (steady_train_times)."""
    return min(v for v, t in zip(history["val_loss"], steady_train_times(history)) if t <= seconds + 1e-9)


ATTENTION_TARGETS = ("itself", "previous character", "latest space or newline", "other earlier positions")


def attention_shares(weights: torch.Tensor, text: str) -> dict[str, list[float]]:
    """Per head, the mean attention weight (over queries 1..T-1) on four disjoint sets of keys that sum to 1: the
    query itself, the previous character, the latest space or newline before that (the start of the current word
    or line, when it is neither of the first two) and every other earlier position."""
    T = len(text)
    q = torch.arange(1, T)
    boundary = torch.tensor([max((s for s in range(t + 1) if text[s] in " \n"), default=-1) for t in range(1, T)])
    w = weights.float().cpu()  # (n_head, T, T)
    own, prev = w[:, q, q], w[:, q, q - 1]
    apart = (boundary >= 0) & (boundary < q - 1)  # a boundary that is neither the query nor its predecessor
    word = torch.where(apart, w[:, q, boundary.clamp(min=0)], torch.zeros_like(own))
    shares = [own.mean(1), prev.mean(1), word.mean(1)]
    shares.append(1 - sum(shares))
    return {name: s.tolist() for name, s in zip(ATTENTION_TARGETS, shares)}


def word_set(text: str) -> set[str]:
    return set(text.split())


def text_stats(sample: str, train_words: set[str], n: int = 4) -> dict[str, float]:
    """How real and how repetitive a sample is: share of its words seen in training, distinct n-gram ratio."""
    words = sample.split()
    ngrams = [sample[i : i + n] for i in range(len(sample) - n + 1)]
    return {
        "known_word_share": sum(w in train_words for w in words) / len(words) if words else float("nan"),
        f"distinct_{n}gram_ratio": len(set(ngrams)) / len(ngrams) if ngrams else float("nan"),
    }


def bits_per_char(nats: float) -> float:
    return nats / math.log(2)


# --------------------------------------------------------------------------- figures

def save_figure(fig, name: str, profile: str, directory: Path) -> Path:
    """Save `fig` as <directory>/<name>_<profile>.png and .pdf; returns the PNG path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"{name}_{profile}"
    fig.savefig(stem.with_suffix(".png"), dpi=150, bbox_inches="tight")
    fig.savefig(stem.with_suffix(".pdf"), bbox_inches="tight")
    return stem.with_suffix(".png")


def _label(c: str) -> str:
    return {"\n": "\\n", " ": "␣"}.get(c, c)


def _loss_axes(ax, xlabel: str, ylabel: str, title: str) -> None:
    """The loss plots' common styling: log-scaled loss with plain tick labels, grid, legend."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.1f"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.1f"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()


def plot_char_frequencies(counts: list[tuple[str, int]]):
    chars, n = zip(*counts)
    total = sum(n)
    fig, ax = plt.subplots(figsize=(11, 3.2))
    ax.bar(range(len(chars)), [k / total * 100 for k in n], color="tab:blue")
    ax.set_xticks(range(len(chars)), [_label(c) for c in chars], fontsize=7)
    ax.set_xlabel("character (␣ = space, \\n = newline), most frequent first")
    ax.set_ylabel("share of the corpus (%)")
    ax.set_yscale("log")
    ax.set_title(f"Character frequencies: {len(chars)} distinct characters, a few dominate")
    fig.tight_layout()
    return fig


def plot_loss_curves(history: dict, title: str, best_iter: int | None = None):
    """Train and val loss (nats per character) against iteration, log-scaled, best val point marked."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(history["iter"], history["train_loss"], label="train (fixed subset)", color="tab:blue")
    ax.plot(history["iter"], history["val_loss"], label="validation (whole split)", color="tab:orange")
    if best_iter is not None:
        v = history["val_loss"][history["iter"].index(best_iter)]
        ax.scatter([best_iter], [v], color="black", zorder=3, label=f"best val {v:.4f} @ iter {best_iter}")
    _loss_axes(ax, "training iteration", "cross-entropy loss (nats/char, log scale)", title)
    fig.tight_layout()
    return fig


def plot_loss_against_time(runs: dict[str, dict], title: str):
    """Validation loss against steady training seconds (steady_train_times), one line per run's history."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, history in runs.items():
        ax.plot(steady_train_times(history), history["val_loss"], marker="o", markersize=3, label=label)
    _loss_axes(ax, "training time (s; evaluation and compilation excluded)", "validation loss (nats/char, log scale)",
               title)
    fig.tight_layout()
    return fig


def plot_attention(weights: torch.Tensor, text: str, layer: int):
    """One panel per head: attention weights (n_head, T, T) of `text`, queries down, keys across."""
    n_head, T = weights.shape[0], weights.shape[-1]
    cols = min(n_head, 3)
    rows = math.ceil(n_head / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.2 * rows), squeeze=False)
    labels = [_label(c) for c in text]
    for h, ax in enumerate(axes.flat):
        if h >= n_head:
            ax.axis("off")
            continue
        ax.imshow(weights[h].float().cpu(), cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(T), labels, fontsize=6, family="monospace")
        ax.set_yticks(range(T), labels, fontsize=6, family="monospace")
        ax.set_xlabel("key: the character attended to")
        ax.set_ylabel("query: the character predicting the next")
        ax.set_title(f"layer {layer}, head {h}")
    fig.suptitle("Attention weights on a line of the play (dark = high weight; nothing above the diagonal)")
    fig.tight_layout()
    return fig


def plot_temperature_metrics(temps: list[float], metrics: dict[str, list[float]]):
    """One panel per metric against temperature (log x axis)."""
    labels = {
        "nll": "mean NLL under the model\n(nats/char)",
        "known_word_share": "share of words that\noccur in training text",
        "distinct_4gram_ratio": "distinct 4-gram ratio\n(1 = no repetition)",
    }
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4))
    for ax, (key, values) in zip(axes, metrics.items()):
        ax.plot(temps, values, marker="o")
        ax.set_xscale("log")
        ax.set_xlabel("sampling temperature τ (log scale)")
        ax.set_ylabel(labels.get(key, key))
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("What temperature does to a sample: its NLL, its spelling, its repetition")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- reproduction

LOSS_TOLERANCE = 0.01  # nats/char between runs of one profile, device type and precision (see the report)
NOT_CODE_TAGS = {"parameters", "injected-parameters", "helpers", "reported"}  # cells that hold no code of the run


def source_version(notebook: Path = Path("assignment3.ipynb"), helpers: Path = Path("gpt_helpers.py")) -> str | None:
    """A short hash of the code a run executes: the notebook's code cells (not its parameters, nor the cells the
    hand-in adds) and gpt_helpers.py. None if either file is missing (a notebook saved under another name)."""
    if not (Path(notebook).exists() and Path(helpers).exists()):
        return None
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells
            if c["cell_type"] == "code" and not NOT_CODE_TAGS & set(c["metadata"].get("tags", []))]
    text = "\n# cell\n".join(code) + "\n# helpers\n" + Path(helpers).read_text(encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


RUN_FIELDS = ("n_params", "best_val_loss", "best_iter", "final_val_loss", "iters_done", "train_time_s", "ms_per_iter")


def run_summary(results: dict) -> dict:
    """The compact record of a notebook run (from its results/<profile>.json) that a hand-in carries."""
    hw = results["hardware"]
    return {"profile": results["profile"], "date": results.get("date"), "code_version": results.get("code_version"),
            "machine": {k: hw.get(k) for k in ("device", "device_type", "precision", "torch", "cpu_bf16_flags")},
            "runs": {name: {k: results[name][k] for k in RUN_FIELDS} | {"ended": how_it_ended(results[name])}
                     for name in ("baseline", "adamw", "large") if name in results}}


def reported_runs(results_dir: Path) -> dict[str, dict]:
    """{profile: run_summary} of the results files in `results_dir`, as they are before this run writes its own."""
    out = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            out[path.stem] = run_summary(json.loads(path.read_text(encoding="utf-8")))
        except (KeyError, ValueError):
            continue  # a results file of an older format: nothing to compare with
    return out


def _machine_text(summary: dict) -> str:
    m = summary["machine"]
    return f"{m['device']}, {m['precision']}, profile {summary['profile']}, {summary['date'] or 'date not recorded'}"


def reproduction_report(reported: dict | None, current: dict) -> str:
    """Markdown: per training run, the reported value, this run's, the difference and a verdict."""
    if reported is None:
        return (f"**Nothing to compare with:** no run of profile {current['profile']} (or, for cpu and gpu, of the "
                f"other of the two) was reported with this notebook (this run: {_machine_text(current)}).")
    comparable = (reported["profile"] == current["profile"]
                  and all(reported["machine"][k] == current["machine"][k] for k in ("device_type", "precision")))
    same_code = reported.get("code_version") is not None and reported["code_version"] == current["code_version"]
    same_profile = reported["profile"] == current["profile"]
    lines = [f"Reported: {_machine_text(reported)}. This run: {_machine_text(current)}. "
             + ("Same code. " if same_code else "**The reported run ran other code** (or its code is unknown). ")
             + (f"Same profile, device type and precision: losses should agree within {LOSS_TOLERANCE} nats/char."
                if comparable else "**Not comparable** number for number (another profile, device type or "
                "precision): compare the curves' shape (how each run ended) and the ranking of the models.")]
    for name in ("baseline", "adamw", "large"):
        if name not in reported["runs"] or name not in current["runs"]:
            continue
        then, now = reported["runs"][name], current["runs"][name]
        lines += [f"\n**{name}**\n", "| | reported | this run | difference | verdict |", "|---|---|---|---|---|"]
        for key in ("best_val_loss", "final_val_loss"):
            diff = now[key] - then[key]
            verdict = (("reproduced" if abs(diff) <= LOSS_TOLERANCE else f"**differs** (tolerance {LOSS_TOLERANCE})")
                       if comparable else "not comparable")
            lines.append(f"| {key} | {then[key]:.4f} | {now[key]:.4f} | {diff:+.4f} | {verdict} |")
        for key in ("n_params", "iters_done", "best_iter"):  # sizes compare within a profile, dynamics as losses
            verdict = ("reproduced" if then[key] == now[key] else "**differs**") if (
                comparable or same_profile and key != "best_iter") else "not comparable"
            lines.append(f"| {key} | {then[key]:,} | {now[key]:,} | {now[key] - then[key]:+,} | {verdict} |")
        verdict = "same" if then["ended"] == now["ended"] else "**differs**"
        lines.append(f"| how it ended | {then['ended']} | {now['ended']} | | {verdict} |")
        for key in ("train_time_s", "ms_per_iter"):
            lines.append(f"| {key} | {then[key]:.1f} | {now[key]:.1f} | {now[key] - then[key]:+.1f} | "
                         "for information: timings depend on the machine |")
    if all(name in r["runs"] for r in (reported, current) for name in ("baseline", "large")):
        ranks = [r["runs"]["large"]["best_val_loss"] < r["runs"]["baseline"]["best_val_loss"]
                 for r in (reported, current)]
        yes = ["yes" if r else "no" for r in ranks]
        lines.append(f"\nRanking: the larger model beats the baseline in the reported run: {yes[0]}; in this run: "
                     f"{yes[1]} ({'same' if ranks[0] == ranks[1] else '**differs**'}).")
    return "\n".join(lines)


def pick_reported(reported: dict[str, dict], profile: str) -> dict | None:
    """The reported run to compare with: the same profile's; for cpu and gpu, else the other one's."""
    for candidate in (profile, *({"cpu", "gpu"} - {profile} if profile in ("cpu", "gpu") else ())):
        if candidate in reported:
            return reported[candidate]
    return None


# --------------------------------------------------------------------------- notebook loading

def notebook_cells(*tags: str, notebook: Path = ROOT / "assignment3.ipynb", name: str = "notebook_cells"):
    """Execute, in order and in a fresh module, only the notebook's code cells tagged with one of `tags`.

    Tests and benchmarks load the model (`model`) and the training loop (`train`) this way, so the notebook
    stays their single source.
    """
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up here
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and set(tags) & set(cell["metadata"].get("tags", [])):
            exec(compile("".join(cell["source"]), f"{Path(notebook).name}:cell{i}", "exec"), module.__dict__)
    return module
