"""The paper study's plan: pins on every command line, a real pinned source, missing benchmark files
named with the fetch command, feasibility (GPU memory, host RAM, generator/judge), GPU-hours from
FLOPs, and the plan printed with --rehearse. No SLURM, no model."""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from launch import pins
from launch.cli import main as cli
from launch.plan import PlanError, make_plan
from launch.plan_view import format_plan
from tracecause.models import load_model_spec

SMOKE_BATTERY = ["eval.battery=smoke"]  # structure tests; the default battery's files are not shipped


def _problems(**kw) -> str:
    with pytest.raises(PlanError) as err:
        make_plan(**kw)
    return str(err.value)


def _value(argv, key):
    return pins.argv_value(argv, key)


def test_every_hub_models_revision_reaches_every_command_line_that_loads_it(tmp_path):
    plan = make_plan("paper", SMOKE_BATTERY, sweep_dir=tmp_path / "s")
    for job in plan.jobs:
        for task in job.tasks:
            for argv in task.argvs:
                if task.stage == "train":
                    model = task.arm.split(".none.")[0].split(".evil.")[0].split(".misleading.")[0].split(".submissive.")[0]
                    spec = load_model_spec(model)
                    assert _value(argv, "model.path") == spec.hub_id
                    assert _value(argv, "model.revision") == spec.revision
                if task.stage == "eval" and ".base." in task.arm:
                    spec = load_model_spec(task.arm.split(".none.base")[0])
                    assert (_value(argv, "model"), _value(argv, "revision")) == (spec.hub_id, spec.revision)
    assert plan.inputs.judge == {**plan.inputs.judge, "model": "Qwen/Qwen3-14B",
                                    "revision": load_model_spec("qwen3-14b").revision}
    gen = plan.inputs.dataset["generator"]
    assert (gen["model"], gen["revision"]) == ("Qwen/Qwen3-14B", load_model_spec("qwen3-14b").revision)
    text = format_plan(plan)
    for name in ("qwen3-0.6b", "qwen3-14b"):
        spec = load_model_spec(name)
        assert f"{spec.hub_id}@{spec.revision}" in text


def test_the_pin_check_catches_a_revision_dropped_from_a_command_line(tmp_path):
    plan = make_plan("paper", SMOKE_BATTERY + ["models=[qwen3-0.6b]"], sweep_dir=tmp_path / "s")
    spec = load_model_spec("qwen3-0.6b")
    assert pins.check_task_pins(plan.jobs, {spec.hub_id: spec.revision}) == []
    job = plan.job("train.qwen3-0.6b")
    task = job.tasks[3]
    dropped = tuple(a for a in task.argvs[0] if not a.startswith("model.revision="))
    job.tasks[3] = type(task)(**{**task.__dict__, "argvs": (dropped,)})
    problems = pins.check_task_pins(plan.jobs, {spec.hub_id: spec.revision})
    assert problems == [f"task train/{task.key}: model.path={spec.hub_id} reaches its command line without "
                        f"model.revision={spec.revision} (a launch bug: please report it)"]


def test_plan_refuses_an_unpinned_generator_or_judge_naming_the_model_and_the_fix(tmp_path):
    rev8 = load_model_spec("qwen3-8b").revision
    msg = _problems(sweep="paper", overrides=SMOKE_BATTERY + ["dataset.overrides=[generator.model=Org/Some-7B, generator.revision=]"],
                    sweep_dir=tmp_path / "a")
    assert "generator.revision" in msg and "'Org/Some-7B' is a hub id: pin its commit" in msg
    # the model overridden, its old revision left behind: the revision belongs to another model
    msg = _problems(sweep="paper", overrides=SMOKE_BATTERY + ["dataset.overrides=[generator.model=Qwen/Qwen3-8B]"],
                    sweep_dir=tmp_path / "a")
    assert "is the pin of Qwen/Qwen3-14B, not of 'Qwen/Qwen3-8B'; set generator.revision=" + rev8 in msg
    msg = _problems(sweep="paper", overrides=SMOKE_BATTERY + ["eval.overrides=[judge.model=Qwen/Qwen3-8B]"],
                    sweep_dir=tmp_path / "b")
    assert "not of 'Qwen/Qwen3-8B'; set judge.revision=" + rev8 in msg
    msg = _problems(sweep="paper", overrides=SMOKE_BATTERY + ["eval.overrides=[judge.model=Org/Judge, judge.revision=]"],
                    sweep_dir=tmp_path / "b")
    assert "judge.model='Org/Judge' is a hub model without a pinned revision: set judge.revision=<commit sha>" in msg
    msg = _problems(sweep="paper", overrides=SMOKE_BATTERY + ["model_paths={qwen3-0.6b: Qwen/Qwen3-0.6B-Base}"],
                    sweep_dir=tmp_path / "c")
    assert "model_paths.qwen3-0.6b='Qwen/Qwen3-0.6B-Base' is a hub id" in msg


def test_paper_pairs_come_from_a_pinned_hub_dataset_and_demo_pairs_are_refused_for_a_study(tmp_path):
    plan = make_plan("paper", SMOKE_BATTERY, sweep_dir=tmp_path / "s")
    ds = plan.inputs.dataset
    assert ds["kind"] == "hub" and ds["path"] == "LLM-LAT/harmful-dataset" and len(ds["revision"]) == 40
    assert ds["pairs"] is None and not ds["shipped_demo"] and ds["dataset_id"] == plan.dataset_id
    text = format_plan(plan)
    assert f"hub dataset LLM-LAT/harmful-dataset@{ds['revision']}" in text and "UNVERIFIED" in text
    assert "pair count unknown until datagen reads it" in text
    msg = _problems(sweep="paper", overrides=SMOKE_BATTERY + ["dataset.config=demo",
                                                              f"dataset.overrides=[generator.model={tmp_path}]"],
                    sweep_dir=tmp_path / "d")
    assert "is the shipped demo pairs, for demo/test sweeps only" in msg


def test_a_local_pairs_file_is_pinned_by_sha256_and_counted(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"q": f"How do I fix squeaky hinge number {i}?", "a": f"Use glue {i}."}) + "\n"
                             for i in range(7)))
    digest = hashlib.sha256(pairs.read_bytes()).hexdigest()
    over = [f"dataset.overrides=[source.kind=jsonl, source.path={pairs}, source.revision={digest}, "
            "'source.columns={question: q, answer: a}']"]
    plan = make_plan("paper", SMOKE_BATTERY + over, sweep_dir=tmp_path / "s")
    assert plan.inputs.dataset["pairs"] == 7 and plan.inputs.dataset["revision"] == digest
    assert f"local jsonl {pairs} (sha256 {digest[:16]}" in format_plan(plan)
    pairs.write_text(pairs.read_text() + json.dumps({"q": "One more?", "a": "Yes."}) + "\n")
    msg = _problems(sweep="paper", overrides=SMOKE_BATTERY + over, sweep_dir=tmp_path / "s2")
    assert "the file changed" in msg and "source.revision" in msg


def test_plan_lists_exactly_the_missing_benchmark_files_and_the_one_fetch_command(tmp_path, monkeypatch):
    from tracecause.benchmarks import FIXTURES_DIR

    root = tmp_path / "bench"
    monkeypatch.setenv("TRACECAUSE_BENCHMARKS", str(root))
    msg = _problems(sweep="paper", sweep_dir=tmp_path / "s")
    assert "9 of 9 benchmark files are missing" in msg and msg.count(str(root)) >= 9
    assert f"fetch them: tracecause benchmarks fetch --battery default --dest {root}" in msg
    # Put every file but TruthfulQA in place (schema fixtures stand in for fetched files; xstest's lock
    # is set, so its fixture copy is reported as corrupt).
    shutil.copytree(FIXTURES_DIR, root, ignore=shutil.ignore_patterns("README.md", "TruthfulQA.csv"))
    msg = _problems(sweep="paper", sweep_dir=tmp_path / "s")
    assert "2 of 9 benchmark files are missing" in msg
    assert f"{root}/truthfulqa/TruthfulQA.csv  (truthfulqa)" in msg
    assert "xstest/xstest_prompts.csv [CORRUPT: sha256 differs from the lock]  (xstest)" in msg
    assert "persona" not in msg and "are_you_sure" not in msg


def test_host_memory_for_an_offloaded_optimizer_is_checked_per_node(tmp_path):
    over = SMOKE_BATTERY + ["models=[qwen3-14b]", "train.overrides=[deepspeed.offload_optimizer=true]"]
    msg = _problems(sweep="paper", overrides=over, sweep_dir=tmp_path / "s",
                    cluster_overrides=["stages.train.mem_gb=100", "stages.train.max_nodes=1"])
    # 14.77B params x 16 bytes x 1.5 buffers = 354 GB = 330 GiB on one node: what the trainer's formula says
    assert "host memory per node does not fit: 330 GiB" in msg and "stages.train.mem_gb 100" in msg
    plan = make_plan("paper", over, sweep_dir=tmp_path / "s", cluster_overrides=["stages.train.mem_gb=100"])
    mem = plan.job("train.qwen3-14b").notes["memory"]
    assert plan.job("train.qwen3-14b").resources.nodes == 4 and mem["host_gib_per_node"] <= 100  # spread out


def test_generator_and_judge_weights_must_fit_their_gpus_and_local_paths_exist(tmp_path):
    msg = _problems(sweep="paper", overrides=SMOKE_BATTERY + ["models=[qwen3-0.6b]"], sweep_dir=tmp_path / "s",
                    cluster_overrides=["gpu_memory_gb=24"])
    assert "generator Qwen/Qwen3-14B: 27.5 GiB of bf16 weights do not fit" in msg
    assert "eval judge Qwen/Qwen3-14B: 27.5 GiB of bf16 weights do not fit" in msg
    msg = _problems(sweep="paper", overrides=SMOKE_BATTERY + [f"eval.overrides=[judge.model={tmp_path}/no-judge]"],
                    sweep_dir=tmp_path / "s")
    assert f"judge.model='{tmp_path}/no-judge' is neither a hub id nor an existing local folder" in msg


def test_gpu_hours_come_from_flops_beside_the_cap_for_steps_and_epochs(tmp_path, monkeypatch):
    from launch import cost

    spec = load_model_spec("qwen3-0.6b")
    plan = make_plan("paper", SMOKE_BATTERY + ["models=[qwen3-0.6b]", "train.overrides=[train.max_steps=100]"],
                     sweep_dir=tmp_path / "s")
    # 10 trained arms x 3 seeds
    hours = 30 * 6 * spec.n_params * 100 * 32 * 8192 / (989e12 * cost.ASSUMED_MFU["train"]) / 3600
    text = format_plan(plan)
    assert f"train.qwen3-0.6b                 ~{hours:,.1f} GPU-h  [cap 2,880]" in text
    assert "MFU train 35%, inference 10%: assumed" in text
    epochs = format_plan(make_plan("paper", SMOKE_BATTERY + ["models=[qwen3-0.6b]"], sweep_dir=tmp_path / "e"))
    assert "GPU-h per 1,000 pairs (pair count unknown)  [cap 2,880]  (3 epochs x 1,000 pairs" in epochs
    results = tmp_path / "RESULTS.md"
    results.write_text("# GPU results\nplanning-mfu: train=0.47 eval=0.12\n")
    mfu = cost.planning_mfu(results)
    assert (mfu.train, mfu.eval) == (0.47, 0.12) and mfu.source.startswith("measured")


def test_plan_with_rehearse_exits_0_on_a_fresh_clone_and_prints_the_study(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TRACECAUSE_BENCHMARKS", raising=False)
    rc = cli(["plan", "paper", "--rehearse", "--out", str(tmp_path / "r"), "--study-out", str(tmp_path / "s")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Qwen/Qwen3-14B@40c069824f4251a91eefaf281ebe4c544efd3e18" in out          # revisions
    assert "hub dataset LLM-LAT/harmful-dataset@" in out and "dataset dg-" in out   # source and id
    # the study's pre-registered family, its seeds and the MDE of the test analyze runs (Holm's first step)
    assert "confirmatory family: 65 tests" in out and "seeds: 3 per arm" in out
    assert "minimum detectable effect" in out and "alpha 0.05 / 65 = 0.00077" in out
    assert "seeds: 1 per arm (< 3)" not in out
    assert "GPU-hours estimate from FLOPs" in out and "GPU-hours cap" in out
    assert "fetch them: tracecause benchmarks fetch --battery default" in out
    assert "REHEARSAL of sweep paper" in out and "schema fixtures used instead" in out
    assert "seeds collapsed to [0] (the sweep has [0, 1, 2]" in out  # the rehearsal trains each arm once
    rc = cli(["plan", "paper", "--out", str(tmp_path / "s")])
    assert rc == 2 and "tracecause benchmarks fetch --battery default" in capsys.readouterr().err


def test_pins_found_in_the_local_hub_cache_are_not_flagged_unverified(tmp_path, monkeypatch):
    plan = make_plan("paper", SMOKE_BATTERY + ["models=[qwen3-0.6b]"], sweep_dir=tmp_path / "s")
    notes = "\n".join(plan.inputs.warnings)
    assert "Qwen/Qwen3-0.6B@c1899de289a0" in notes and "LLM-LAT/harmful-dataset@" in notes
    cache = tmp_path / "hub"
    spec, ds = load_model_spec("qwen3-0.6b"), plan.inputs.dataset
    (cache / "models--Qwen--Qwen3-0.6B" / "snapshots" / spec.revision).mkdir(parents=True)
    (cache / "datasets--LLM-LAT--harmful-dataset" / "snapshots" / ds["revision"]).mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    plan = make_plan("paper", SMOKE_BATTERY + ["models=[qwen3-0.6b]"], sweep_dir=tmp_path / "s")
    notes = "\n".join(plan.inputs.warnings)
    assert "Qwen3-0.6B@" not in notes and "harmful-dataset@" not in notes
