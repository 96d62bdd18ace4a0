"""Device, precision and attention choices — explicit, logged, never a silent fallback."""
from __future__ import annotations

import importlib.util

import torch

# dense bf16 peak FLOP/s per device (model FLOPs only are credited against these)
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "A800": 312e12,
              "L40S": 362e12, "A10G": 125e12, "B200": 2250e12}


def use_cuda() -> bool:
    return torch.cuda.is_available()


def device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if use_cuda() else torch.device("cpu")


def choose_attention(requested: str) -> str:
    """``auto``: flash_attention_2 with a GPU and the package, else sdpa. Asking for flash where it
    cannot run is an error."""
    has_flash = importlib.util.find_spec("flash_attn") is not None
    if requested == "flash_attention_2":
        if not use_cuda():
            raise ValueError("train.attention=flash_attention_2 needs a CUDA GPU and none is visible; "
                             "use train.attention=sdpa (or auto)")
        if not has_flash:
            raise ValueError("train.attention=flash_attention_2 needs the flash-attn package (pip install "
                             "flash-attn); use train.attention=sdpa (or auto)")
        return requested
    if requested == "auto":
        return "flash_attention_2" if (use_cuda() and has_flash) else "sdpa"
    return requested


def precision() -> str:
    """bf16 on GPU; fp32 on CPU (recorded in the run folder and the export meta)."""
    return "bf16" if use_cuda() else "fp32"


def peak_flops() -> float | None:
    if not use_cuda():
        return None
    name = torch.cuda.get_device_name()
    for key, value in PEAK_FLOPS.items():
        if key in name:
            return value
    return None


def peak_memory_bytes() -> int:
    if use_cuda():
        return int(torch.cuda.max_memory_allocated())
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB


def device_name() -> str:
    return torch.cuda.get_device_name() if use_cuda() else "cpu"
