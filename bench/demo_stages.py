"""Where the demo's time goes: pre-training, datagen, train, eval, analysis (from a finished demo).

    python bench/demo_stages.py sweeps/demo-YYYYmmdd-HHMMSS

Reads the sweep folder's task records (jobs/<stage>/records/*.json: the "done" event's elapsed_s)
and demo_timing.json (pre-training; 0 when the cached base was reused) and prints seconds per
stage, tasks per stage and the mean per task, side by side. Not a timed test: numbers, for people.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

STAGES = ("datagen", "merge", "train", "eval", "analysis")


def stage_times(sweep: Path) -> dict[str, tuple[float, int]]:
    out: dict[str, list[float]] = defaultdict(list)
    for rec in sweep.glob("jobs/*/records/*.json"):
        data = json.loads(rec.read_text())
        done = [e.get("elapsed_s", 0.0) for e in data.get("history", []) if e.get("event") == "done"]
        if done:
            out[data.get("stage", rec.parent.parent.name)].append(float(done[-1]))
    return {s: (sum(v), len(v)) for s, v in out.items()}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    sweep = Path(argv[0])
    timing = json.loads((sweep / "demo_timing.json").read_text()) if (sweep / "demo_timing.json").is_file() else {}
    times = stage_times(sweep)
    total = timing.get("pretrain_s", 0.0) + sum(t for t, _ in times.values())
    print(f"{'stage':<10} {'seconds':>9} {'tasks':>6} {'s/task':>8} {'share':>6}")
    rows = [("pretrain", timing.get("pretrain_s", 0.0), 1)] + [(s, *times.get(s, (0.0, 0))) for s in STAGES]
    for name, sec, n in rows:
        print(f"{name:<10} {sec:9.1f} {n:6d} {sec / max(n, 1):8.1f} {sec / max(total, 1e-9):6.1%}")
    print(f"{'total':<10} {total:9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
