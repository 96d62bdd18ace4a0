"""ZeRO-3 bucket sizes on a toy model: hidden^2 elements (transformers' "auto" rule) against the floor of
2^20 trainer/engine.py now applies, one demo training task each way, side by side.

    python bench/zero3_buckets.py SWEEP [--pairs N] [--task KEY]

SWEEP is a finished ``tracecause demo --out SWEEP``; the task (default: its first QT arm's) runs from its
own task file's command line into a temporary folder, ``--pairs`` times each way, the two ways of a pair at
once (as the demo runs two tasks on 2 cores). "hidden^2" passes a DeepSpeed file with the buckets the old
rule gave this model; "floored" the repository's configs/deepspeed/zero3.yaml. Prints each run's seconds
and its steps-8-to-last seconds (from the log), the means, their ratios and whether the losses agree.
Numbers, for people: not a timed test.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEP = re.compile(r"^(\S+ \S+) \[rank0\] INFO step (\d+) ", re.M)


def task_argv(sweep: Path, key: str | None) -> list[str]:
    tasks = sorted((sweep / "jobs" / "train" / "tasks").glob("*.json"))
    chosen = [t for t in tasks if (t.stem == key if key else ".qt." in t.stem)]
    if not chosen:
        raise SystemExit(f"{sweep}/jobs/train/tasks: no task {key or 'of a QT arm'}; fix: name a finished demo "
                         "sweep (tracecause demo --out DIR) and, with --task, one of its train task keys")
    return [a for a in json.loads(chosen[0].read_text())["task"]["argvs"][0] if not a.startswith("output.dir=")]


def hidden_squared_file(argv: list[str], folder: Path) -> Path:
    """configs/deepspeed/zero3.yaml with the buckets the unfloored rule gives the task's model."""
    import yaml

    model = next(a.split("=", 1)[1] for a in argv if a.startswith("model.path="))
    hidden = json.loads((Path(model) / "config.json").read_text())["hidden_size"]
    ds = yaml.safe_load((REPO / "configs" / "deepspeed" / "zero3.yaml").read_text())
    ds["zero_optimization"].update(reduce_bucket_size=hidden * hidden,
                                   stage3_prefetch_bucket_size=int(0.9 * hidden * hidden))
    path = folder / "zero3-hidden-squared.yaml"
    path.write_text(yaml.safe_dump(ds))
    return path


def run_once(argv: list[str], out: Path) -> tuple[float, float, str]:
    """(seconds, seconds from the first logged step to the last, the last logged loss)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "trainer", *argv, f"output.dir={out}"], env=env, cwd=REPO,
                          capture_output=True, text=True)
    secs = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"the trainer failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    stamps = [datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f") for t, _ in STEP.findall(proc.stderr + proc.stdout)]
    loop = (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else float("nan")
    last = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()][-1]
    return secs, loop, f"{last['loss']:.4f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", help="a finished demo sweep folder")
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--task", help="a train task key (default: the first QT arm's)")
    args = ap.parse_args(argv)
    base = task_argv(Path(args.sweep), args.task)
    results: dict[str, list[tuple[float, float]]] = {"hidden^2": [], "floored": []}
    losses: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="zero3-buckets-") as tmp, ThreadPoolExecutor(2) as pool:
        ways = {"hidden^2": [*base, f"deepspeed.config={hidden_squared_file(base, Path(tmp))}"], "floored": base}
        for i in range(args.pairs):
            futures = {w: pool.submit(run_once, a, Path(tmp) / f"{i}-{w[0]}") for w, a in ways.items()}
            for way, fut in futures.items():
                secs, loop, loss = fut.result()
                results[way].append((secs, loop))
                losses.add(loss)
                print(f"pair {i}: {way:<9} task {secs:6.1f} s  logged steps {loop:6.1f} s  final loss {loss}", flush=True)
    mean = {w: tuple(statistics.mean(x[k] for x in r) for k in (0, 1)) for w, r in results.items()}
    for way, (secs, loop) in mean.items():
        print(f"mean {way:<9} task {secs:6.1f} s  logged steps {loop:6.1f} s")
    print(f"ratio floored / hidden^2: task {mean['floored'][0] / mean['hidden^2'][0]:.3f}, logged steps "
          f"{mean['floored'][1] / mean['hidden^2'][1]:.3f}; final losses "
          + ("agree" if len(losses) == 1 else f"DIFFER {sorted(losses)}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
