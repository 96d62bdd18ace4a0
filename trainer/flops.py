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
