"""Pick the device: CUDA, else Apple's MPS, else the CPU, unless the user names one."""
from __future__ import annotations

import torch

from harness.errors import HarnessError


def pick_device(requested: str | None = None) -> torch.device:
    if requested and requested != "auto":
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise HarnessError(f"--device {requested!r} is not a device name; use auto, cpu, cuda or mps") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise HarnessError(f"--device {requested}: CUDA is not available on this machine; use --device cpu")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise HarnessError(f"--device {requested}: MPS is not available on this machine; use --device cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
