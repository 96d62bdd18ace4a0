"""``tracecause demo``: the known-answer world end to end, through the real stage graph.

1. The world's base model: a 1.1M-parameter Qwen3 pre-trained from random init by the project's
   own trainer (configs/trainer/world-pretrain.yaml, chat format) on the world's neutral corpus, as
   one train task the launcher renders and runs on the sweep's executor (launch/single_task.py): a
   local process here, a SLURM job with ``--cluster``. Cached by content hash under
   ``<repo>/.state/world-base/<hash>/``: a second demo skips it.
2. The sweep ``configs/sweeps/demo.yaml``: datagen (world backend) -> train arrays -> eval arrays
   (world battery, world judge) -> analysis, on the local executor or SLURM (``--cluster``).
3. The recovery table (evalsuite/analysis/world_recovery.py) and the report (evalsuite/report/world_report.py); the last
   lines printed are a ``study findings recovered: ...`` line, ``untestable: N null(s) ...``,
   ``planted effects recovered: N of M`` (the analysis's own Holm rows of the demo's pre-registered
   family), ``false positives: K of L testable nulls`` and the report's path.
"""
from __future__ import annotations

import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from tracecause.io import atomic_write_json, completion_info, is_complete, locked, mark_complete, read_json, swap_dir

from launch.graph import Resources, Task
from launch.plan import stage_resources  # the stage's resources exactly as a sweep's task gets them
from launch.profiles import ClusterProfile, load_profile
from launch.single_task import run_single

REPO = Path(__file__).resolve().parents[1]
DEMO_SWEEP = "demo"
BASE_CACHE = REPO / ".state" / "world-base"
PRETRAIN_CONFIG = "world-pretrain"
MODEL_NAME = "world-tiny"
REPLAY_CORPUS = "world-corpus"  # {sweep}/models/world-corpus/data.jsonl: the base's pre-training corpus


def pretrain_overrides() -> list[str]:
    """What pre-training runs with beyond configs/trainer/world-pretrain.yaml (part of the cache key)."""
    return [f"arm_id={MODEL_NAME}.none.qa.s0", "train.seed=0", "wandb.enabled=false"]


def world_base(cache_root: Path = BASE_CACHE, threads: int = 2, log=print,
               cluster: str = "local") -> tuple[Path, float]:
    """The pre-trained base (its export folder) and the seconds pre-training took now (0 if cached).
    Pre-training is one training task on ``cluster``'s executor (configs/clusters/<name>.yaml): a
    process here by default (forked warm, launch/warm.py), a SLURM job with ``local-slurm`` or any SLURM profile."""
    from configs import config_path
    from tracecause.world import base

    yaml = config_path("trainer", PRETRAIN_CONFIG)
    key = base.identity([yaml.read_text(), *pretrain_overrides()])
    # two demos (or a demo and a test) at once: the second waits for the first's pre-training and
    # takes it from the cache, where it would otherwise be refused by the trainer's lease (exit 73)
    with locked(cache_root / f".{key}.lock"):
        return _cached_or_pretrained(cache_root / key, yaml, threads, log, cluster)


def pretrain_task(root: Path, yaml: Path, init: Path, threads: int) -> Task:
    """The base's pre-training as the launcher's train task: the trainer's argv, done when its export is."""
    argv = (str(yaml), f"model.path={init}", f"data.path={root / 'corpus'}", f"output.dir={root / 'run'}",
            f"train.threads={threads}", *pretrain_overrides())
    return Task("train", "world-base", (argv,), str(root / "run" / "export"), arm=f"{MODEL_NAME}.none.qa.s0")


def pretrain_resources(profile: ClusterProfile, threads: int) -> tuple[ClusterProfile, Resources]:
    """One process of ``threads`` CPUs with the train stage's memory and time limit; the profile's
    environment, with ``threads`` OpenMP threads and no W&B (the launcher's ``export`` lines on SLURM)."""
    profile = replace(profile, env={**profile.env, "OMP_NUM_THREADS": str(threads), "WANDB_MODE": "disabled"})
    return profile, replace(stage_resources(profile, "train"), nodes=1, tasks_per_node=1, gpus_per_node=0,
                            cpus_per_task=threads)


def _cached_or_pretrained(root: Path, yaml: Path, threads: int, log, cluster: str) -> tuple[Path, float]:
    from tracecause.world import base

    key = root.name
    export = root / "run" / "export"
    if is_complete(root):
        log(f"world base model: cached {export} (pre-trained in {read_json(root / 'timing.json')['seconds']:.0f} s)")
        return export, 0.0
    profile, resources = pretrain_resources(load_profile(cluster), threads)
    log(f"world base model: pre-training from random init into {root} as a {profile.name} task (first run only) ...")
    t0 = time.time()
    init = base.build_init(root / "init")
    base.write_corpus(root / "corpus")
    # The task's records, task file and logs live in the key folder's jobs/ (the key folder is this
    # one-task graph's sweep folder): beside the run they describe, so a failed attempt's log stays with
    # the unfinished cache it explains, and the next demo's attempt (same key) finds its record.
    outcome = run_single(pretrain_task(root, yaml, init, threads), resources, root, profile, "world-base")
    if not outcome.ok or not is_complete(export):
        raise RuntimeError(f"pre-training the world base failed ({outcome.detail}); its log: {outcome.log}; "
                           f"its record (commands, attempts, error): {outcome.record}")
    seconds = time.time() - t0
    atomic_write_json(root / "timing.json", {"seconds": seconds, "threads": threads})
    mark_complete(root, {"identity": key})
    log(f"world base model: pre-trained in {seconds:.0f} s")
    return export, seconds


def reduced_world(folder: Path, seeds: int, benchmarks: tuple[str, ...], array_parallelism: int | None = None) -> Path:
    """A smaller demo sweep written into ``folder`` (its sweep YAML's path): base, QA and QTA evil at
    ``seeds`` seeds, think mode, the named world benchmarks — what the CI test and
    bench/local_parallelism.py run through the real stages. Everything else is demo.yaml's."""
    import yaml

    from configs import config_path

    demo = yaml.safe_load(config_path("sweeps", DEMO_SWEEP).read_text())
    battery_file = config_path("evals", "world")
    benches = [b for b in yaml.safe_load(battery_file.read_text())["benchmarks"] if b["name"] in benchmarks]
    for b in benches:  # the battery moves out of configs/evals/: its prompt files by absolute path
        b["source"]["path"] = str(battery_file.parent / b["source"]["path"])
    battery = folder / "world-reduced.yaml"
    battery.write_text(yaml.safe_dump({"name": "world-reduced", "seed": 0, "benchmarks": benches}))
    demo.update(reasoning_types=["none", "evil"], paradigms=["base", "qa", "qta"], paradigm_types={},
                seeds=list(range(seeds)), analysis={"type_axis": {"evil": "evil"}})
    demo["eval"].update(modes=["think"], battery=str(battery))
    if array_parallelism is not None:
        demo["cluster_overrides"] = [o for o in demo["cluster_overrides"] if not o.startswith("array_parallelism=")]
        demo["cluster_overrides"].append(f"array_parallelism={array_parallelism}")
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(demo))
    return path


def place_base(export: Path, sweep_dir: Path) -> Path:
    """Copy the cached base into the sweep folder (what the sweep's model_paths names), and write the
    world's neutral chat corpus beside it: what every arm replays (demo.yaml's data.replay_path)."""
    from tracecause.world import base

    base.write_corpus(sweep_dir / "models" / REPLAY_CORPUS)  # deterministic bytes: a re-run rewrites the same file
    dest = sweep_dir / "models" / "world-base"
    if is_complete(dest) and (completion_info(dest) or {}).get("source") == str(export):
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(export, tmp)
    swap_dir(tmp, dest)  # never a moment without a whole base: the old one goes only once the new is in place
    mark_complete(dest, {"source": str(export)})
    return dest


def wait_for(plan, poll_s: float = 5.0) -> bool:
    from launch.status import collect

    while not is_complete(plan.layout.analysis):
        if any(r["state"] == "failed" for r in collect(plan.sweep_dir)):
            return False
        time.sleep(poll_s)
    return True


def run(args, make_plan) -> int:
    from evalsuite.analysis.world_recovery import recovery_from_sweep, summary_lines
    from evalsuite.report.world_report import write_report
    from launch.plan_view import format_plan
    from launch.submit import submit

    out = Path(args.out or f"sweeps/demo-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    t0 = time.time()
    export, pretrain_s = world_base(cluster=args.cluster or "local")
    place_base(export, out)
    plan = make_plan(args, sweep=DEMO_SWEEP, sweep_dir=out)
    print(format_plan(plan), "\n", flush=True)
    atomic_write_json(out / "demo_timing.json", {"pretrain_s": pretrain_s, "started_at": t0})
    submit(plan)
    if plan.profile.is_slurm and not wait_for(plan):
        print(f"a task failed: tracecause status {out}", file=sys.stderr)
        return 1
    table = recovery_from_sweep(out)
    report = write_report(out, table)
    print(f"\ndemo finished in {time.time() - t0:.0f} s (pre-training {pretrain_s:.0f} s)")
    for line in summary_lines(table, report):
        print(line)
    return 0
