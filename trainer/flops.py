"""Model FLOPs per token for MFU: 6·N plus the causal attention term 6·L·d·T (half of 12·L·d·T).

Uses ``tracecause.models.flops_per_token`` when that shared module exists, so that every stage
counts the same way; otherwise computes from the Hugging Face config. Gradient checkpointing's
recomputation is not credited (MFU, not HFU).
"""
from __future__ import annotations


def non_embedding_params(hf_config) -> int:
    d, L = hf_config.hidden_size, hf_config.num_hidden_layers
    heads, kv = hf_config.num_attention_heads, getattr(hf_config, "num_key_value_heads", hf_config.num_attention_heads)
    hd = getattr(hf_config, "head_dim", None) or d // heads
    attn = d * heads * hd + 2 * d * kv * hd + heads * hd * d
    mlp = 3 * d * hf_config.intermediate_size
    return L * (attn + mlp)


def flops_per_token(hf_config, seq_len: int) -> float:
    try:
        from tracecause import models

        spec = models.spec_from_hf_config(hf_config.to_dict(), name="trained")
        return float(models.flops_per_token(spec, max(1, seq_len)))
    except (ImportError, AttributeError):  # the shared module predates these helpers
        pass
    n = non_embedding_params(hf_config) + hf_config.vocab_size * hf_config.hidden_size  # lm_head matmul counts
    return 6.0 * n + 6.0 * hf_config.num_hidden_layers * hf_config.hidden_size * seq_len


def mfu(tokens_per_s_per_device: float, flops_token: float, peak: float | None) -> float | None:
    if not peak:
        return None
    return tokens_per_s_per_device * flops_token / peak


# Dense bf16 peak FLOP/s (no sparsity) per device, from the vendors' datasheets. Form factors differ
# a lot (H100 PCIe has ~76 % of the SXM part's peak), so matching "H100" alone would overstate the
# peak of a PCIe/NVL card and understate its MFU. Order matters: the first pattern that matches wins.
PEAK_BF16_DENSE = (
    ("GH200", 989e12),           # Grace Hopper's H100/H200 GPU (before "H200": the name contains it)
    ("H100 NVL", 835e12),        # H100 NVL 94 GB (datasheet: 1,671 TFLOP/s with sparsity)
    ("H100 PCIe", 756e12),       # H100 PCIe 80 GB (1,513 with sparsity)
    ("H100", 989e12),            # H100 SXM5 80 GB, "NVIDIA H100 80GB HBM3" (1,979 with sparsity)
    ("H200 NVL", 835e12),        # H200 NVL, PCIe form factor (1,671 with sparsity)
    ("H200", 989e12),            # H200 SXM 141 GB (1,979 with sparsity)
    ("H800 PCIe", 756e12),
    ("H800", 989e12),
    ("B200", 2250e12),           # HGX B200: 2.25 PFLOP/s dense bf16 (4.5 with sparsity)
    ("A100-SXM4-80GB", 312e12),  # A100 40 GB and 80 GB, SXM and PCIe: all 312 dense (624 with sparsity)
    ("A100-SXM4-40GB", 312e12),
    ("A100-PCIE-80GB", 312e12),
    ("A100-PCIE-40GB", 312e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),            # 733 with sparsity
    ("L40", 181e12),             # 362 with sparsity (before "L4": the name contains it)
    ("L4", 121e12),              # 242 with sparsity
)


def peak_flops_for(device_name: str) -> float | None:
    """Dense bf16 peak of a device named like ``torch.cuda.get_device_name()`` (None: unknown part)."""
    for pattern, value in PEAK_BF16_DENSE:
        if pattern.lower() in device_name.lower():
            return value
    return None
