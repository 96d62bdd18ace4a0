"""What the planner needs to know about each model: architecture, size, where to get it.

``configs/models/<name>.yaml`` holds one ``ModelSpec`` per model. Parameter counts are
stated in the YAML *and* derived from the architecture (``count_params``); loading fails if
they disagree, so a typo in a layer count cannot silently skew memory plans or MFU.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from tracecause.config import load, one_of

LOCAL_BUILDERS = (None, "tiny")
_PARAM_TOLERANCE = 0.001  # stated vs derived parameter counts may differ by rounding only


def _required(*, ge: int | None = 1, help: str = "") -> Any:
    """A field every model YAML must set (no default), checked to be >= ``ge`` on load."""
    return dataclasses.field(metadata={"help": help} if ge is None else {"ge": ge, "help": help})


@dataclass(frozen=True)
class ModelSpec:
    """One model. Exactly one of ``hub_id`` (download) or ``local_builder`` (build here) is set."""

    name: str
    n_layers: int = _required(help="decoder layers")
    hidden_size: int = _required()
    intermediate_size: int = _required(help="MLP width (SwiGLU: gate, up, down)")
    n_heads: int = _required(help="query heads")
    n_kv_heads: int = _required(help="key/value heads (GQA)")
    head_dim: int = _required(ge=32, help="vLLM's attention kernels need head_dim >= 32")
    vocab_size: int = _required(help="embedding rows (can exceed the tokenizer's size)")
    tied_embeddings: bool = _required(ge=None)
    max_position_embeddings: int = _required()
    n_params: int = _required(help="total unique parameters (tied embedding counted once)")
    largest_layer_params: int = _required(help="largest tensor group gathered at once under ZeRO-3")
    hub_id: Optional[str] = None
    revision: Optional[str] = None
    local_builder: Optional[str] = one_of(None, LOCAL_BUILDERS, help="'tiny': tracecause.tiny.build_tiny_model")
    dtype: str = one_of("bfloat16", ("bfloat16", "float16", "float32"), help="dtype of the released weights")

    def validate(self) -> None:
        if (self.hub_id is None) == (self.local_builder is None):
            raise ValueError("set exactly one of hub_id (a Hugging Face repo) or local_builder ('tiny')")
        if self.hub_id is not None and not self.revision:
            raise ValueError(f"hub_id {self.hub_id!r} needs a pinned revision (a commit hash)")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads}")
        for field, derived in (("n_params", count_params(self)), ("largest_layer_params", largest_layer(self))):
            stated = getattr(self, field)
            if abs(stated - derived) > _PARAM_TOLERANCE * derived:
                raise ValueError(f"{field}={stated:,} disagrees with the architecture, which gives {derived:,}; "
                                 f"fix the number or the layer sizes")

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim


# ----------------------------------------------------------------------------- parameter counts


def layer_params(spec: ModelSpec) -> int:
    """One Qwen3 decoder layer: q/k/v/o projections (no bias), q/k RMSNorms, SwiGLU MLP, 2 RMSNorms."""
    attention = spec.hidden_size * (2 * spec.q_dim + 2 * spec.kv_dim) + 2 * spec.head_dim
    mlp = 3 * spec.hidden_size * spec.intermediate_size
    return attention + mlp + 2 * spec.hidden_size


def embedding_params(spec: ModelSpec) -> int:
    return spec.vocab_size * spec.hidden_size


def count_params(spec: ModelSpec) -> int:
    """Unique parameters: embedding, layers, final norm, and the LM head unless tied."""
    head = 0 if spec.tied_embeddings else embedding_params(spec)
    return embedding_params(spec) + spec.n_layers * layer_params(spec) + spec.hidden_size + head


def non_embedding_params(spec: ModelSpec) -> int:
    """What Qwen's model cards call "non-embedding" parameters (layers and final norm)."""
    return spec.n_layers * layer_params(spec) + spec.hidden_size


def largest_layer(spec: ModelSpec) -> int:
    """Largest group ZeRO-3 gathers at once: a decoder layer or the embedding matrix."""
    return max(layer_params(spec), embedding_params(spec))


# ----------------------------------------------------------------------------- compute and memory


def matmul_params(spec: ModelSpec) -> int:
    """Parameters a token multiplies through: all layers plus the LM head (the input lookup is free)."""
    return non_embedding_params(spec) + embedding_params(spec)


def flops_per_token(spec: ModelSpec, seq_len: int, *, causal: bool = True) -> float:
    """Training FLOPs per token (forward + backward) for MFU.

    ``6·N`` for the weight matmuls (N = ``matmul_params``: forward 2·N, backward 4·N) plus the
    attention score/value matmuls ``12·L·d·T`` with d = n_heads·head_dim and T = ``seq_len``,
    halved with causal masking (only the lower triangle is computed by flash attention).
    Gradient-checkpointing recomputation is deliberately not counted (MFU credits model FLOPs only).
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    attention = 12 * spec.n_layers * spec.q_dim * seq_len
    return 6 * matmul_params(spec) + (attention / 2 if causal else attention)


def zero3_state_bytes_per_gpu(spec: ModelSpec, world_size: int, *, offload_optimizer: bool = False) -> float:
    """DeepSpeed's ZeRO-3 model-state estimate per GPU (weights, grads, Adam), activations excluded.

    ``4·largest + 18·P / GPUs`` without offload; ``4·largest + 2·P / GPUs`` with the optimizer on CPU.
    """
    from tracecause.memory import zero3_model_state_bytes  # the one copy of the formula

    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    return float(zero3_model_state_bytes(spec.n_params, spec.largest_layer_params, world_size, offload_optimizer))


def hf_config_from_spec(spec: ModelSpec):
    """A ``transformers.Qwen3Config`` with the spec's exact shape (random-init benchmarks, live checks)."""
    from transformers import Qwen3Config

    return Qwen3Config(vocab_size=spec.vocab_size, hidden_size=spec.hidden_size,
                       intermediate_size=spec.intermediate_size, num_hidden_layers=spec.n_layers,
                       num_attention_heads=spec.n_heads, num_key_value_heads=spec.n_kv_heads, head_dim=spec.head_dim,
                       tie_word_embeddings=spec.tied_embeddings, max_position_embeddings=spec.max_position_embeddings)


# ----------------------------------------------------------------------------- loading


def load_model_spec(name: str, overrides: tuple[str, ...] | list[str] = ()) -> ModelSpec:
    """``load_model_spec("qwen3-14b")`` reads ``configs/models/qwen3-14b.yaml`` (or a YAML path)."""
    from configs import config_path

    path = config_path("models", name)
    return load(ModelSpec, [path], overrides)


def spec_from_hf_config(config: Mapping[str, Any], *, name: str, hub_id: str | None = None,
                        revision: str | None = None, local_builder: str | None = None) -> ModelSpec:
    """A ModelSpec from a checkpoint's ``config.json`` (to check a folder against its YAML)."""
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    arch = dict(
        name=name, n_layers=config["num_hidden_layers"], hidden_size=hidden,
        intermediate_size=config["intermediate_size"], n_heads=heads,
        n_kv_heads=config.get("num_key_value_heads") or heads, head_dim=config.get("head_dim") or hidden // heads,
        vocab_size=config["vocab_size"], tied_embeddings=bool(config.get("tie_word_embeddings", False)),
        max_position_embeddings=config["max_position_embeddings"], hub_id=hub_id, revision=revision,
        local_builder=local_builder,
    )
    draft = ModelSpec(**arch, n_params=0, largest_layer_params=0)
    return dataclasses.replace(draft, n_params=count_params(draft), largest_layer_params=largest_layer(draft))
