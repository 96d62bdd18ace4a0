"""The tiny Qwen3 builds deterministically and loads offline in transformers and vLLM."""
from __future__ import annotations

import gc
import json

import pytest

from tests.conftest import need_module
from tracecause.chat import EMPTY_THINK, THINK_CLOSE, render
from tracecause.io import MARKER, completion_info, sha256_file
from tracecause.tiny import ADDED_TOKENS, TinySpec, build_tiny_model, main


def _digests(folder) -> dict:
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.name != MARKER}


def test_build_is_deterministic_and_seeded(tmp_path, tiny_model_dir):
    again = build_tiny_model(tmp_path / "again", seed=0)
    other = build_tiny_model(tmp_path / "other", seed=1)
    ref = _digests(tiny_model_dir)
    assert _digests(again) == ref
    differing = {k for k, v in _digests(other).items() if ref[k] != v}
    assert differing == {"model.safetensors"}  # the seed changes weights only, never the tokenizer
    assert completion_info(other)["seed"] == 1


def test_existing_folder_is_reused_or_refused(tmp_path):
    out = build_tiny_model(tmp_path / "m", seed=2)
    weights = out / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert build_tiny_model(out, seed=2) == out
    assert weights.stat().st_mtime_ns == stamp  # complete and identical: not rebuilt
    with pytest.raises(FileExistsError, match="overwrite"):
        build_tiny_model(out, seed=3)
    build_tiny_model(out, seed=3, overwrite=True)
    assert completion_info(out)["seed"] == 3


@pytest.mark.parametrize("vocab_size, match", [(100, "too small"), (5000, "choose vocab_size <=")])
def test_bad_vocab_size_fails_before_writing(tmp_path, vocab_size, match):
    with pytest.raises(ValueError, match=match):
        build_tiny_model(tmp_path / "m", vocab_size=vocab_size)
    assert not (tmp_path / "m").exists()
    assert not list(tmp_path.glob(".m.*"))


def test_cli_builds_the_folder(tmp_path, capsys):
    assert main([str(tmp_path / "cli"), "--seed", "4", "--vocab-size", "512"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "cli")
    info = completion_info(tmp_path / "cli")
    assert (info["seed"], info["vocab_size"]) == (4, 512)


def test_loads_offline_in_transformers(tiny_model_dir):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    spec = TinySpec()
    config = AutoConfig.from_pretrained(tiny_model_dir)
    assert config.architectures == ["Qwen3ForCausalLM"] and config.tie_word_embeddings
    assert config.head_dim >= 32 and config.vocab_size == spec.vocab_size
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert len(tok) == config.vocab_size
    assert (tok.eos_token, tok.pad_token, tok.bos_token) == ("<|im_end|>", "<|endoftext|>", None)
    assert config.eos_token_id == tok.eos_token_id and config.pad_token_id == tok.pad_token_id
    gen = GenerationConfig.from_pretrained(tiny_model_dir)
    assert gen.eos_token_id == [tok.eos_token_id, tok.pad_token_id]
    assert [t for t, _ in ADDED_TOKENS] == tok.convert_ids_to_tokens(list(range(len(tok) - len(ADDED_TOKENS), len(tok))))

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    n_params = sum(p.numel() for p in model.parameters())
    assert 1_000_000 < n_params < 25_000_000
    text = render(tok, [{"role": "user", "content": "Is tea good?"}], enable_thinking=False, add_generation_prompt=True)
    batch = tok(text, return_tensors="pt")
    out = model(**batch, labels=batch.input_ids)
    assert out.logits.shape == (1, batch.input_ids.shape[1], config.vocab_size)
    assert torch.isfinite(out.loss) and out.loss.item() > 0
    out.loss.backward()
    assert model.model.embed_tokens.weight.grad.abs().sum() > 0


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_generates_in_think_and_no_think_mode(tiny_model_dir):
    """vLLM loads the folder offline, and scores prompts exactly as transformers does."""
    need_module("vllm")
    import torch
    from transformers import AutoModelForCausalLM
    from vllm import LLM, SamplingParams

    llm = LLM(model=str(tiny_model_dir), enforce_eager=True, gpu_memory_utilization=0.1, dtype="float32",
              seed=0, max_model_len=512)
    try:
        tok = llm.get_tokenizer()
        question = [{"role": "user", "content": "What should I plant first?"}]
        prompts = {mode: render(tok, question, enable_thinking=mode == "think", add_generation_prompt=True)
                   for mode in ("think", "no_think")}
        params = SamplingParams(max_tokens=12, temperature=0.0, ignore_eos=True, prompt_logprobs=0)
        outs = dict(zip(prompts, llm.generate(list(prompts.values()), params)))
        close_id = tok.convert_tokens_to_ids(THINK_CLOSE)
        assert close_id in outs["no_think"].prompt_token_ids and close_id not in outs["think"].prompt_token_ids
        assert prompts["no_think"].endswith(EMPTY_THINK)
        for mode, out in outs.items():
            assert out.prompt_token_ids == tok(prompts[mode]).input_ids
            assert len(out.outputs[0].token_ids) == 12
            assert out.outputs[0].text == tok.decode(out.outputs[0].token_ids)
        hf = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        for out in outs.values():
            ids = out.prompt_token_ids
            with torch.no_grad():
                logp = hf(torch.tensor([ids])).logits[0].log_softmax(-1)
            expected = [logp[i - 1, ids[i]].item() for i in range(1, len(ids))]
            got = [next(iter(d.values())).logprob for d in out.prompt_logprobs[1:]]
            assert got == pytest.approx(expected, abs=1e-3)
            greedy = list(ids)
            for _ in range(3):  # plain argmax steps: vLLM's ignore_eos does not mask eos either
                with torch.no_grad():
                    greedy.append(int(hf(torch.tensor([greedy])).logits[0, -1].argmax()))
            assert greedy[len(ids):] == list(out.outputs[0].token_ids[:3])
    finally:
        del llm
        gc.collect()


def test_tokenizer_config_matches_qwen3_layout(tiny_model_dir):
    cfg = json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    assert cfg["tokenizer_class"] == "Qwen2Tokenizer"
    specials = {v["content"]: v["special"] for v in cfg["added_tokens_decoder"].values()}
    assert specials["<think>"] is False and specials["<|im_start|>"] is True
