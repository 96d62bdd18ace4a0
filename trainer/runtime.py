"""Device, precision and attention choices — explicit, logged, never a silent fallback."""
from __future__ import annotations

import importlib.util

import torch



def use_cuda() -> bool:
    return torch.cuda.is_available()


def device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if use_cuda() else torch.device("cpu")


def choose_attention(requested: str) -> str:
    """``auto``: flash_attention_2 with a GPU and the package, else flex_attention on a GPU (block
    document mask, compiled), else sdpa. Asking for a backend where it cannot run is an error."""
    has_flash = importlib.util.find_spec("flash_attn") is not None
    if requested == "flex_attention" and not use_cuda():
        raise ValueError("train.attention=flex_attention trains only on a GPU (PyTorch has no flex-attention "
                         "backward on CPU); use train.attention=sdpa (or auto)")
    if requested == "flash_attention_2":
        if not use_cuda():
            raise ValueError("train.attention=flash_attention_2 needs a CUDA GPU and none is visible; "
                             "use train.attention=sdpa (or auto)")
        if not has_flash:
            raise ValueError("train.attention=flash_attention_2 needs the flash-attn package (pip install "
                             "flash-attn); use train.attention=sdpa (or auto)")
        return requested
    if requested == "auto":
        if use_cuda():
            return "flash_attention_2" if has_flash else "flex_attention"
        return "sdpa"
    return requested


def check_loss(requested: str) -> None:
    """``liger`` needs its package and a GPU (Triton kernels); say so before any process group exists."""
    if requested != "liger":
        return
    if not use_cuda():
        raise ValueError("train.loss=liger runs Triton kernels on a GPU and none is visible; use train.loss=chunked")
    if importlib.util.find_spec("liger_kernel") is None:
        raise ValueError("train.loss=liger needs the liger-kernel package (pip install liger-kernel); "
                         "use train.loss=chunked (same memory profile, plain PyTorch)")


def precision() -> str:
    """bf16 on GPU; fp32 on CPU (recorded in the run folder and the export meta)."""
    return "bf16" if use_cuda() else "fp32"


def peak_flops() -> float | None:
    if not use_cuda():
        return None
    from .flops import peak_flops_for  # dense bf16 per form factor (model FLOPs only are credited)

    return peak_flops_for(torch.cuda.get_device_name())


def peak_memory_bytes() -> int:
    if use_cuda():
        return int(torch.cuda.max_memory_allocated())
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB


def device_name() -> str:
    return torch.cuda.get_device_name() if use_cuda() else "cpu"
