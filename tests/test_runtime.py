"""The NVML probe fix: dropped only where NVML cannot be loaded."""

import os

import pytest
import torch

from duet.lightning_modules.runtime import skip_failing_nvml_probe


@pytest.mark.parametrize(("nvml_count", "kept"), [(-1, False), (0, True), (2, True)])
def test_the_nvml_check_is_dropped_only_without_nvml(monkeypatch, nvml_count, kept):
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "_device_count_nvml", lambda: nvml_count)
    skip_failing_nvml_probe()
    assert (os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1") == kept


def test_an_unset_check_stays_unset(monkeypatch):
    monkeypatch.delenv("PYTORCH_NVML_BASED_CUDA_CHECK", raising=False)
    monkeypatch.setattr(torch.cuda, "_device_count_nvml", lambda: pytest.fail("probed"))
    skip_failing_nvml_probe()
