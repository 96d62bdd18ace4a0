"""Where the demo's time goes: pre-training, datagen, train, eval, analysis (from a finished demo).

    python bench/demo_stages.py sweeps/demo-YYYYmmdd-HHMMSS

Reads the sweep folder's task records (jobs/<stage>/records/*.json: the "done" event's elapsed_s)
and demo_timing.json (pre-training; 0 when the cached base was reused) and prints, per stage, the
seconds its tasks took summed, their count and mean, and the wall-clock span (first start to last
finish; shorter than the sum when tasks ran at once), side by side. Not a timed test: numbers, for people.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

STAGES = ("datagen", "merge", "train", "eval", "analysis")


def stage_times(sweep: Path) -> dict[str, tuple[float, int, float]]:
    """Stage -> (task seconds summed, tasks, wall seconds from its first start to its last finish):
    the two differ when tasks of a stage run at once (array_parallelism)."""
    out: dict[str, list[float]] = defaultdict(list)
    spans: dict[str, list[float]] = defaultdict(list)
    for rec in sweep.glob("jobs/*/records/*.json"):
        data = json.loads(rec.read_text())
        history = data.get("history", [])
        done = [e for e in history if e.get("event") == "done"]
        if done:
            stage = data.get("stage", rec.parent.parent.name)
            out[stage].append(float(done[-1].get("elapsed_s", 0.0)))
            starts = [e["at"] for e in history if e.get("event") == "start" and "at" in e]
            spans[stage] += [min(starts, default=done[-1].get("at", 0.0)), done[-1].get("at", 0.0)]
    return {s: (sum(v), len(v), max(spans[s]) - min(spans[s])) for s, v in out.items()}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python bench/demo_stages.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", help="a finished demo's sweep folder (the `tracecause demo` output folder)")
    return p


def main(argv: list[str]) -> int:
    from tracecause.contracts import require_sweep_folder

    args = parser().parse_args(argv)
    try:  # `--help` once read as a sweep folder printed a table of zeros; so would a typo
        sweep = require_sweep_folder(args.sweep)
    except FileNotFoundError as err:
        print(f"demo_stages: {err}", file=sys.stderr)
        return 2
    timing = json.loads((sweep / "demo_timing.json").read_text()) if (sweep / "demo_timing.json").is_file() else {}
    times = stage_times(sweep)
    pretrain = timing.get("pretrain_s", 0.0)
    total = pretrain + sum(t for t, _, _ in times.values())
    wall = pretrain + sum(w for _, _, w in times.values())
    print(f"{'stage':<10} {'task-s':>9} {'tasks':>6} {'s/task':>8} {'share':>6} {'wall-s':>8}")
    rows = [("pretrain", pretrain, 1, pretrain)] + [(s, *times.get(s, (0.0, 0, 0.0))) for s in STAGES]
    for name, sec, n, w in rows:
        print(f"{name:<10} {sec:9.1f} {n:6d} {sec / max(n, 1):8.1f} {sec / max(total, 1e-9):6.1%} {w:8.1f}")
    print(f"{'total':<10} {total:9.1f} {'':6} {'':8} {'':6} {wall:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
