"""A rehearsal keeps the real sweep's graph exactly: every arm, job, task, dependency and output
folder; command lines differ only in the stated substitutions, and pinned revisions stay on them.
Validated by dry-run for every size of paper.yaml (no SLURM needed)."""
from __future__ import annotations

import json
from pathlib import Path

from launch import pins
from launch.plan import make_plan
from launch.submit import submit
from tracecause.models import load_model_spec

# Keys a rehearsal may change on a command line (model folders, rehearsal battery, CPU settings).
SUBSTITUTED = ("model.path=", "model=", "battery=", "data.path=", "output.root=", "output.dataset_id=",
               "output.dir=", "arm_id=", "sweep_dir=", "wandb.", "train.", "data.", "deepspeed.", "optim.warmup",
               "checkpoint.", "log.", "engine.", "judge.", "source.", "generator.", "filters.")


def _graph(plan, root):
    rel = lambda s: s.replace(str(root), "<sweep>").replace(plan.dataset_id, "<dataset>")  # data differ
    return [(j.name, j.stage, tuple(j.after), j.after_corr, tuple((t.key, t.arm, rel(t.done_dir), t.upstream)
                                                                   for t in j.tasks)) for j in plan.jobs]


def test_rehearsal_has_the_real_graph_with_pins_on_every_command_line(tmp_path):
    # one seed: a rehearsal trains each arm once (seeds collapsed, tested below), so the graphs compare
    real = make_plan("paper", ["eval.battery=smoke", "seeds=[0]"], sweep_dir=tmp_path / "real")
    reh = make_plan("paper", ["eval.battery=smoke", "seeds=[0]"], rehearse=True, sweep_dir=tmp_path / "reh")
    assert reh.profile.name == "local-slurm" and reh.spec.device == "cpu"
    assert [a.id for a in reh.arms] == [a.id for a in real.arms]
    assert _graph(reh, tmp_path / "reh") == _graph(real, tmp_path / "real")
    for rj, jj in zip(real.jobs, reh.jobs):
        for rt, jt in zip(rj.tasks, jj.tasks):
            for ra, ja in zip(rt.argvs, jt.argvs):
                assert ra[0] == ja[0] or ra[0].endswith((".yaml",))  # same stage step / config layer
                kept = [a for a in ra if not a.startswith(SUBSTITUTED) and "/" not in a]
                assert all(a in ja for a in kept), (rt.uid, set(kept) - set(ja))
    model_pins = {reh.model_paths[m]: load_model_spec(m).revision for m in reh.spec.models}
    assert pins.check_task_pins(reh.jobs, model_pins) == []
    train = reh.job("train.qwen3-8b").tasks[0].argvs[0]
    assert pins.argv_value(train, "model.path").endswith("rehearsal/models/qwen3-8b")
    assert pins.argv_value(train, "model.revision") == load_model_spec("qwen3-8b").revision
    assert pins.argv_value(train, "train.max_steps") == "2"
    judge = reh.inputs.judge
    assert judge["model"].endswith("rehearsal/models/qwen3-14b") and judge["revision"] == load_model_spec("qwen3-14b").revision
    assert reh.inputs.dataset["shipped_demo"] and reh.inputs.dataset["generator"]["revision"]


def test_rehearsal_uses_fixtures_for_unfetched_benchmarks_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("TRACECAUSE_BENCHMARKS", raising=False)
    reh = make_plan("paper", ["seeds=[0,1,2]"], rehearse=True, sweep_dir=tmp_path / "r")
    notes = "\n".join(reh.inputs.rehearsal["notes"])
    assert "seeds collapsed to [0]" in notes and "schema fixtures used instead" in notes
    assert {a.arm.seed for a in reh.arms} == {0}
    fixtures = json.loads((tmp_path / "r/rehearsal/benchmarks/FIXTURES.json").read_text())["fixtures"]
    assert "xstest/xstest_prompts.csv" in fixtures and len(fixtures) == 9
    import yaml

    battery = yaml.safe_load((tmp_path / "r/rehearsal/battery.yaml").read_text())
    assert len(battery["benchmarks"]) == 10 and all(b["limit"] == 2 and b["samples"] <= 2 for b in battery["benchmarks"])
    assert all(Path(b["source"]["path"]).is_file() for b in battery["benchmarks"])
    subs = submit(reh, dry_run=True)
    assert len(subs) == len(reh.jobs) and (tmp_path / "r/jobs/dry-run/dry-run.json").is_file()
