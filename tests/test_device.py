import pytest
import torch

from nmt.device import (
    DeviceError,
    autocast,
    cpu_has_bf16,
    describe,
    resolve_device,
    resolve_precision,
)


def test_auto_picks_cuda_only_when_present():
    assert resolve_device("auto", lambda: False) == torch.device("cpu")
    assert resolve_device("auto", lambda: True) == torch.device("cuda")
    assert resolve_device("cpu", lambda: True) == torch.device("cpu")


def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(DeviceError, match="no CUDA device"):
        resolve_device("cuda", lambda: False)
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu", lambda: False)


def test_precision_on_cpu():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) is None
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu, cpu_bf16=lambda: True) is torch.bfloat16
    with pytest.raises(DeviceError, match="unknown precision"):
        resolve_precision("fp8", cpu)


def test_bf16_on_a_cpu_without_bf16_instructions_is_refused_naming_the_param():
    cpu = torch.device("cpu")
    with pytest.raises(DeviceError, match=r"train\.precision is 'bf16' but this CPU .* no bf16"):
        resolve_precision("bf16", cpu, cpu_bf16=lambda: False)
    assert resolve_precision("auto", cpu, cpu_bf16=lambda: False) is None  # auto stays fp32


def test_cpu_bf16_probe_answers_for_this_machine():
    expected = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert cpu_has_bf16() is expected


def test_autocast_context_changes_matmul_dtype_only_for_bf16():
    cpu = torch.device("cpu")
    a = torch.randn(4, 4)
    with autocast(cpu, torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(cpu, None):
        assert (a @ a).dtype == torch.float32
    assert describe(cpu, None) == "cpu/fp32"
    assert describe(cpu, torch.bfloat16) == "cpu/bfloat16"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_precision_on_cuda_is_bf16():
    assert resolve_precision("auto", torch.device("cuda")) is torch.bfloat16
