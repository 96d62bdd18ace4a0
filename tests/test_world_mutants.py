"""bench/world_mutants.py: the two cheapest pipeline bugs run through the script's own functions and
are caught, and a mutant that cannot be applied or does not exist is refused.

- seed variance dropped (analysis only): a simulated sweep whose arms' seeds really differ, analysed
  from a clean copy and from the mutated copy; the replicate-split null (the analysis's own null,
  read by evalsuite/analysis/world_recovery.py's recovery table) is quiet in the reference and fires in the mutant.
- training seed ignored: the reduced world (base, QA, QTA evil at 2 seeds; launch.demo.reduced_world)
  through the real stages from the mutated copy; the analysis refuses, naming an arm whose seeds
  trained one model.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import world_mutants as wm  # noqa: E402
from world_mutants_run import make_copy, mutated_copy, reanalyse, run_world  # noqa: E402


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return make_copy(tmp_path_factory.mktemp("copies") / "clean")


def test_an_unknown_mutant_name_is_refused_with_file_field_and_fix():
    with pytest.raises(SystemExit) as err:
        wm.select(["seed-ignored", "no-such-bug"])
    text = str(err.value)
    assert "--only" in text and "'no-such-bug'" in text and "bench/world_mutants.py" in text
    assert "fix: use one of" in text and "seed-ignored" in text
    assert [m.name for m in wm.select(["modes-swapped"])] == ["modes-swapped"]
    assert len(wm.select(None)) == len(wm.MUTANTS) >= 7


def test_a_mutant_whose_snippet_is_not_found_is_refused_not_counted(tmp_path):
    clean = tmp_path / "clean"
    (clean / "trainer").mkdir(parents=True)
    (clean / "trainer" / "masks.py").write_text("def build_example():\n    return render(tokenizer, paradigm)\n")
    stale = wm.WorldMutant("stale", "a snippet the code no longer holds", "train",
                           (("trainer/masks.py", "render(tokenizer, 'qta')", "render(tokenizer, paradigm)"),))
    with pytest.raises(SystemExit, match=r"mutation stale: trainer/masks.py holds 0 copies"):
        mutated_copy(clean, tmp_path / "stale", stale)
    # every real mutant applies to the working tree as it is now (one copy of each snippet)
    for m in wm.MUTANTS:
        for rel, old, _ in m.edits:
            assert (wm.REPO / rel).read_text().count(old) == 1, (m.name, rel, old)


def _split_null(table):
    return table.nulls[0]


def test_seed_variance_dropped_in_the_analysis_is_caught_by_the_replicate_split(clean, tmp_path, monkeypatch):
    from evalsuite.analysis.simulate import SimSpec, simulate_sweep
    from evalsuite.analysis import world_recovery
    from tracecause.contracts import EFFECTS_FILE

    # the recovery table's own logic, with the simulated sweep's replicate-split row as its one null
    split = world_recovery.Contrast("Replicate split: QTA evil (sim_evil, think)", {
        "kind": "replicate_split", "benchmark": "sim_evil", "metric": "harmful", "mode": "think",
        "paradigm": "qta", "rtype_a": "evil"}, 0, "replicate_split")
    monkeypatch.setattr(world_recovery, "PLANTED", ())
    monkeypatch.setattr(world_recovery, "NULLS", (split,))
    # seeds that really differ (training noise well above the prompts' sampling noise)
    spec = SimSpec.small(models=("sim-0.6b",), paradigms=("qa", "qta"), types=("evil", "misleading"),
                         seeds=(0, 1, 2, 3, 4), modes=("think",), seed_sd=0.1, n_clusters=24, k_samples=8)
    mutant = mutated_copy(clean, tmp_path / "mutant", wm.select(["seed-variance-dropped"])[0])
    tables = {}
    for name, code in (("reference", clean), ("mutant", mutant)):
        sweep = tmp_path / name
        simulate_sweep(sweep, spec)
        rc, message = reanalyse(code, sweep, tmp_path / f"{name}.log", "--resamples", "200", "figures=false")
        assert rc == 0, (name, message, (tmp_path / f"{name}.log").read_text()[-3000:])
        tables[name] = world_recovery.recovery_table(pd.read_parquet(sweep / "analysis" / EFFECTS_FILE))
    ref, mut = tables["reference"], tables["mutant"]
    assert _split_null(ref).verdict == "quiet", dataclasses.asdict(_split_null(ref))
    assert _split_null(mut).estimate == pytest.approx(_split_null(ref).estimate)  # same evals, same difference
    caught, moved = wm.moved_rows(ref, mut)
    assert caught and moved == [f"FIRED {split.name}: {wm._num(_split_null(ref))} -> {wm._num(_split_null(mut))}"]
    # the unmutated analysis judged against itself moves nothing: "caught" is the mutant's doing
    assert wm.moved_rows(ref, ref) == (False, [])
    # --rejudge reads a kept sweep again with today's table: the same verdict; a mutant an earlier run left
    # no sweep for, or left cut short (no analysis, no refusal), is said and never counted
    work, dropped = tmp_path / "work", wm.select(["seed-variance-dropped"])[0]
    (work / "sweeps").mkdir(parents=True)
    (tmp_path / "mutant").rename(work / "sweeps" / dropped.name)
    ok, line = wm.rejudge(dropped, work, ref)
    assert ok and "caught   re-judged" in line and f"FIRED {split.name}" in line
    assert wm.rejudge(wm.select(["dose-ignored"])[0], work, ref) == (None, f"{'dose-ignored':<22} not run in {work}")
    (work / "sweeps" / "modes-swapped" / "jobs").mkdir(parents=True)
    ok, line = wm.rejudge(wm.select(["modes-swapped"])[0], work, ref)
    assert ok is None and "unfinished" in line


@pytest.mark.deepspeed
@pytest.mark.slow
@pytest.mark.timeout(1500)  # the world base's pre-training (250 steps) when no earlier test cached it
def test_training_seed_ignored_is_caught_by_the_analysis_refusing(clean, tmp_path, monkeypatch):
    from launch.demo import place_base, reduced_world, world_base

    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
    mutant = mutated_copy(clean, tmp_path / "mutant", wm.select(["seed-ignored"])[0])
    sweep = tmp_path / "sweep"
    place_base(world_base()[0], sweep)
    rc, message = run_world(mutant, reduced_world(tmp_path, 2, ("world_evil",)), sweep, tmp_path / "run.log")
    assert rc != 0 and "training seeds must produce different models" in message, message
    logs = "".join(p.read_text(errors="replace") for p in (sweep / "jobs").rglob("*") if p.is_file())
    assert "world-tiny.none.qa (think): seeds [0, 1] were generated from the same weights" in logs
    # it stopped at the analysis: every arm trained and evaluated, no effects written
    assert not (sweep / "analysis" / "effects.parquet").exists()
