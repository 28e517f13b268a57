"""Where and in what precision a run computes: the device (``resolve_device``: auto picks CUDA, then Apple's
MPS, then the CPU), the autocast precision (``resolve_amp``: bf16 where the hardware has it natively) and
how often progress is read back from the device (``syncs_every_step``).

A device the machine does not have is a ValueError that says so and what to choose instead; the name's
form (``cuda:N``) is checked earlier, with the settings (``ml.config``), without torch.
"""

from __future__ import annotations

import contextlib

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" picks CUDA, then Apple's MPS, then the CPU; an explicit device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            seen = (
                "this torch is a CPU-only build" if torch.version.cuda is None else "torch sees no CUDA GPU"
            )
            raise ValueError(
                f"device {name!r} requested but there is no GPU here ({seen}); use device auto or cpu"
            )
        index, count = int(name.partition(":")[2] or 0), torch.cuda.device_count()
        if index >= count:
            raise ValueError(
                f"device {name!r} requested but torch sees {count} GPU(s): cuda:0 to cuda:{count - 1}"
            )
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' requested but MPS is not available; use device auto or cpu")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX): bf16 is then faster."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a device, or None for full fp32."""
    if mode == "off":
        return None
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return None  # MPS: stay in fp32


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """The forward pass's autocast context for ``resolve_amp``'s dtype (None: full fp32, no autocast)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def needs_grad_scaler(device: torch.device, dtype: torch.dtype | None) -> bool:
    """fp16 on a GPU needs its loss scaled (bf16 and fp32 do not)."""
    return dtype == torch.float16 and device.type == "cuda"


def syncs_every_step(device: torch.device) -> bool:
    """Whether progress is read back after every step: free on a CPU, a stall of the queue on a GPU."""
    return device.type == "cpu"
