"""The machines we do not have, stood in for: the profile rules on faked GPUs and systems, Apple's MPS (no float64),
Windows (no Unix-only modules, no Triton, files not UTF-8 by default)."""

import ast
import importlib.util
import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from torch.utils._python_dispatch import TorchDispatchMode

import gpt_helpers as H

# ---- which precision and whether to compile: the rule, on faked device properties


@pytest.mark.parametrize("profile", ["cpu", "smoke"])
@pytest.mark.parametrize("device", ["cpu", "mps", "cuda"])
def test_every_profile_but_gpu_runs_float32_eager_on_any_device(profile, device):
    assert H.profile_settings(profile, torch.device(device), capability=(7, 5)) == ("fp32", False)


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_the_gpu_profile_without_a_cuda_gpu_says_what_to_use(device):
    with pytest.raises(ValueError, match=f"needs a CUDA GPU, this machine runs on {device}: use PROFILE='cpu'"):
        H.profile_settings("gpu", torch.device(device))


@pytest.mark.parametrize("capability", [(7, 5), (7, 0), (6, 1)])  # T4, V100, P100: no bf16 tensor cores
def test_the_gpu_profile_on_an_older_gpu_says_what_to_use(capability):
    with pytest.raises(ValueError, match=f"this GPU has {capability[0]}.{capability[1]}: use PROFILE='cpu'"):
        H.profile_settings("gpu", torch.device("cuda"), capability=capability)


@pytest.mark.parametrize("system, triton, compiles", [("linux", True, True), ("linux", False, False),
                                                       ("win32", True, False), ("darwin", False, False)])
def test_the_gpu_profile_compiles_only_where_triton_runs(monkeypatch, system, triton, compiles):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (object() if triton else None)
                        if name == "triton" else real(name, *a))
    for capability in ((8, 0), (9, 0)):
        assert H.profile_settings("gpu", torch.device("cuda"), capability, system) == ("bf16", compiles)


# ---- which profile "auto" runs: the rule, on faked device properties

PROFILE_NAMES = ("cpu", "gpu", "smoke")


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_auto_runs_the_cpu_profile_without_a_cuda_gpu_and_says_why(device):
    profile, why = H.choose_profile("auto", PROFILE_NAMES, ["cpu", "gpu"], torch.device(device))
    assert profile == "cpu" and device in why


@pytest.mark.parametrize("capability", [(7, 5), (6, 1)])  # T4, P100: no bf16 tensor cores
def test_auto_runs_the_cpu_profile_on_a_gpu_without_bf16(capability):
    profile, why = H.choose_profile("auto", PROFILE_NAMES, ["cpu", "gpu"], torch.device("cuda"), capability)
    assert profile == "cpu" and f"{capability[0]}.{capability[1]}" in why


def test_auto_runs_the_gpu_profile_on_a_bf16_gpu_only_once_a_gpu_run_is_on_record():
    h100 = (torch.device("cuda"), (9, 0))
    assert H.choose_profile("auto", PROFILE_NAMES, ["cpu"], *h100)[0] == "cpu"
    assert H.choose_profile("auto", PROFILE_NAMES, ["cpu", "gpu"], *h100)[0] == "gpu"


def test_a_profile_set_by_hand_is_kept_and_an_unknown_one_is_refused():
    assert H.choose_profile("smoke", PROFILE_NAMES, ["cpu"], torch.device("cpu")) == ("smoke",
                                                                                       "set in the parameters cell")
    with pytest.raises(ValueError, match="PROFILE='tpu' is not one of"):
        H.choose_profile("tpu", PROFILE_NAMES, ["cpu"], torch.device("cpu"))


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
        muon = H.Muon(H.muon_groups(model, 1e-3, 0.02, 0.1))
        nb.train(model, muon, config, train_ids, val_ids, "mps stand-in, Muon")
    assert loss > 0 and record["best_val_loss"] > 0


# ---- Windows: no Unix-only module at import, files read and written as UTF-8


def test_the_helpers_import_without_unix_only_modules():
    blocked = ["resource", "fcntl", "pwd", "grp", "termios"]
    code = (f"import sys\nfor name in {blocked}: sys.modules[name] = None  # as good as missing\n"
            "import gpt_helpers\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def python_sources():
    """The code that runs on a TA's machine or builds the hand-in: helpers, tools, report builder, notebook cells."""
    sources = {p.name: p.read_text(encoding="utf-8") for p in [ROOT / "gpt_helpers.py", ROOT / "report" / "build.py",
                                                               *(ROOT / "tools").glob("*.py")]}
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
