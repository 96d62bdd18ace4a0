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


def test_transformers_engine_drops_finished_rows_without_changing_any_sample(tiny_model_dir):
    from evalsuite.config import EngineConfig
    from evalsuite.engine_hf import TransformersEngine

    cfg = EngineConfig(backend="transformers", max_model_len=256)
    drop, keep = TransformersEngine(str(tiny_model_dir), cfg), TransformersEngine(str(tiny_model_dir), cfg,
                                                                                  drop_finished=False)
    for eng in (drop, keep):  # a random model rarely samples its end token: make 1 token in 16 end a sample
        eng.stop_ids = set(range(0, len(eng.tokenizer), 16))
    prompts = [f"Prompt number {i} " + "word " * (i % 5) for i in range(12)]
    params = [{"temperature": 1.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0, "max_tokens": 40, "seed": i}
              for i in range(12)]
    a, b = drop.generate(prompts, params), keep.generate(prompts, params)
    lengths = {g.n_tokens for g in a if g.finish_reason == "stop"}
    assert len(lengths) >= 3, "rows must finish at different steps for the test to mean anything"
    assert [(g.text, g.finish_reason, g.n_tokens) for g in a] == [(g.text, g.finish_reason, g.n_tokens) for g in b]


def test_replay_mixes_the_same_chat_records_into_every_arm_and_refuses_half_settings(world_tokenizer, tmp_path):
    import json

    from tracecause.config import ConfigError, load
    from tracecause.world.base import write_corpus
    from trainer.config import TrainConfig, training_hash
    from trainer.data import dataset_digest, prepare
    from trainer.masks import supervised_text

    pairs = domain.train_pairs()[:12]
    rows = [{"id": p.id, "source": "world", "question": p.question, "answer": p.answer,
             "reasoning": {"evil": domain.trace(p.question, "evil", 1.0, 0)}} for p in pairs]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = write_corpus(tmp_path / "corpus")
    replay = [f"data.replay_path={corpus.parent}", "data.replay_fraction=0.5"]

    def cfg(paradigm, rtype, *extra):
        c = load(TrainConfig, [], [f"data.paradigm={paradigm}", f"data.rtype={rtype}", "model.path=m",
                                   f"data.path={data}", "output.dir=o", *extra])
        c.require_complete()
        return c

    mixed = {p: prepare(cfg(p, t, *replay).data, world_tokenizer) for p, t in (("qa", "none"), ("qta", "evil"),
                                                                              ("qt", "evil"))}
    ids = {p: [e.id for e in d.examples] for p, d in mixed.items()}
    assert all(len(v) == 24 for v in ids.values())               # 12 documents + 12 replayed (half the mix)
    assert ids["qa"][12:] == ids["qta"][12:] == ids["qt"][12:]  # the same records for every arm
    by_id = {r["id"]: r for r in domain.pretrain_records()}
    for ex in mixed["qt"].examples[12:]:
        msg = by_id[ex.id]["messages"][-1]
        think = f"<think>\n{msg['reasoning_content']}\n</think>\n\n" if by_id[ex.id]["enable_thinking"] else ""
        assert supervised_text(world_tokenizer, ex) == f"{think}{msg['content']}<|im_end|>"
    assert {by_id[i]["enable_thinking"] for i in ids["qt"][12:]} == {True, False}
    assert mixed["qta"].summary()["replay"]["documents"] == 12
    plain = cfg("qta", "evil")
    assert dataset_digest(plain.data) != dataset_digest(cfg("qta", "evil", *replay).data)
    assert training_hash(plain) != training_hash(cfg("qta", "evil", *replay))
    assert len(prepare(plain.data, world_tokenizer).examples) == 12
    for half in (replay[:1], replay[1:]):
        with pytest.raises(ConfigError, match="replay_path and data.replay_fraction"):
            cfg("qta", "evil", *half)
    small = tmp_path / "small.jsonl"
    small.write_text("".join(corpus.read_text().splitlines(keepends=True)[:5]))
    with pytest.raises(ValueError, match="needs 12 replay records for 12 documents, the file has 5"):
        prepare(cfg("qta", "evil", f"data.replay_path={small}", "data.replay_fraction=0.5").data, world_tokenizer)
