"""The helper module's machine rules: which profile "auto" picks, and which precision, from given device properties."""

from types import SimpleNamespace

import pytest
import torch

import gpt_helpers as H

PROFILES = {"smoke": {}, "cpu": {}, "gpu": {}}


def gpu(major, minor, gb, name="a GPU"):
    return SimpleNamespace(name=name, major=major, minor=minor, total_memory=gb * 10**9)


@pytest.mark.parametrize("props,expected", [
    (gpu(9, 0, 80, "H100"), "gpu"),
    (gpu(8, 0, 40, "A100"), "gpu"),
    (gpu(8, 9, 16, "RTX 4080"), "cpu"),  # bf16 tensor cores but too little memory for the larger model
    (gpu(7, 5, 16, "T4"), "cpu"),  # no bf16 tensor cores: the gpu profile would not finish in its budget
])
def test_auto_picks_the_gpu_profile_only_on_a_large_bf16_gpu(props, expected):
    profile, why = H.choose_profile("auto", torch.device("cuda"), PROFILES, gpu=props)
    assert profile == expected
    assert props.name in why  # the reason names the device


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


def test_attention_shares_read_the_right_positions():
    text = "ab cd"
    weights = torch.zeros(2, 5, 5)
    weights[0, torch.arange(1, 5), torch.arange(0, 4)] = 1.0  # head 0: always the previous character
    weights[1, torch.arange(5), torch.arange(5)] = 1.0  # head 1: always itself
    shares = H.attention_shares(weights, text)
    assert shares["previous character"] == [1.0, 0.0] and shares["itself"] == [0.0, 1.0]
    # the latest boundary at or before queries 1..4: 0 (none yet: the window's start), 2, 2, 2; head 0 attends 0..3
    assert shares["latest space or newline"] == pytest.approx([0.5, 0.25])
