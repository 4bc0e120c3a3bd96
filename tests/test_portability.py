"""The machines we do not have, stood in for: Apple's MPS (no float64), Windows (no Unix-only modules, files not UTF-8
by default)."""

import ast
import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from torch.utils._python_dispatch import TorchDispatchMode

import gpt_helpers as H

# ---- Apple's MPS has no float64: evaluation and training never make a float64 tensor


class NoFloat64(TorchDispatchMode):
    """Raises where MPS would: at any operation that takes or makes a float64 tensor."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        flat = [*args, *(kwargs or {}).values(), *(out if isinstance(out, (list, tuple)) else [out])]
        if any(isinstance(t, torch.Tensor) and t.dtype == torch.float64 for t in flat):
            raise TypeError(f"{func} uses float64, which MPS does not have")
        return out


def test_the_float64_guard_catches_float64():
    with pytest.raises(TypeError, match="MPS"), NoFloat64():
        torch.ones(3).double().sum()


def test_evaluation_and_training_make_no_float64_tensor(nb, splits):
    train_ids, val_ids = (t[:5_000] for t in splits)
    torch.manual_seed(0)
    model = nb.GPT(nb.GPTConfig(vocab_size=65, block_size=16, n_block=1, n_head=2, n_embd=32))
    config = nb.TrainConfig(max_iters=3, batch_size=4, warmup_iters=1, eval_interval=3, eval_tokens=256)
    with NoFloat64():
        loss = H.evaluate(model, H.eval_windows(val_ids, 16))
        record = nb.train(model, model.get_optimizer(0.1, 1e-3, (0.9, 0.99), "cpu"), config, train_ids, val_ids,
                          "mps stand-in")
        muon = H.MuonAdamW(model, 1e-3, 0.02, 0.1, (0.9, 0.99))
        muon_record = nb.train(model, muon, config, train_ids, val_ids, "mps stand-in, Muon")
    assert loss > 0 and record["best_val_loss"] > 0 and muon_record["best_val_loss"] > 0


# ---- Windows: no Unix-only module at import, files read and written as UTF-8


def test_the_helpers_import_without_unix_only_modules():
    blocked = ["resource", "fcntl", "pwd", "grp", "termios"]
    code = (f"import sys\nfor name in {blocked}: sys.modules[name] = None  # as good as missing\n"
            "import gpt_helpers\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def python_sources():
    """The code that runs on a TA's machine or writes the hand-in's files: helpers, tools, report builder, benchmarks,
    notebook cells."""
    paths = [ROOT / "gpt_helpers.py", ROOT / "report" / "build.py", *(ROOT / "tools").glob("*.py"),
             *(ROOT / "bench").glob("*.py")]
    sources = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in paths}
    cells = json.loads((ROOT / "assignment3.ipynb").read_text(encoding="utf-8"))["cells"]
    for i, cell in enumerate(c for c in cells if c["cell_type"] == "code"):
        sources[f"notebook code cell {i}"] = "".join(cell["source"])
    return sources


def text_io_without_encoding(source: str) -> list[str]:
    """Calls of open(), read_text() or write_text() in text mode that leave the encoding to the platform."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        name = getattr(node.func, "attr", getattr(node.func, "id", None))
        mode = next((a.value for a in node.args[1:2] if isinstance(a, ast.Constant)), "r")
        if name in ("read_text", "write_text") or (name == "open" and "b" not in str(mode)):
            found.append(ast.unparse(node))
    return found


def test_every_text_file_is_read_and_written_as_utf8():
    offenders = {name: calls for name, source in python_sources().items()
                 if (calls := text_io_without_encoding(source))}
    assert offenders == {}


def test_the_utf8_check_finds_a_platform_encoding():
    found = text_io_without_encoding("open('a.txt').read()\nPath('b').write_text('x')\nopen('c', 'rb')")
    assert sorted(found) == ["Path('b').write_text('x')", "open('a.txt')"]
