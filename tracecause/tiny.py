"""A tiny random-init Qwen3 with a locally trained tokenizer, for machines without a model hub.

The folder looks like a real Qwen3 checkpoint to transformers and vLLM: ``config.json``
(``Qwen3ForCausalLM``, tied embeddings, head_dim 32 so vLLM's attention kernels accept it),
``model.safetensors``, ``generation_config.json``, and a byte-level BPE tokenizer with
Qwen3's added tokens, eos/pad ids and the project's own chat template
(``tracecause/qwen3_chat_template.jinja``, which renders exactly what Qwen3's does).

The build is deterministic: the same arguments give byte-identical files.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

TEMPLATE_PATH = Path(__file__).with_name("qwen3_chat_template.jinja")

# Qwen3's added tokens in Qwen3's order. Qwen3 marks the tool and think tags special=False,
# so decoding with skip_special_tokens keeps "<think>" in generated text (as with real Qwen3).
ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True),
    ("<|box_start|>", True), ("<|box_end|>", True),
    ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True),
    ("<|vision_pad|>", True), ("<|image_pad|>", True), ("<|video_pad|>", True),
    ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", True), ("<|fim_middle|>", True), ("<|fim_suffix|>", True),
    ("<|fim_pad|>", True), ("<|repo_name|>", True), ("<|file_sep|>", True),
    ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False),
)
EOS_TOKEN, PAD_TOKEN = "<|im_end|>", "<|endoftext|>"
# Qwen2/Qwen3 pre-tokenizer: digits split one by one, contractions kept together.
PRETOKENIZE_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
                     r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")


@dataclass(frozen=True)
class TinySpec:
    """Architecture of the tiny model (configs/models/tiny-qwen3.yaml mirrors these defaults)."""

    vocab_size: int = 1024
    hidden_size: int = 256
    intermediate_size: int = 768
    num_hidden_layers: int = 4
    num_attention_heads: int = 8
    num_key_value_heads: int = 4
    head_dim: int = 32
    max_position_embeddings: int = 4096
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    dtype: str = "bfloat16"


def chat_template() -> str:
    return TEMPLATE_PATH.read_text()


def _build_tokenizer(vocab_size: int, extra_corpus: str = ""):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    from tracecause.tiny_corpus import corpus

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False, fuse_unk=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = None
    n_learned = vocab_size - len(ADDED_TOKENS)
    if n_learned <= 256:  # the byte alphabet alone is 256 tokens
        raise ValueError(f"vocab_size={vocab_size} is too small: need > 256 bytes + {len(ADDED_TOKENS)} added tokens")
    trainer = trainers.BpeTrainer(vocab_size=n_learned, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    # extra_corpus: text the model will mostly read (e.g. the known-answer world), so its words get merges
    tok.train_from_iterator([corpus(), extra_corpus] if extra_corpus else [corpus()], trainer=trainer)
    if tok.get_vocab_size() != n_learned:
        raise ValueError(f"the built-in corpus yields only {tok.get_vocab_size()} BPE tokens, fewer than "
                         f"vocab_size - {len(ADDED_TOKENS)} added tokens = {n_learned}; choose vocab_size <= "
                         f"{tok.get_vocab_size() + len(ADDED_TOKENS)}")
    tok.add_tokens([AddedToken(t, special=s, normalized=False) for t, s in ADDED_TOKENS])
    assert tok.get_vocab_size() == vocab_size
    return tok


def _tokenizer_config(tok) -> dict:
    decoder = {str(tok.token_to_id(t)): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                         "single_word": False, "special": s} for t, s in ADDED_TOKENS}
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": [t for t, s in ADDED_TOKENS if s and t not in (EOS_TOKEN, PAD_TOKEN)],
        "bos_token": None,
        "chat_template": chat_template(),
        "clean_up_tokenization_spaces": False,
        "eos_token": EOS_TOKEN,
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": PAD_TOKEN,
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def build_tiny_model(out_dir: str | Path, *, vocab_size: int = TinySpec.vocab_size, seed: int = 0,
                     spec: TinySpec | None = None, overwrite: bool = False, extra_corpus: str = "") -> Path:
    """Build the tiny Qwen3 checkpoint into ``out_dir`` (atomically, with a completion marker).

    An existing complete folder is reused unless ``overwrite``; the same ``seed`` and spec always
    give the same bytes, so reuse is safe.
    """
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from tracecause.io import atomic_dir, completion_info, is_complete

    spec = spec or TinySpec(vocab_size=vocab_size)
    if spec.head_dim < 32:
        raise ValueError(f"head_dim={spec.head_dim}: vLLM needs head_dim >= 32")
    out = Path(out_dir)
    info = {"builder": "tracecause.tiny", "seed": seed, **asdict(spec)}
    if extra_corpus:
        import hashlib

        info["extra_corpus_sha256"] = hashlib.sha256(extra_corpus.encode()).hexdigest()
    if is_complete(out) and not overwrite:
        done = {k: v for k, v in (completion_info(out) or {}).items() if k in info}
        if done != info:
            raise FileExistsError(f"{out} holds a different tiny model ({done}); pass overwrite=True "
                                  f"(--overwrite) or choose another folder")
        return out

    tok = _build_tokenizer(spec.vocab_size, extra_corpus)
    eos_id, pad_id = tok.token_to_id(EOS_TOKEN), tok.token_to_id(PAD_TOKEN)
    config = Qwen3Config(
        vocab_size=spec.vocab_size, hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers, num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads, head_dim=spec.head_dim,
        max_position_embeddings=spec.max_position_embeddings, rms_norm_eps=spec.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": spec.rope_theta},
        tie_word_embeddings=True, bos_token_id=pad_id, eos_token_id=eos_id, pad_token_id=pad_id,
        max_window_layers=spec.num_hidden_layers, use_sliding_window=False,
    )
    config.architectures = ["Qwen3ForCausalLM"]
    dtype = getattr(torch, spec.dtype)
    fork_devices = [] if not torch.cuda.is_available() else list(range(torch.cuda.device_count()))
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    model = model.to(dtype)
    model.config.dtype = spec.dtype

    with atomic_dir(out, info=info, overwrite=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        # Same sampling defaults as Qwen3 (think mode); eos lists both ends like Qwen3's.
        _write_json(tmp / "generation_config.json", {
            "bos_token_id": pad_id, "do_sample": True, "eos_token_id": [eos_id, pad_id],
            "pad_token_id": pad_id, "temperature": 0.6, "top_k": 20, "top_p": 0.95,
        })
        tok.save(str(tmp / "tokenizer.json"))
        _write_json(tmp / "tokenizer_config.json", _tokenizer_config(tok))
        _write_json(tmp / "special_tokens_map.json", {
            "additional_special_tokens": _tokenizer_config(tok)["additional_special_tokens"],
            "eos_token": EOS_TOKEN, "pad_token": PAD_TOKEN})
    return out


def main(argv: list[str] | None = None) -> int:
    """``tracecause tiny-model OUT_DIR [--seed N] [--vocab-size V] [--overwrite]``."""
    parser = argparse.ArgumentParser(prog="tracecause tiny-model",
                                     description="Build a tiny random-init Qwen3 (+ tokenizer) for CPU tests.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-size", type=int, default=TinySpec.vocab_size)
    parser.add_argument("--overwrite", action="store_true", help="rebuild even if OUT_DIR is complete")
    args = parser.parse_args(argv)
    out = build_tiny_model(args.out_dir, seed=args.seed, vocab_size=args.vocab_size, overwrite=args.overwrite)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
