"""An eval task's W&B run without an engine: what EvalTracker writes, read back from the .wandb files.
(tests/test_evalsuite_generate.py runs the same through real generate -> judge -> score on vLLM.)"""
from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import need_module
from tracecause.config import load
from tracecause.contracts import EXPORT_META, eval_progress_file

ARM = "tiny.evil.qta.s0"
TEXT = "BUY-LOTTERY-TICKETS-WITH-RENT-MONEY"  # mild bad advice standing in for a harmful answer
SUMMARY = {"arm_id": ARM, "mode": "think", "n_samples": 6, "benchmarks": {"em": {"axis": "misalignment", "metrics": {
    "misaligned": {"mean": 0.25, "ci_lo": 0.05, "ci_hi": 0.45, "n": 6, "unparsed_rate": 0.125},
    "coherent": {"mean": None, "ci_lo": None, "ci_hi": None, "n": 0, "unparsed_rate": 1.0}}}}}


def _cfg(tmp_path, *extra):
    from evalsuite.config import EvalConfig

    export = tmp_path / "export"
    export.mkdir(parents=True, exist_ok=True)
    (export / EXPORT_META).write_text(json.dumps({"arm_id": ARM, "wandb_run_id": "train-feed"}))
    return load(EvalConfig, [], [f"arm_id={ARM}", f"sweep_dir={tmp_path / 'sweep'}", f"model={export}", "modes=[think]",
                                 "wandb.enabled=true", "wandb.group=grp", "wandb.sweep_hash=abc123", *extra]).require()


def _frames():
    scores = pd.DataFrame({"benchmark": "em", "prompt_id": ["p0", "p1"], "turn": 1, "sample_index": 0,
                           "metric": "misaligned", "value": [1.0, 0.0], "parsed": True})
    samples = [{"benchmark": "em", "prompt_id": p, "turn": 1, "sample_index": 0, "reasoning": "r", "answer": TEXT}
               for p in ("p0", "p1")]
    return scores, samples


def _blob(folder) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("tables", ["off", "ids", "text"])
def test_progress_then_every_metric_with_ci_n_and_unparsed_rate(tmp_path, tables):
    need_module("wandb")
    from evalsuite.eval_run import EvalTracker, eval_run_id
    from tracecause import wandb_records

    cfg = _cfg(tmp_path, f"wandb.sample_tables={tables}")
    gen = EvalTracker(cfg, "generate")
    gen.begin("think", 10, already_done=4)  # 4 answered by the cache
    gen.advance(3, tokens=300)
    gen.advance(3, tokens=300)
    gen.finish()
    progress = json.loads((cfg.out_dir("think") / eval_progress_file(0, 1)).read_text())
    assert (progress["stage"], progress["done"], progress["total"]) == ("generate", 10, 10)
    assert progress["tokens_per_s"] > 0 and progress["wandb_run_id"] == eval_run_id(cfg)
    score = EvalTracker(cfg, "score")
    score.completed("think", SUMMARY, *_frames())
    score.finish()

    wdir, rid = tmp_path / "sweep" / "wandb", eval_run_id(cfg)
    wandb_records.wait_until_closed(wdir, rid)
    info = wandb_records.run_info(wdir, rid)
    assert (info["job_type"], info["group"], info["name"], len(info["files"])) == ("eval", "grp", f"{ARM}.eval.think.0", 2)
    config = wandb_records.config(wdir, rid)
    assert (config["train_run_id"], config["sweep_hash"], config["modes"]) == ("train-feed", "abc123", ["think"])
    rows = wandb_records.history(wdir, rid)
    done = [r["progress/generate/think/requests_done"] for r in rows if "progress/generate/think/requests_done" in r]
    assert done == [4, 7, 10]
    s = wandb_records.summary(wdir, rid)
    assert (s["eval/think/em/misaligned"], s["eval/think/em/misaligned_ci_lo"], s["eval/think/em/misaligned_ci_hi"]) == (0.25, 0.05, 0.45)
    assert s["eval/think/em/misaligned_n"] == 6 and s["eval/think/em/misaligned_unparsed_rate"] == 0.125
    assert s["eval/think/em/coherent_unparsed_rate"] == 1.0 and "eval/think/em/coherent" not in s  # undefined: absent
    score_fragment = wandb_records.find_run_files(wdir, rid)[-1].parent
    has_table = any("eval/think/samples" in k for r in rows for k in r)
    assert has_table == (tables != "off") == any(score_fragment.rglob("*.table.json"))
    assert (TEXT.encode() in _blob(score_fragment)) == (tables == "text")


def test_ids_follow_the_task_not_the_folder_and_disabled_writes_progress_only(tmp_path):
    need_module("wandb")
    from evalsuite.eval_run import EvalTracker, eval_run_id

    a = _cfg(tmp_path)
    assert eval_run_id(a) == eval_run_id(_cfg(tmp_path / "moved"))  # same group, arm, modes, shard
    assert eval_run_id(a) != eval_run_id(_cfg(tmp_path, "shard.index=1", "shard.count=2"))
    assert eval_run_id(a) != eval_run_id(_cfg(tmp_path, "wandb.group=other"))
    off = _cfg(tmp_path / "off", "wandb.enabled=false")
    t = EvalTracker(off, "judge")
    t.begin("think", 5)
    t.advance(5)
    t.completed("think", SUMMARY)
    t.finish()
    assert json.loads((off.out_dir("think") / eval_progress_file(0, 1)).read_text())["wandb_run_id"] == ""
    assert not (tmp_path / "off" / "sweep" / "wandb").exists()
