"""Rehearse configs/sweeps/paper.yaml on the local SLURM cluster before any GPU-hour is spent.

One model size end to end — all its types x paradigms x modes x benchmarks (2 prompts each, 2
training steps), datagen -> merge -> train array -> eval arrays -> analysis, through real submitit,
DeepSpeed (gloo), vLLM and the analysis — and every rehearsed arm must reach the analysis. The other
sizes are rehearsed by dry-run: their stage configs are validated by the plan, their sbatch scripts
(resources, dependencies) written and checked.

Time on 2 cores: eval tasks dominate (each starts a vLLM engine for generation and one for the judge);
the test runs both modes of an arm in one eval task (``eval.split_modes=false``: one engine start per
arm instead of per mode); the split-mode graph of paper.yaml itself is covered by the dry-run below
and by tests/test_rehearse_plan.py.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from launch.cli import main as cli
from launch.plan import make_plan
from launch.status import collect
from launch.submit import submit

pytestmark = [pytest.mark.slurm, pytest.mark.vllm, pytest.mark.deepspeed, pytest.mark.slow]
SIZE = "qwen3-0.6b"
OTHERS = ["qwen3-1.7b", "qwen3-4b", "qwen3-8b", "qwen3-14b"]
FAST = ["dataset.shards=2", "eval.split_modes=false"]


def test_paper_rehearses_one_size_end_to_end_and_every_arm_reaches_the_analysis(slurm_env, tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    monkeypatch.delenv("TRACECAUSE_BENCHMARKS", raising=False)  # unfetched: the schema fixtures stand in
    assert cli(["submit", "paper", "--rehearse", f"models=[{SIZE}]", *FAST, "--out", str(tmp_path / "r")]) == 0
    plan = make_plan("paper", [f"models=[{SIZE}]", *FAST], rehearse=True, sweep_dir=tmp_path / "r")
    deadline, rows = time.time() + 1500, []
    while time.time() < deadline and not (plan.layout.analysis / "_COMPLETE").is_file():
        rows = collect(plan.sweep_dir)
        failed = [f"{r['stage']}/{r['key']}: {r['error']}" for r in rows if r["state"] == "failed"]
        assert not failed, failed
        time.sleep(5)
    assert (plan.layout.analysis / "_COMPLETE").is_file(), [(r["stage"], r["key"], r["state"]) for r in rows]
    missing = json.loads((plan.layout.analysis / "missing.json").read_text())
    arms = sorted(a.id for a in plan.arms)
    assert len(arms) == 11 and sorted(missing["expected_arms"]) == arms
    assert missing["missing_arms"] == missing["missing_evals"] == missing["missing_cells"] == []
    assert sorted(missing["used_evals"]) == sorted(f"{a}/{m}" for a in arms for m in ("think", "no_think"))
    # every benchmark of the battery was generated, judged and scored for every arm and mode
    import pandas as pd

    battery = [b["name"] for b in __import__("yaml").safe_load(
        (plan.sweep_dir / "rehearsal" / "battery.yaml").read_text())["benchmarks"]]
    for arm in arms:
        for mode in ("think", "no_think"):
            scores = pd.read_parquet(plan.layout.root / "eval" / arm / mode / "scores.parquet")
            assert set(scores["benchmark"]) == set(battery), (arm, mode)
    # the pinned revision reached the trainer and was recorded in the export
    meta = json.loads((plan.layout.root / "train" / f"{SIZE}.evil.qta.s0" / "export" / "tracecause.json").read_text())
    from tracecause.models import load_model_spec

    assert meta["base_revision"] == load_model_spec(SIZE).revision and meta["steps"] == 2
    notes = json.loads((plan.sweep_dir / "rehearsal" / "REHEARSAL.json").read_text())["substitutions"]
    assert any("schema fixtures used instead" in n for n in notes)
    report = (plan.layout.analysis / "report.md").read_text()
    assert "REHEARSAL — not a result" in report and "schema fixtures used instead" in report


def test_the_other_sizes_rehearse_by_dry_run_with_resources_and_dependencies(tmp_path):
    plan = make_plan("paper", [f"models=[{','.join(OTHERS)}]"], rehearse=True, sweep_dir=tmp_path / "d")
    subs = submit(plan, dry_run=True)
    summary = {j["job"]: j for j in json.loads((tmp_path / "d/jobs/dry-run/dry-run.json").read_text())}
    assert len(subs) == len(plan.jobs) == len(summary)
    for model in OTHERS:
        train = summary[f"train.{model}"]
        assert train["array_size"] == 10 and train["dependency"] == "afterok:@merge" and train["tasks_per_node"] == 2
        for mode in ("think", "no_think"):
            assert summary[f"eval.{model}.{mode}.0"]["dependency"] == f"aftercorr:@train.{model}"
            assert "dependency" not in summary[f"eval-base.{model}.{mode}.0"] or \
                not summary[f"eval-base.{model}.{mode}.0"]["dependency"]
    assert summary["analysis"]["dependency"].count("@eval") == 4 * len(OTHERS)
