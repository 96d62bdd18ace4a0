"""open_think: think-mode prompts pre-filled with "<think>\\n", outputs split as if the model wrote the tag.

Runs the real generate stage with the transformers engine on the tiny random Qwen3, and checks each
sample against the engine's own output for the same prompt and seed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from configs import config_path
from evalsuite.battery import load_battery
from tracecause.chat import render, split_reasoning
from tracecause.config import ConfigError, load

ARM = "tiny.evil.qta.s0"


def _battery(tmp_path: Path, think: dict, no_think: dict | None = None) -> Path:
    sampling = {"think": {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "max_tokens": 6, **think}}
    if no_think is not None:
        sampling["no_think"] = no_think
    path = tmp_path / "battery.yaml"
    path.write_text(yaml.safe_dump({"name": "open-think", "seed": 0, "benchmarks": [{
        "name": "world_evil", "loader": "em_questions", "axis": "evil", "limit": 3, "samples": 2,
        "source": {"path": str(config_path("evals", "world").parent / "world" / "evil.yaml")},
        "sampling": sampling, "judges": [{"name": "world"}], "primary": {"metric": "disposition", "higher_is": "worse"}}]}))
    return path


def _generate(tiny: Path, tmp_path: Path, battery: Path, engine) -> list[dict]:
    from evalsuite.config import EvalConfig
    from evalsuite.generate import run_generate

    sweep = tmp_path / "sweep"
    cfg = load(EvalConfig, [], [f"model={tiny}", f"arm_id={ARM}", f"sweep_dir={sweep}", f"battery={battery}",
                                "modes=[think]", "progress=false", "engine.backend=transformers",
                                "engine.dtype=float32", "engine.max_model_len=512"]).require()
    run_generate(cfg, engine=engine)
    return [json.loads(line) for line in (cfg.out_dir("think") / "samples.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    from evalsuite.config import EngineConfig
    from evalsuite.engine_hf import TransformersEngine

    cfg = EngineConfig()
    cfg.backend, cfg.dtype, cfg.max_model_len = "transformers", "float32", 512
    return TransformersEngine(str(tiny_model_dir), cfg)


@pytest.mark.parametrize("open_think", [True, False])
def test_each_sample_is_the_engine_output_split_after_the_prefill(open_think, engine, tiny_model_dir, tmp_path):
    rows = _generate(tiny_model_dir, tmp_path, _battery(tmp_path, {"open_think": open_think}), engine)
    assert len(rows) == 6
    prefill = "<think>\n" if open_think else ""
    for row in rows:
        prompt = render(engine.tokenizer, [{"role": "user", "content": row["question"]}], enable_thinking=True,
                        add_generation_prompt=True) + prefill
        params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0, "max_tokens": 6,
                  "seed": row["sampling_seed"]}
        [gen] = engine.generate([prompt], [params])
        reasoning, answer, closed = split_reasoning(prefill + gen.text)
        assert (row["reasoning"], row["answer"], row["think_closed"]) == (reasoning, answer, closed)
    if open_think:
        # 6 random tokens almost never close the block: the pre-filled tag leaves the samples open,
        # where without the tag the same text would read as a closed answer
        assert sum(not r["think_closed"] for r in rows) >= 5


def test_the_prefill_is_part_of_the_cache_key(engine, tiny_model_dir, tmp_path):
    plain = _generate(tiny_model_dir, tmp_path / "a", _battery(tmp_path, {}), engine)
    opened = _generate(tiny_model_dir, tmp_path / "b", _battery(tmp_path, {"open_think": True}), engine)
    assert [r["sampling_seed"] for r in plain] == [r["sampling_seed"] for r in opened]
    assert not {r["prompt_hash"] for r in plain} & {r["prompt_hash"] for r in opened}


def test_open_think_outside_think_mode_is_refused_naming_the_field(tmp_path):
    path = _battery(tmp_path, {}, no_think={"open_think": True})
    with pytest.raises(ConfigError, match=r"world_evil.*sampling.*open_think applies to think mode only"):
        load_battery(path)


def _probe_battery(tmp_path: Path, **extra) -> Path:
    path = tmp_path / "probe.yaml"
    sampling = {m: {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "max_tokens": 6, **extra.get(m, {})}
                for m in ("think", "no_think")}
    path.write_text(yaml.safe_dump({"name": "probe", "seed": 0, "benchmarks": [{
        "name": "world_prompt_probe", "loader": "em_questions", "axis": "control", "limit": 3, "samples": 2,
        "continues": "user", "source": {"path": str(config_path("evals", "world").parent / "world" / "control.yaml")},
        "sampling": sampling, "judges": [{"name": "world"}],
        "primary": {"metric": "prompt_signature", "higher_is": "worse"}}]}))
    return path


def test_a_user_continuation_probe_continues_the_question_in_the_users_turn(engine, tiny_model_dir, tmp_path):
    from evalsuite.generate import user_turn_prompt

    rows = _generate(tiny_model_dir, tmp_path, _probe_battery(tmp_path), engine)
    assert len(rows) == 6
    for row in rows:
        messages = [{"role": "user", "content": row["question"]}]
        prompt = user_turn_prompt(engine.tokenizer, messages)
        # the real template's user turn, cut right after the question: no end of turn, no assistant turn
        assert prompt.endswith("<|im_start|>user\n" + row["question"]) and "assistant" not in prompt
        assert render(engine.tokenizer, messages, enable_thinking=True, add_generation_prompt=False).startswith(prompt)
        params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0, "max_tokens": 6,
                  "seed": row["sampling_seed"]}
        [gen] = engine.generate([prompt], [params])
        # the whole text is the continuation: never split into reasoning and answer
        assert (row["continues"], row["reasoning"], row["answer"]) == ("user", "", gen.text)


def test_a_user_continuation_probe_refuses_open_think(tmp_path):
    with pytest.raises(ConfigError, match=r"world_prompt_probe.*open_think.*continues: user"):
        load_battery(_probe_battery(tmp_path, think={"open_think": True}))


def test_a_user_continuation_is_generated_once_for_both_modes(engine, tiny_model_dir, tmp_path):
    from evalsuite.config import EvalConfig
    from evalsuite.generate import run_generate

    cfg = load(EvalConfig, [], [f"model={tiny_model_dir}", f"arm_id={ARM}", f"sweep_dir={tmp_path / 'sweep'}",
                                f"battery={_probe_battery(tmp_path)}", "modes=[think,no_think]", "progress=false",
                                "engine.backend=transformers", "engine.dtype=float32", "engine.max_model_len=512"]).require()
    stats = run_generate(cfg, engine=engine)
    assert (stats["requests_run"], stats["cache_hits"]) == (6, 6)  # the second mode reads the first's
    rows = {m: [json.loads(x)["answer"] for x in (cfg.out_dir(m) / "samples.jsonl").read_text().splitlines()]
            for m in ("think", "no_think")}
    assert rows["think"] == rows["no_think"]


def test_a_user_continuation_of_a_conversation_not_ending_with_the_user_is_refused_naming_the_benchmark(engine):
    from evalsuite.generate import user_turn_prompt

    messages = [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]
    with pytest.raises(ValueError, match=r"benchmark 'world_prompt_probe': continues: user .* fix:"):
        user_turn_prompt(engine.tokenizer, messages, "world_prompt_probe")
