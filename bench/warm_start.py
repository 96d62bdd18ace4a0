"""Warm against cold task starts on the local executor (launch/warm.py), side by side in one run.

    python bench/warm_start.py SWEEP [--tasks 3]

SWEEP is a finished `tracecause demo --out SWEEP`. Its first ``--tasks`` training tasks and evaluation
tasks are run again into scratch folders, each task twice in turn: cold (``python -m launch.runtask``,
a fresh interpreter, as before) and warm (forked from one interpreter that imported the stages'
libraries). It prints each stage's mean seconds per task both ways and their ratio, and checks that
the two runs of a task wrote the same weights (training) or the same samples (evaluation). The
warm-start process's own import (~5 s, once per local run) is timed and printed apart. Both runs use
the demo's environment (one OpenMP thread); run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def scratch_task(spec: Path, reference: Path, scratch: Path) -> Path:
    """The task file rewritten so that everything it writes lands under ``scratch``; what it reads
    (the base, the data, a trained export) stays in the reference sweep."""
    data = json.loads(spec.read_text())
    writes = ("output.dir=", "sweep_dir=")
    data["sweep_dir"] = str(scratch)
    task = data["task"]
    task["done_dir"] = task["done_dir"].replace(str(reference), str(scratch))
    task["argvs"] = [[a.replace(str(reference), str(scratch)) if a.startswith(writes) else a for a in argv]
                     for argv in task["argvs"]]
    out = scratch / "jobs" / task["stage"] / "tasks" / spec.name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data))
    return out


def digest(done_dir: Path) -> str:
    """What the task produced: the export's weights, or an evaluation's samples in both modes."""
    files = sorted(done_dir.glob("model.safetensors")) or sorted(done_dir.glob("*/samples.jsonl"))
    h = hashlib.sha256()
    for f in files:
        rows = f.read_bytes() if f.suffix == ".safetensors" else "".join(sorted(f.read_text().splitlines())).encode()
        h.update(rows)
    return h.hexdigest()[:16] if files else "nothing"


def main(argv=None) -> int:
    from launch.executors import _task_env
    from launch.profiles import load_profile
    from launch.warm import WarmStarter

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--tasks", type=int, default=3)
    args = ap.parse_args(argv)
    reference = args.sweep.resolve()
    specs = {stage: sorted((reference / "jobs" / stage / "tasks").glob("*.json"))[:args.tasks]
             for stage in ("train", "eval")}
    if not all(specs.values()):
        raise SystemExit(f"{reference}: no train and eval task files under jobs/; fix: pass the folder of a "
                         "finished `tracecause demo --out DIR`")
    env = _task_env({**load_profile("local").env, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"})
    work = Path(tempfile.mkdtemp(prefix="warm-start-"))
    times: dict[tuple[str, str], list[float]] = {}
    mismatched = []
    with WarmStarter(env) as warm:
        t0 = time.time()
        probe = scratch_task(specs["train"][0], reference, work / "probe")  # starts the zygote, timed apart
        warm.run(probe, env)
        print(f"warm-start process: its import and one task took {time.time() - t0:.1f} s (once per local run)")
        for stage, stage_specs in specs.items():
            for spec in stage_specs:
                done = {}
                for how in ("cold", "warm"):
                    scratch = work / f"{how}-{stage}-{spec.stem}"
                    task = scratch_task(spec, reference, scratch)
                    t = time.time()
                    # both ways print the task's output here, as the local executor does
                    rc = (subprocess.run([sys.executable, "-m", "launch.runtask", str(task)], env=env).returncode
                          if how == "cold" else warm.run(task, env))
                    times.setdefault((stage, how), []).append(time.time() - t)
                    if rc != 0:
                        raise SystemExit(f"{how} {stage} task {spec.name} exited {rc}; its record: {scratch / 'jobs'}")
                    done[how] = digest(Path(json.loads(task.read_text())["task"]["done_dir"]))
                if done["cold"] != done["warm"]:
                    mismatched.append(f"{stage} {spec.stem}: cold {done['cold']} warm {done['warm']}")
    print(f"{'stage':<8}{'tasks':>6}{'cold s/task':>13}{'warm s/task':>13}{'warm/cold':>11}")
    for stage in specs:
        cold, warm_t = (sum(times[(stage, h)]) / len(times[(stage, h)]) for h in ("cold", "warm"))
        print(f"{stage:<8}{len(times[(stage, 'cold')]):>6}{cold:>13.1f}{warm_t:>13.1f}{warm_t / cold:>10.2f}x")
    print("outputs: " + ("the same both ways for every task" if not mismatched else "DIFFER: " + "; ".join(mismatched)))
    shutil.rmtree(work, ignore_errors=True)
    return 1 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
