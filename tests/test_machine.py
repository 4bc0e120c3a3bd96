"""The helper module's machine rules: which profile "auto" picks, and which precision, from given device properties."""

from types import SimpleNamespace

import pytest
import torch

import gpt_helpers as H

PROFILES = {"smoke": {}, "cpu": {}, "gpu": {}}


def gpu(major, minor, gb, name="a GPU"):
    return SimpleNamespace(name=name, major=major, minor=minor, total_memory=gb * 10**9)


@pytest.mark.parametrize("props,expected,reason", [
    (gpu(9, 0, 80, "H100"), "gpu", "bf16 tensor cores and 80 GB"),
    (gpu(8, 0, 40, "A100"), "gpu", "bf16 tensor cores and 40 GB"),
    (gpu(8, 0, 32, "at the memory bound"), "gpu", "bf16 tensor cores and 32 GB"),
    (gpu(8, 0, 31.9, "just under it"), "cpu", "has 32 GB, the gpu profile needs 32 GB"),  # 31.9 rounds to 32
    (gpu(8, 9, 16, "RTX 4080"), "cpu", "has 16 GB, the gpu profile needs 32 GB"),  # bf16, too little memory
    (gpu(7, 0, 32, "V100 32GB"), "cpu", "compute capability 7.0, no bf16 tensor cores"),  # memory, but no bf16
    (gpu(7, 5, 80, "pre-Ampere with 80 GB"), "cpu", "compute capability 7.5"),
    (gpu(7, 5, 16, "T4"), "cpu", "compute capability 7.5"),  # neither
])
def test_auto_picks_the_gpu_profile_only_on_a_large_bf16_gpu(props, expected, reason):
    profile, why = H.choose_profile("auto", torch.device("cuda"), PROFILES, gpu=props)
    assert profile == expected
    assert props.name in why and reason in why  # the reason names the device and the rule that decided


def test_auto_on_a_cpu_or_mps_machine_picks_the_cpu_profile():
    for device in ("cpu", "mps"):
        profile, why = H.choose_profile("auto", torch.device(device), PROFILES)
        assert profile == "cpu" and device in why


def test_a_profile_chosen_by_hand_is_kept_and_an_unknown_one_is_refused():
    assert H.choose_profile("smoke", torch.device("cuda"), PROFILES, gpu=gpu(9, 0, 80)) == ("smoke", "chosen by hand")
    with pytest.raises(ValueError, match=r"PROFILE='big' is not one of \['cpu', 'gpu', 'smoke'\]"):
        H.choose_profile("big", torch.device("cpu"), PROFILES)


@pytest.mark.parametrize("capability,expected", [((7, 5), "fp32"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_cuda_uses_bf16_only_with_bf16_tensor_cores(capability, expected):
    assert H.auto_precision(torch.device("cuda"), capability=capability) == expected


@pytest.mark.parametrize("flags,expected", [({"avx2", "fma"}, "fp32"), ({"avx512f", "avx512_bf16"}, "bf16"),
                                            ({"amx_tile", "amx_bf16"}, "bf16"), (set(), "fp32")])
def test_cpu_uses_bf16_only_with_native_bf16_instructions(flags, expected):
    assert H.auto_precision(torch.device("cpu"), flags=flags) == expected


def test_the_cpu_rule_gives_the_same_answer_every_time():
    assert len({H.auto_precision(torch.device("cpu")) for _ in range(5)}) == 1


def test_recorded_output_sees_the_module_run_and_unhooks():
    layer = torch.nn.Softmax(dim=-1)
    x = torch.randn(3, 4)
    with H.recorded_output(layer) as seen:
        y = layer(x)
    assert torch.equal(seen["output"], y)
    layer(torch.randn(3, 4))
    assert torch.equal(seen["output"], y) and not layer._forward_hooks


def test_attention_shares_are_disjoint_and_read_the_right_positions():
    text = "ab cde"
    weights = torch.zeros(3, 6, 6)
    q = torch.arange(1, 6)
    weights[0, q, q - 1] = 1.0  # head 0: always the previous character
    weights[1, q, q] = 1.0  # head 1: always itself
    weights[2, q, 0] = 1.0  # head 2: always the first character
    weights[2, 5, 0], weights[2, 5, 2] = 0.0, 1.0  # ... except query 5 ('e'), on the space two positions back
    shares = H.attention_shares(weights, text)
    assert list(shares) == list(H.ATTENTION_TARGETS)
    assert shares["previous character"] == pytest.approx([1.0, 0.0, 0.2])
    assert shares["itself"] == pytest.approx([0.0, 1.0, 0.0])
    # the space (position 2) is the previous character of query 3 and the query itself at 2: counted there only;
    # it is a category of its own for queries 4 and 5, where head 2 looks at it once
    assert shares["latest space or newline"] == pytest.approx([0.0, 0.0, 0.2])
    assert shares["other earlier positions"] == pytest.approx([0.0, 0.0, 0.6])  # query 2 to 0, 3 to 0, 4 to 0
    for h in range(3):
        assert sum(shares[k][h] for k in shares) == pytest.approx(1.0)


@pytest.mark.parametrize("requested,expected", [("fp32", "fp32"), ("bf16", "bf16")])
def test_a_precision_chosen_by_hand_is_kept(requested, expected):
    assert H.resolve_precision(requested, torch.device("cpu")) == expected
    assert H.resolve_precision("auto", torch.device("cpu")) == H.auto_precision(torch.device("cpu"))
    with pytest.raises(ValueError, match="'fp16'"):
        H.resolve_precision("fp16", torch.device("cpu"))


def test_code_hash_sees_code_not_comments():
    def define(source):
        namespace = {}
        exec(source, namespace)
        return namespace["f"]

    plain = define("def f(x):\n    return x + 1  # one\n")
    commented = define("# a comment above\ndef f(x):\n    # a comment inside\n    return x + 1  # another\n")
    changed = define("def f(x):\n    return x + 2\n")
    assert H.code_hash(plain) == H.code_hash(commented) != H.code_hash(changed)
