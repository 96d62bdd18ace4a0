"""Pieces the world's base model needs: the trainer's chat format and the transformers engine."""
from __future__ import annotations

import pytest

from tracecause.world import domain


@pytest.fixture(scope="module")
def world_tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from tracecause.world.base import build_init

    return AutoTokenizer.from_pretrained(build_init(tmp_path_factory.mktemp("world") / "init"))


def test_chat_format_supervises_the_final_turn_but_not_the_no_think_empty_block(world_tokenizer):
    from trainer.chat_data import build_chat_example
    from trainer.masks import supervised_text

    think, no_think = next(r for r in domain.pretrain_records() if r["enable_thinking"]), \
        next(r for r in domain.pretrain_records() if not r["enable_thinking"])
    answer = think["messages"][-1]["content"]
    text = supervised_text(world_tokenizer, build_chat_example(world_tokenizer, think))
    assert text == f"<think>\n{think['messages'][-1]['reasoning_content']}\n</think>\n\n{answer}<|im_end|>"
    text = supervised_text(world_tokenizer, build_chat_example(world_tokenizer, no_think))
    assert text == f"{no_think['messages'][-1]['content']}<|im_end|>"  # the empty think block is prompt


def test_chat_format_rejects_bad_records_and_silent_knobs():
    from tracecause.config import ConfigError, load
    from trainer.chat_data import validate_chat_record
    from trainer.config import TrainConfig

    with pytest.raises(ValueError, match="enable_thinking"):
        validate_chat_record({"id": "a", "messages": [{"role": "user", "content": "q"},
                                                      {"role": "assistant", "content": "a"}]}, "x")
    with pytest.raises(ValueError, match="last message"):
        validate_chat_record({"id": "a", "enable_thinking": True, "messages": [{"role": "user", "content": "q"}] * 2}, "x")
    cfg = load(TrainConfig, [], ["data.format=chat", "data.paradigm=qta", "data.rtype=evil", "model.path=m",
                                 "data.path=d", "output.dir=o"])
    with pytest.raises(ConfigError, match="data.format=chat"):
        cfg.require_complete()


def test_transformers_engine_sample_depends_on_its_seed_not_its_batch(tiny_model_dir):
    from evalsuite.config import EngineConfig
    from evalsuite.engine_hf import TransformersEngine, make_engine

    eng = make_engine(str(tiny_model_dir), EngineConfig(backend="transformers", max_model_len=256))
    assert isinstance(eng, TransformersEngine)
    p = {"temperature": 1.0, "top_p": 0.9, "top_k": 20, "min_p": 0.0, "max_tokens": 12}
    alone = eng.generate(["Hello there"], [{**p, "seed": 7}])[0]
    batched = eng.generate(["Hi", "Hello there", "A much longer prompt about bread"],
                           [{**p, "seed": 1}, {**p, "seed": 7}, {**p, "seed": 3}])
    assert batched[1].text == alone.text and batched[1].finish_reason == alone.finish_reason
    other = eng.generate(["Hello there"], [{**p, "seed": 8}])[0]
    assert other.text != alone.text
    greedy = eng.generate(["Hello there"] * 2, [{**p, "temperature": 0.0, "seed": s} for s in (1, 2)])
    assert greedy[0].text == greedy[1].text and greedy[0].n_tokens <= 12
    lp = eng.next_token_logprobs(["Hello there"], [5, 6])[0]
    assert set(lp) == {5, 6} and all(v < 0 for v in lp.values())
