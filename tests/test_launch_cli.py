"""The tracecause command line and the local executor (no SLURM needed)."""
from __future__ import annotations

from pathlib import Path

from launch import records
from launch.cli import main
from launch.executors import Submission, run_local
from launch.graph import Job, Resources, Task
from launch.profiles import load_profile

FAKE = "tests.test_launch_fake_stage"


def test_plan_prints_the_graph_and_bad_input_exits_2(capsys, tmp_path):
    assert main(["plan", "smoke", "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "train.tiny-qwen3" in out and "aftercorr:train.tiny-qwen3" in out and "arms: 4" in out
    assert main(["plan", "smoke", "paradigms=[base,qa,qat]"]) == 2
    assert "paradigms[2]" in capsys.readouterr().err
    assert main(["plan", "smoke", "--cluster", "h100x8", "device=gpu", "train.config=nope"]) == 2
    assert "no trainer config named 'nope'" in capsys.readouterr().err


def test_submit_dry_run_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["submit", "paper", "eval.battery=smoke", "--cluster", "h100x8", "--dry-run", "--out", str(out)]) == 0
    assert "dry run: 28 job(s)" in capsys.readouterr().out
    assert (out / "jobs" / "dry-run" / "000-datagen.sbatch").is_file()


def test_local_executor_caps_crash_retries_and_status_shows_the_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    sweep = tmp_path / "sweep"
    ok = Task("train", "ok", (("run", f"out={sweep / 'ok'}", "steps=3", "sleep=0"),), str(sweep / "ok"),
              arm="ok", module=FAKE)
    bad = Task("train", "bad", (("run", f"out={sweep / 'bad'}", "crash=true"),), str(sweep / "bad"),
               arm="bad", module=FAKE)
    job = Job("train.x", "train", [ok, bad], Resources())
    after = Job("analysis", "analysis", [Task("analysis", "analysis", (("run", f"out={sweep / 'an'}"),),
                                              str(sweep / "an"), module=FAKE)], Resources(), after=["train.x"])
    prof = load_profile("local", ["max_crash_retries=1"])
    assert not run_local([Submission(job, [ok, bad]), Submission(after, after.tasks, after_names=["train.x"])],
                         sweep, prof)
    rec = records.read_record(records.record_path(sweep, "train", "bad"))
    assert rec["attempts"] == 2 and rec["crashes"] == 2 and rec["state"] == "failed"
    assert len((sweep / "bad" / "starts.log").read_text().splitlines()) == 2
    assert records.read_record(records.record_path(sweep, "train", "ok"))["state"] == "done"
    assert not (sweep / "an").exists()  # its upstream failed: never started
    capsys.readouterr()
    assert main(["status", str(sweep)]) == 0
    table = capsys.readouterr().out
    line = next(l for l in table.splitlines() if l.startswith("bad "))
    assert "failed x2" in line and "c2" in line  # crash count per task
    failure = next(l for l in table.splitlines() if l.startswith("  train/bad: failed"))
    assert "boom" in failure and "crashed 2 times" in failure
    assert "train done 1, failed 1" in table
    assert "  analysis/analysis: blocked by train/bad" in table.splitlines()
    assert main(["status", str(sweep), "--watch", "0.1"]) == 1  # nothing can move: ends, non-zero
    assert main(["status", str(tmp_path / "no-such-sweep")]) == 2
    assert "no-such-sweep: no such folder" in capsys.readouterr().err
    assert main(["status", str(tmp_path)]) == 2  # a folder, but not a sweep
    assert f"{tmp_path} is not a sweep folder" in capsys.readouterr().err


def test_resume_replans_from_the_recorded_sweep_and_keeps_only_missing_work(tmp_path, capsys):
    import json

    from launch.plan import make_plan
    from launch.submit import SweepMismatch, record_sweep
    from tracecause.io import mark_complete

    root = tmp_path / "s"
    plan = make_plan("smoke", ["seeds=[3]"], cluster="local-slurm", sweep_dir=root)
    record_sweep(plan)
    assert json.loads((root / "code.json").read_text())["commit"]
    for job in plan.jobs:
        if job.stage != "analysis":
            for t in job.tasks:
                for d in (t.done_dir, *t.also_done):
                    mark_complete(Path(d))
    assert main(["resume", str(root), "--dry-run"]) == 0
    assert "dry run: 1 job(s), 1 task(s)" in capsys.readouterr().out
    summary = json.loads((root / "jobs" / "dry-run" / "dry-run.json").read_text())
    assert [j["job"] for j in summary] == ["analysis"] and summary[0]["dependency"] == ""
    other = make_plan("smoke", ["seeds=[4]"], cluster="local-slurm", sweep_dir=root)
    try:
        record_sweep(other)
        raise AssertionError("a different sweep was accepted into the same folder")
    except SweepMismatch as err:
        assert "holds another sweep" in str(err)


def test_tiny_model_subcommand_hands_its_arguments_to_tracecause_tiny(capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_:  # building takes ~30 s: tests/test_tiny_model.py does that
        main(["tiny-model", "--help"])
    assert exit_.value.code == 0
    assert "--vocab-size" in capsys.readouterr().out  # tracecause.tiny's own options
