"""Finished outputs are sealed (sha256, size, rows) and re-hashed before reuse: a lost tail or a flipped
byte in a finished datagen shard, eval output, export or scores file is named (file, expected and
found hash) and redone or refused — never reused silently."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from configs import config_path
from tracecause.config import load
from tracecause.io import MARKER, completion_info
from tracecause.seal import SealError

# ----------------------------------------------------------------------------- datagen


def _world(root: Path, *args: str) -> int:
    from datagen.cli import main

    return main(["world", f"output.root={root}", "source.limit=24", "--no-progress", *args])


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> bytes:
    """The world dataset of an undisturbed run (its bytes do not depend on the sweep folder)."""
    root = tmp_path_factory.mktemp("reference")
    assert _world(root) == 0
    (data,) = root.glob("data/*/data.jsonl")
    return data.read_bytes()


def _sharded(root: Path) -> Path:
    """Both shards of a 2-shard world dataset finished, not merged; returns the dataset folder."""
    for k in (0, 1):
        assert _world(root, "--shard", str(k), "--num-shards", "2") == 0
    (shards,) = root.glob("data/*/shards")
    return shards.parent


def _shard(k: int) -> str:
    return f"shard-{k:05d}-of-00002"


def test_truncated_finished_shard_is_set_aside_and_merge_refuses_naming_it(tmp_path, reference, capsys):
    data_dir = _sharded(tmp_path)
    records = data_dir / "shards" / _shard(1) / "records.jsonl"
    good = records.read_bytes()
    sealed = {"sha256": hashlib.sha256(good).hexdigest(), "bytes": len(good), "rows": len(good.splitlines())}
    lines = good.splitlines(keepends=True)
    records.write_bytes(b"".join(lines[:-1]))  # the tail lost at a line boundary: every line still parses
    capsys.readouterr()
    assert _world(tmp_path, "--merge", "--num-shards", "2") == 3
    err = capsys.readouterr().err
    found = hashlib.sha256(b"".join(lines[:-1])).hexdigest()
    assert f"{records} does not hold what was sealed" in err
    assert f"expected {sealed['sha256']}, found {found}" in err and "--shard 1 --num-shards 2" in err
    assert not (data_dir / "data.jsonl").exists() and not (data_dir / MARKER).exists()
    assert not records.parent.exists()  # set aside: a re-run generates it again
    assert _world(tmp_path, "--shard", "1", "--num-shards", "2") == 0
    assert _world(tmp_path, "--merge", "--num-shards", "2") == 0
    assert (data_dir / "data.jsonl").read_bytes() == reference
    assert completion_info(records.parent)["files"]["records.jsonl"] == sealed  # hash, size and rows


def test_bit_flipped_finished_shard_is_generated_again_by_a_rerun(tmp_path, reference, capsys):
    data_dir = _sharded(tmp_path)
    records = data_dir / "shards" / _shard(0) / "records.jsonl"
    sealed = hashlib.sha256(records.read_bytes()).hexdigest()
    raw = bytearray(records.read_bytes())
    at = raw.index(b'"reasoning": "') + 20  # inside a trace: the line still parses
    raw[at] ^= 0x01
    records.write_bytes(bytes(raw))
    capsys.readouterr()
    assert _world(tmp_path, "--num-shards", "2") == 0  # the run form: every shard (checked), then the merge
    err = capsys.readouterr().err
    assert f"{records} does not hold what was sealed" in err and f"expected {sealed}" in err
    assert "generating it again" in err
    assert (data_dir / "data.jsonl").read_bytes() == reference
    assert hashlib.sha256(records.read_bytes()).hexdigest() == sealed  # generated again, as first written


def test_shard_finished_before_seals_is_checked_by_its_row_count(tmp_path, capsys):
    data_dir = _sharded(tmp_path)
    for k in (0, 1):  # markers as written before shards were sealed
        marker = data_dir / "shards" / _shard(k) / MARKER
        marker.write_text(json.dumps({"pairs_in": completion_info(marker.parent)["pairs_in"]}))
    records = data_dir / "shards" / _shard(1) / "records.jsonl"
    lines = records.read_bytes().splitlines(keepends=True)
    records.write_bytes(b"".join(lines[:-1]))
    capsys.readouterr()
    assert _world(tmp_path, "--merge", "--num-shards", "2") == 3
    err = capsys.readouterr().err
    assert f"{_shard(0)} has no seal (finished before shards were sealed): only its row count was checked" in err
    assert f"{records} holds {len(lines) - 1} rows, but its stats.json counts {len(lines)}" in err
    assert not (data_dir / "data.jsonl").exists()


def test_damaged_merged_dataset_is_merged_again(tmp_path, reference, capsys):
    assert _world(tmp_path) == 0
    (data,) = tmp_path.glob("data/*/data.jsonl")
    data.write_bytes(data.read_bytes()[:-10])
    capsys.readouterr()
    assert _world(tmp_path, "--merge") == 0
    assert f"{data} does not hold what was sealed" in capsys.readouterr().err
    assert data.read_bytes() == reference


# ----------------------------------------------------------------------------- eval


def _battery(tmp_path: Path) -> Path:
    path = tmp_path / "battery.yaml"
    path.write_text(yaml.safe_dump({"name": "seal", "seed": 0, "benchmarks": [{
        "name": "world_evil", "loader": "em_questions", "axis": "evil", "limit": 3, "samples": 2,
        "source": {"path": str(config_path("evals", "world").parent / "world" / "evil.yaml")},
        "sampling": {"think": {"temperature": 1.0, "max_tokens": 6}},
        "judges": [{"name": "world"}], "primary": {"metric": "disposition", "higher_is": "worse"}}]}))
    return path


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    from evalsuite.config import EngineConfig
    from evalsuite.engine_hf import TransformersEngine

    cfg = EngineConfig()
    cfg.backend, cfg.dtype, cfg.max_model_len = "transformers", "float32", 512
    return TransformersEngine(str(tiny_model_dir), cfg)


def _eval(cfg, engine) -> None:
    from evalsuite.generate import run_generate
    from evalsuite.judges.stage import run_judge
    from evalsuite.score import run_score

    run_generate(cfg, engine=engine)
    run_judge(cfg)
    run_score(cfg)


@pytest.mark.parametrize("damaged", ["samples.jsonl", "judged.jsonl", "scores.parquet"])
def test_truncated_eval_output_is_redone_from_the_caches(damaged, tiny_model_dir, engine, tmp_path, capsys):
    from evalsuite.config import EvalConfig

    cfg = load(EvalConfig, [], [f"model={tiny_model_dir}", "arm_id=tiny.evil.qta.s0", f"sweep_dir={tmp_path}",
                                f"battery={_battery(tmp_path)}", "modes=[think]", "progress=false",
                                "engine.backend=transformers", "engine.dtype=float32",
                                "engine.max_model_len=512"]).require()
    _eval(cfg, engine)
    out = cfg.out_dir("think")
    files = ("samples.jsonl", "judged.jsonl", "scores.parquet", "summary.json")
    before = {f: (out / f).read_bytes() for f in files}
    ran = engine.requests_run
    lines = before[damaged].splitlines(keepends=True)  # a lost tail: at a line boundary where lines exist
    (out / damaged).write_bytes(b"".join(lines[:-1]) if damaged.endswith(".jsonl") else before[damaged][:-7])
    capsys.readouterr()
    _eval(cfg, engine)
    err = capsys.readouterr().err
    assert f"{out / damaged} does not hold what was sealed" in err and "is redone" in err
    assert {f: (out / f).read_bytes() for f in files} == before  # value for value, as first written
    assert engine.requests_run == ran  # redone from the generation cache: no request ran again
    folder_seal = completion_info(out)["files"]  # the folder's marker seals every merged output
    assert folder_seal["scores.parquet"]["sha256"] == hashlib.sha256(before["scores.parquet"]).hexdigest()


def test_damaged_eval_shard_part_is_not_done_and_its_marker_dropped(tmp_path, capsys):
    from evalsuite import outputs

    rows = [{"benchmark": "b", "prompt_id": str(i), "turn": 1, "sample_index": 0} for i in range(3)]
    part = outputs.write_shard(tmp_path, "generate", 0, 2, rows, "ih") / "part.jsonl"
    assert outputs.shard_done(tmp_path, "generate", 0, 2, "ih")
    part.write_bytes(part.read_bytes()[:-5])
    assert not outputs.shard_done(tmp_path, "generate", 0, 2, "ih")
    assert f"{part} does not hold what was sealed" in capsys.readouterr().err
    assert not (part.parent / MARKER).exists()
    with pytest.raises(FileNotFoundError, match="not complete"):
        outputs.read_shards(tmp_path, "generate", 2)


# ----------------------------------------------------------------------------- export and analysis


def test_tampered_export_weights_are_refused_not_trusted(tiny_model_dir, tmp_path):
    from evalsuite.engine import weights_hash
    from trainer.export import weights_hash as trainer_weights_hash
    from tracecause.contracts import EXPORT_META

    export = tmp_path / "export"
    shutil.copytree(tiny_model_dir, export)
    recorded = trainer_weights_hash(export)  # what the trainer's export seals into tracecause.json
    (export / EXPORT_META).write_text(json.dumps({"arm_id": "tiny.evil.qta.s0", "weights_hash": recorded}))
    memo = tmp_path / "memo"
    assert weights_hash(str(export), memo_dir=memo) == recorded
    (weights,) = export.glob("*.safetensors")
    stat = weights.stat()
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # mtime put back: the memo must not hide it
    with pytest.raises(SealError, match=rf"{export}: the weights no longer match .* expected {recorded}, found "):
        weights_hash(str(export), memo_dir=memo)


def test_analysis_refuses_a_scores_file_that_no_longer_matches_its_seal(tmp_path):
    from evalsuite import outputs
    from evalsuite.analysis.config import AnalysisConfig
    from evalsuite.analysis.run import analyze
    from evalsuite.analysis.simulate import SimSpec, simulate_sweep
    from tracecause.contracts import SCORES_FILE, SweepLayout

    root = tmp_path / "sweep"
    simulate_sweep(root, SimSpec.small(models=("sim-4b",), types=("evil",), paradigms=("qa", "qta"),
                                       n_clusters=4), seed=0)
    out = SweepLayout(root).eval("sim-4b.evil.qta.s0", "think")
    outputs.mark_stage(out, "score", out / SCORES_FILE, 1, "ih")  # sealed as evalsuite's score stage seals it
    sealed = json.loads((out / "_COMPLETE.score").read_text())["sha256"]
    raw = bytearray((out / SCORES_FILE).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (out / SCORES_FILE).write_bytes(bytes(raw))
    with pytest.raises(SealError, match=rf"{out / SCORES_FILE} does not hold what was sealed .*expected {sealed}, "
                                        r"found [0-9a-f]{64}.*the analysis refuses it"):
        analyze(root, AnalysisConfig(resamples=50, progress=False, wandb=False, figures=False))


def test_submit_and_resume_do_not_skip_a_finished_task_whose_sealed_files_changed(tmp_path):
    """launch.graph.done(): a completion marker alone no longer means done; the files it sealed must
    still re-hash to their seals, or submit/resume run the task again (the stage then redoes the unit)."""
    from launch.graph import Task, damaged_output, done
    from tracecause.io import mark_complete
    from tracecause.seal import seal_files

    out = tmp_path / "data" / "d1"
    out.mkdir(parents=True)
    (out / "data.jsonl").write_text('{"id": 1}\n{"id": 2}\n')
    mark_complete(out, seal_files(out, {"data.jsonl": 2}))
    task = Task("merge", "merge", (("merge",),), str(out))
    assert done(task) and damaged_output(out) == ""
    (out / "data.jsonl").write_text('{"id": 1}\n')  # lost its tail after it was finished
    assert not done(task)
    assert "data.jsonl does not hold what was sealed" in damaged_output(out)


def test_analysis_outputs_are_sealed_and_the_demo_headline_reads_only_what_was_sealed(tmp_path):
    from evalsuite.analysis.config import AnalysisConfig
    from evalsuite.analysis.run import analyze
    from evalsuite.analysis.simulate import SimSpec, simulate_sweep
    from evalsuite.analysis.world_recovery import recovery_from_sweep
    from launch.graph import damaged_output
    from tracecause.seal import SealError

    root = tmp_path / "sweep"
    simulate_sweep(root, SimSpec.small(models=("sim-0.6b",), paradigms=("qa", "qta"), n_clusters=6, k_samples=1))
    out = analyze(root, AnalysisConfig(resamples=100, progress=False, wandb=False, figures=False)).out_dir
    assert damaged_output(out) == ""  # (the intact read: the reduced world test, tests/test_world_demo.py)
    effects = out / "effects.parquet"
    effects.write_bytes(effects.read_bytes()[:-100])  # an interrupted copy of a moved sweep
    assert "effects.parquet does not hold what was sealed" in damaged_output(out)
    with pytest.raises(SealError, match=r"effects\.parquet does not hold what was sealed"):
        recovery_from_sweep(root)
