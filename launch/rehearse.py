"""Rehearsal: the exact graph of a real sweep, on CPUs, in minutes — before any GPU-hour is spent.

Every arm, mode, benchmark, task, command line, dependency and file contract of the sweep is kept;
only what makes it expensive is replaced, each substitution stated in the plan and the report:
- each model -> a tiny random Qwen3 of the same family and chat/think conventions
  (``tracecause.tiny``), built into ``<sweep>/rehearsal/models/<model>``; pinned revisions stay on
  every command line, so a dropped revision fails here as it would on the cluster;
- the generator and judge -> the tiny model of the same hub model;
- the (question, answer) source -> the shipped demo pairs, truncated (a hub source is not fetched);
- benchmarks -> their first prompts, few samples, short generations; a benchmark file that has not
  been fetched -> the repository's schema fixture of it (``configs/benchmarks/fixtures/<upstream path>``);
- training -> a few steps on short packed rows with sdpa in fp32 (gloo on CPU);
- seeds -> the first seed only (arms of other seeds differ only in ``train.seed``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import yaml

from tracecause.benchmarks import FIXTURES_DIR as FIXTURES, fixture_path
from tracecause.contracts import REHEARSAL_FILE
from tracecause.io import atomic_write_json, atomic_write_text

from launch.spec import SweepSpec

DEFAULT_CLUSTER = "local-slurm"
ENV_ROOT = "${TRACECAUSE_BENCHMARKS}/"


@dataclasses.dataclass(frozen=True)
class RehearsalSize:
    steps: int = 2          # optimizer steps per trained arm
    prompts: int = 2        # per benchmark
    samples: int = 2        # at most, per prompt
    pairs: int = 8          # (question, answer) pairs from the demo source
    gen_tokens: int = 16    # per generated sample (eval, datagen, judge)


def rehearsal_dir(root: Path) -> Path:
    return Path(root) / "rehearsal"


def tiny_path(root: Path, model: str) -> str:
    return str(rehearsal_dir(root) / "models" / model)


_CPU_ENGINE = ("enforce_eager=true", "gpu_memory_utilization=0.1", "max_model_len=1024")


def rehearse_spec(spec: SweepSpec, root: Path, judge_model: str, generator_model: str,
                  size: RehearsalSize = RehearsalSize()) -> tuple[SweepSpec, list[str]]:
    """The rehearsal's spec: the same arms and graph; models, data, benchmarks and steps shrunk.

    ``judge_model`` / ``generator_model``: configs/models names standing in for the sweep's judge and
    generator ("" = none to replace). Returns the spec and the notes the plan and report print."""
    notes = []
    seeds = spec.seeds[:1]
    if len(spec.seeds) > 1:
        notes.append(f"seeds collapsed to {seeds} (the sweep has {spec.seeds}; other seeds differ only in train.seed)")
    tiny = {m: tiny_path(root, m) for m in dict.fromkeys([*spec.models, *(x for x in (judge_model, generator_model) if x)])}
    notes.append("models replaced by the tiny random Qwen3 (same chat template and think tokens), pinned revisions "
                 "kept on every command line: " + ", ".join(f"{m} -> {p}" for m, p in tiny.items()))
    dataset = dataclasses.replace(spec.dataset, overrides=[
        *spec.dataset.overrides, "source.kind=jsonl", "source.path=datagen/demo/pairs.jsonl", "source.revision=",
        "source.name=rehearsal-demo-pairs", "source.columns={question: question, answer: answer}",
        f"source.limit={size.pairs}",
        *([f"generator.model={tiny[generator_model]}"] if generator_model else []),
        "generator.batch_size=16", "generator.sampling.n=1", f"generator.sampling.max_tokens={size.gen_tokens}",
        "generator.vllm.dtype=float32", *(f"generator.vllm.{o}" for o in _CPU_ENGINE),
        "filters.reject_truncated=false", "filters.min_tokens=1", "filters.max_tokens=64", "filters.judge.enabled=false"])
    notes.append(f"dataset: the shipped demo pairs (first {size.pairs}) instead of the sweep's source; "
                 f"{size.gen_tokens}-token traces")
    train = dataclasses.replace(spec.train, overrides=[
        *spec.train.overrides, f"train.max_steps={size.steps}", f"train.epochs={size.steps}", "train.global_batch_rows=2",
        "train.micro_batch_rows=1", "train.attention=sdpa", "train.threads=1", "train.grad_checkpointing=false",
        "data.max_tokens=512", "data.overlong=drop", "deepspeed.offload_optimizer=false", "optim.warmup_steps=0",
        "checkpoint.every_steps=1", "log.every_steps=1"])
    notes.append(f"training: {size.steps} steps of 2 packed 512-token rows, sdpa, fp32 on CPU (gloo)")
    ev = dataclasses.replace(spec.eval, battery=str(rehearsal_dir(root) / "battery.yaml"), overrides=[
        *spec.eval.overrides, *(f"engine.{o}" for o in _CPU_ENGINE), "engine.dtype=float32",
        *([f"judge.model={tiny[judge_model]}"] if judge_model else []),
        *(f"judge.engine.{o}" for o in _CPU_ENGINE), "judge.engine.dtype=float32",
        f"judge.sampling.max_tokens={size.gen_tokens}"])
    out = dataclasses.replace(spec, rehearsal=True, seeds=seeds, device="cpu", model_paths=dict(tiny),
                              build_tiny_models=list(tiny), dataset=dataset, train=train, eval=ev,
                              wandb=dataclasses.replace(spec.wandb, mode="offline"))
    return out, notes


def write_battery(battery_files: list[dict], battery_yaml: Path, root: Path,
                  size: RehearsalSize = RehearsalSize()) -> list[str]:
    """The sweep's battery, truncated, reading ``<sweep>/rehearsal/benchmarks/<upstream path>``: the real
    file where it has been fetched, the shipped schema fixture otherwise. Returns the notes; raises
    FileNotFoundError naming a benchmark with neither."""
    bench_root = rehearsal_dir(root) / "benchmarks"
    data = yaml.safe_load(Path(battery_yaml).read_text())
    by_name = {f["benchmark"]: f for f in battery_files}
    fixtures, notes = [], []
    for entry in data["benchmarks"]:
        info = by_name[entry["name"]]
        src = entry.get("source", {})
        if src.get("path", "").startswith(ENV_ROOT):
            rel = src["path"][len(ENV_ROOT):]
            target = bench_root / rel
            real = Path(info["path"])
            if info["present"]:
                origin = real
            else:
                origin = fixture_path(rel) or FIXTURES / rel
                if not origin.is_file():
                    raise FileNotFoundError(f"benchmark {entry['name']!r}: {rel} is neither fetched "
                                            f"({real}) nor shipped as a schema fixture ({origin})")
                fixtures.append(rel)
            _place(origin, target)
            entry["source"] = {**src, "path": str(target)}
        entry["limit"] = min(entry.get("limit") or size.prompts, size.prompts)
        entry["samples"] = min(entry.get("samples") or size.samples, size.samples)
        entry["sampling"] = {mode: {**(over or {}), "max_tokens": min((over or {}).get("max_tokens", size.gen_tokens),
                                                                     size.gen_tokens)}
                             for mode, over in (entry.get("sampling") or {"think": {}, "no_think": {}}).items()}
    fixtures = sorted(set(fixtures))
    atomic_write_json(bench_root / "FIXTURES.json", {"fixtures": fixtures})
    data["description"] = (f"rehearsal of {Path(battery_yaml).name}: first {size.prompts} prompts, "
                           f"<= {size.samples} samples, {size.gen_tokens} tokens; fixtures: {fixtures}")
    atomic_write_text(rehearsal_dir(root) / "battery.yaml", yaml.safe_dump(data, sort_keys=False))
    notes.append(f"benchmarks: first {size.prompts} prompts, <= {size.samples} samples, {size.gen_tokens} tokens each")
    if fixtures:
        notes.append(f"benchmark files not fetched, their repository schema fixtures used instead: {fixtures}")
    return notes


def _place(origin: Path, target: Path) -> None:
    """Copy (fixtures, small) or link (fetched upstream files) ``origin`` to ``target``, idempotently."""
    if target.is_file() and target.stat().st_size == origin.stat().st_size:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    if origin.is_relative_to(FIXTURES):
        shutil.copyfile(origin, tmp)
    else:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        os.symlink(origin.resolve(), tmp)
    os.replace(tmp, target)


def notes_file(root: Path) -> Path:
    return Path(root) / REHEARSAL_FILE


def record_notes(root: Path, notes: list[str]) -> None:
    """What was substituted: the report and ``status`` show it (written when the rehearsal is submitted)."""
    atomic_write_json(notes_file(root), {"rehearsal": True, "substitutions": notes})


def read_notes(root: Path) -> list[str]:
    path = notes_file(root)
    return json.loads(path.read_text())["substitutions"] if path.is_file() else []
