"""A process-wide fix for a per-step cost that Lightning adds on machines without NVIDIA's NVML."""

import os

from duet.datamodules.lightning_internals import nvml_unavailable


def skip_failing_nvml_probe() -> None:
    """Stop PyTorch from retrying to load NVML on every ``torch.cuda.is_available()``.

    Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 so that availability checks do not initialise
    CUDA before a fork. Adam checks availability at every step; where libnvidia-ml cannot be
    loaded (every CPU-only machine) PyTorch then tries to dlopen it again each time, a
    sizeable share of a small Adam step (benchmarks/profile_agent.py shows it), and falls
    back to the CUDA runtime's count anyway. Without NVML, dropping the variable changes nothing
    but that wasted attempt; with NVML present this does nothing.
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1":
        return
    if nvml_unavailable():
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]
