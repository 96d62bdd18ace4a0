"""Caches hold only valid replies: an error dressed as a completion is retried, never cached; a cached
value that fails validation is dropped and asked again (judge stage and datagen's shard journal).

Each HTTP test talks to a scripted OpenAI-compatible server on 127.0.0.1 (tests/loopback_openai.py)."""
from __future__ import annotations

import hashlib
import json

import pytest

from faults.endpoint import ERROR_COMPLETIONS, judge_verdict
from tests.loopback_openai import LoopbackOpenAI
from tracecause.config import load
from tracecause.http_retry import MalformedReply, completion_choices
from tracecause.journal import ResultJournal

ARM = "tiny.evil.qta.s0"
GARBAGE = [73, "Error: the upstream model is unavailable (503)", None, ["x"]]


def verdicts(prompt: str, seed, index: int) -> str:
    """Every rubric parses it; values follow the prompt, so a re-asked (retry-note) prompt differs."""
    return judge_verdict(hashlib.sha256(prompt.encode()).hexdigest())


def _choice(content, finish="stop", **extra) -> dict:
    return {"choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content},
                         **extra}]}


# ---------------------------------------------------------------- what counts as an answer

@pytest.mark.parametrize("payload", [
    _choice(73), _choice(["a"]), _choice({"text": "a"}), _choice("Error: upstream down", finish="error"),
    _choice("", finish="abort"), _choice("partial", error={"message": "upstream died"}),
    {"error": {"message": "overloaded"}, "choices": []}, *ERROR_COMPLETIONS.values(),
    {"object": "error", "message": "The model is overloaded", "type": "ServiceUnavailable", "code": 503},
    [], {"choices": []}, {"choices": ["x"]}, {"choices": [{"index": 0}]},
])
def test_errors_dressed_as_completions_are_malformed(payload):
    with pytest.raises(MalformedReply):
        completion_choices(payload)


def test_ordinary_completions_are_answers():
    assert completion_choices(_choice("Score: 40")) == [("Score: 40", "stop")]
    assert completion_choices(_choice(None, finish="length")) == [("", "length")]  # an empty answer, not an error
    two = {"choices": [{"index": 1, "message": {"content": "b"}}, {"index": 0, "message": {"content": "a"}}]}
    assert completion_choices(two, n=2) == [("a", "stop"), ("b", "stop")]
    with pytest.raises(MalformedReply):
        completion_choices(two, n=3)


# ---------------------------------------------------------------- the journal itself

def test_journal_with_a_validator_drops_invalid_lines_and_refuses_to_store_them(tmp_path):
    from datagen.generators import journaled_problem

    good = [["a trace", "stop"]]
    old = tmp_path / "a-old.jsonl"  # an older version's file: a valid and an invalid value for "k1"
    old.write_text("".join(json.dumps({"key": k, "value": v}) + "\n" for k, v in
                           [("k1", good), ("k1", [[73, "stop"]]), ("k2", 73), ("k3", [["x", None]]), ("k4", [])]))
    journal = ResultJournal(tmp_path, validate=journaled_problem)
    assert journal.get("k1") == good  # an invalid line never shadows a valid one
    assert set(journal.rejected) == {"k2", "k3", "k4"} and "k2" not in journal
    with pytest.raises(ValueError, match="invalid value"):
        journal.put_many([("k2", [[73, "stop"]])])
    journal.put_many([("k2", good)])
    journal.close()
    old.touch()  # even when the older file is touched later, its invalid line does not win
    again = ResultJournal(tmp_path, validate=journaled_problem)
    assert again.get("k2") == good and set(again.rejected) == {"k3", "k4"}


# ---------------------------------------------------------------- the judge stage

def _samples(sweep):
    from faults.replies import write_samples

    out = sweep / "eval" / ARM / "think"
    write_samples(out, ARM, "think")
    return out


def _config(sweep, url):
    from evalsuite.config import EvalConfig

    return load(EvalConfig, [], [f"arm_id={ARM}", f"sweep_dir={sweep}", "battery=smoke", "modes=[think]",
                                 "progress=false", "judge.backend=openai", f"judge.base_url={url}", "judge.model=j",
                                 "judge.retries=3", "judge.backoff_s=0.01", "judge.backoff_max_s=0.02",
                                 "judge.max_concurrency=2"]).require()


def _judge(sweep, url):
    """run_judge from scratch on ``sweep`` (samples written anew): (stats, judgements by (prompt, slot))."""
    from evalsuite import outputs
    from evalsuite.judges.stage import run_judge

    out = _samples(sweep)
    outputs.marker_path(out, "judge").unlink(missing_ok=True)  # a re-run judges again (from the cache)
    stats = run_judge(_config(sweep, url))
    judged = outputs.read_jsonl(out / "judged.jsonl")
    return stats, {(j["prompt_id"], slot): v for j in judged for slot, v in j["judgements"].items()}


def _values(judgements: dict) -> dict:
    return {k: (v["parsed"], v["values"], v["label"], v["raw"]) for k, v in judgements.items()}


def _cache_values(sweep) -> dict:
    return dict(ResultJournal(sweep / "cache" / "evalsuite" / "judge").items())


@pytest.fixture
def server():
    with LoopbackOpenAI(reply=verdicts) as s:
        yield s


@pytest.fixture
def reference(server, tmp_path):
    """An uninterrupted judge run against the healthy endpoint: (stats, judgements, cache entries).
    The judge's identity (hence each cache key) names the endpoint: the faulty runs use the same one."""
    stats, judged = _judge(tmp_path / "reference", server.base_url)
    assert stats["unparsed"] == 0 and stats["calls"] == len(judged) > 0
    return stats, judged, _cache_values(tmp_path / "reference")


@pytest.mark.parametrize("fault", sorted(ERROR_COMPLETIONS))
def test_judge_retries_an_error_dressed_as_a_completion_and_caches_only_verdicts(fault, server, reference, tmp_path):
    ref_stats, ref_judged, _ = reference
    server.script = [fault] * 4  # the first requests get the error; their retries find the endpoint healthy
    stats, judged = _judge(tmp_path / "sweep", server.base_url)
    assert server.served(fault) == 4
    assert _values(judged) == _values(ref_judged)  # value for value, as if nothing had happened
    assert stats["calls_run"] == ref_stats["calls_run"] and stats["unparsed"] == 0
    assert all(isinstance(v, str) for v in _cache_values(tmp_path / "sweep").values())


def test_garbage_in_the_judge_cache_is_dropped_and_asked_again(server, reference, tmp_path, capsys):
    """An older version cached every reply, an outage's error text and a wrong-typed content included:
    a re-run with the endpoint healthy drops them, asks again, and ends equal to the reference."""
    from evalsuite import outputs

    ref_stats, ref_judged, ref_cache = reference
    sweep = tmp_path / "sweep"
    cache = sweep / "cache" / "evalsuite" / "judge"
    cache.mkdir(parents=True)
    keys = sorted(ref_cache)
    (cache / "old-outage.jsonl").write_text("".join(
        json.dumps({"key": k, "value": GARBAGE[i % len(GARBAGE)]}) + "\n" for i, k in enumerate(keys)))
    asked = server.served()
    stats, judged = _judge(sweep, server.base_url)
    assert server.served() - asked == len(keys)  # each dropped reply asked once, with its own prompt
    assert _values(judged) == _values(ref_judged)
    assert stats["cache_dropped"] == len(keys) and stats["unparsed"] == 0
    assert outputs.stage_info(sweep / "eval" / ARM / "think", "judge")["cache_dropped"] == len(keys)  # the marker
    assert f"[judge] {len(keys)} cached replies failed validation" in capsys.readouterr().err
    assert _cache_values(sweep) == ref_cache  # the fresh answers win over the old lines on a later load
    asked = server.served()
    again, judged = _judge(sweep, server.base_url)  # and a re-run asks nothing
    assert server.served() == asked
    assert again["calls"] == len(judged) and again["calls_run"] == 0 and again["cache_dropped"] == 0
    assert _values(judged) == _values(ref_judged)


def test_an_unparsed_reply_is_recorded_as_unparsed_with_its_reason_never_as_a_verdict(tmp_path):
    from evalsuite.judges.stage import judge_value_problem

    with LoopbackOpenAI(reply=lambda prompt, seed, i: "I cannot rate this right now.") as unhelpful:
        stats, judged = _judge(tmp_path, unhelpful.base_url)
    assert stats["unparsed"] == stats["calls"] == len(judged)
    assert all(not v["parsed"] and v["values"] == {} and "format" in v["unparsed_reason"] for v in judged.values())
    cached = _cache_values(tmp_path)
    assert cached and all(v == {"unparsed": "I cannot rate this right now.", "reason": v["reason"]}
                          for v in cached.values())
    assert all(judge_value_problem(v) is None for v in cached.values())
    assert judge_value_problem(73) and judge_value_problem({"unparsed": 73, "reason": ""})


# ---------------------------------------------------------------- datagen's generator

def test_generator_retries_wrong_typed_content_and_error_finishes():
    from datagen.config import OpenAIConfig, SamplingConfig
    from datagen.generators.openai_http import OpenAIGenerator

    with LoopbackOpenAI() as server:
        gen = OpenAIGenerator("m", load(OpenAIConfig, [], [f"base_url={server.base_url}", "concurrency=2",
                                                           "max_retries=3", "backoff=0.01", "backoff_max=0.02"]))
        server.script = ["content_int", "error_finish", "error_body"]
        prompts = [[{"role": "user", "content": f"question {i}"}] for i in range(2)]
        kept = []
        out = gen.generate(prompts, SamplingConfig(n=1, seed=5), on_result=lambda i, g: kept.append((i, g)))
    assert gen.retries == 3 and len(kept) == 2
    assert all(isinstance(g[0], str) and g[0].startswith("Step one") and g[0].finish_reason == "stop" for g in out)


def _datagen_config(tmp_path, url):
    import yaml

    from tests.conftest import ROOT

    src = tmp_path / "pairs.jsonl"
    src.write_text("".join(line + "\n" for line in (ROOT / "datagen/demo/pairs.jsonl").read_text().splitlines()[:3]))
    cfg = {"source": {"path": str(src)},
           "generator": {"backend": "openai", "model": "m", "batch_size": 8,
                         "sampling": {"temperature": 1.0, "max_tokens": 32, "n": 1, "seed": 3},
                         "openai": {"base_url": url, "concurrency": 2, "timeout": 5, "max_retries": 1,
                                    "backoff": 0.01, "backoff_max": 0.02}},
           "filters": {"reject_truncated": False, "min_tokens": 1, "max_tokens": 200, "tokenizer": "whitespace"},
           "output": {"root": str(tmp_path / "sweep")}, "shards": 1}
    path = tmp_path / "datagen.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _shard(cfg, dataset: str) -> int:
    from datagen.cli import main

    return main(["shard", str(cfg), f"output.dataset_id={dataset}", "--num-shards", "1", "--shard", "0",
                 "--no-progress"])


def test_garbage_in_a_shard_journal_is_dropped_and_asked_again(tmp_path, capsys):
    """A shard that failed part-way keeps its finished requests in its journal; values there that are not
    [text, finish_reason] strings (an older version's wrong-typed content, damage) are asked again."""
    from datagen.generators import GenerationError

    sweep = tmp_path / "sweep"
    with LoopbackOpenAI() as server:
        cfg = _datagen_config(tmp_path, server.base_url)
        assert _shard(cfg, "reference") == 0
        reference = sorted((sweep / "data/reference/shards").glob("*/records.jsonl"))[0].read_text()
        first_pair = json.loads((tmp_path / "pairs.jsonl").read_text().splitlines()[0])["question"]
        server.always_fail.add(first_pair)  # that pair's requests fail for good: the shard stops part-way
        with pytest.raises(GenerationError):
            _shard(cfg, "garbage")
        journal = next((sweep / "data/garbage/shards").glob(".*.progress"))
        lines = [json.loads(line) for f in sorted(journal.glob("*.jsonl")) for line in f.read_text().splitlines()]
        assert lines  # the requests that finished
        garbage = [[[73, "stop"]], 73, [["text", None]], []]
        for f in journal.glob("*.jsonl"):
            f.unlink()
        (journal / "older.jsonl").write_text("".join(json.dumps({"key": row["key"], "value": garbage[i % 4]}) + "\n"
                                                     for i, row in enumerate(lines)))
        server.always_fail.clear()
        capsys.readouterr()
        assert _shard(cfg, "garbage") == 0
    shard = sorted((sweep / "data/garbage/shards").glob("*/records.jsonl"))[0]
    assert shard.read_text() == reference  # the same records as an undisturbed run
    assert json.loads((shard.parent / "stats.json").read_text())["journal_dropped"] == len(lines)
    assert f"dropped {len(lines)} journaled request(s) that failed validation" in capsys.readouterr().err
