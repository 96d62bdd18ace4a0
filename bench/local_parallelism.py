"""The local executor at array_parallelism 1 and 2, side by side in one run, on a reduced world.

    python bench/local_parallelism.py [--seeds 2] [--keep]

Builds (or reuses) the world's cached base, then runs the same reduced demo sweep (base, QA and QTA
evil, ``--seeds`` seeds, think mode, the evil axis) twice through the real stages — one task of an
array at a time, then two at once — each into its own folder, and prints each stage's wall-clock
span (bench/demo_stages.py) for both and their ratio. The arms' effects must come out identical
(parallelism changes only when tasks run, never what they compute): the script says so, or exits 1.
Not a timed test: numbers, for people.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run_once(root: Path, seeds: int, parallelism: int, export: Path) -> tuple[dict, float]:
    from bench.demo_stages import stage_times
    from launch.demo import place_base, reduced_world
    from launch.plan import make_plan
    from launch.submit import submit

    folder = root / f"parallel-{parallelism}"
    folder.mkdir(parents=True)
    sweep = folder / "sweep"
    place_base(export, sweep)
    started = time.perf_counter()
    submit(make_plan(reduced_world(folder, seeds, ("world_evil",), parallelism), sweep_dir=sweep))
    return stage_times(sweep), time.perf_counter() - started


def effects(sweep: Path):
    import pandas as pd

    df = pd.read_parquet(sweep / "analysis" / "effects.parquet")
    return df[["kind", "benchmark", "metric", "mode", "arm_a", "arm_b", "estimate"]].sort_values(
        ["kind", "benchmark", "metric", "mode", "arm_a", "arm_b"]).reset_index(drop=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the two sweep folders")
    ns = ap.parse_args(argv)
    from launch.demo import world_base

    export, _ = world_base()
    root = Path(tempfile.mkdtemp(prefix="tracecause-parallelism-"))
    try:
        results = {p: run_once(root, ns.seeds, p, export) for p in (1, 2)}
        print(f"reduced world: {2 * ns.seeds + 1} arms, think mode, evil axis; wall-clock seconds per stage")
        print(f"{'stage':10s} {'1 at a time':>12s} {'2 at once':>10s} {'ratio':>7s}")
        for stage in ("train", "eval", "analysis"):
            one, two = results[1][0].get(stage, (0, 0, 0))[2], results[2][0].get(stage, (0, 0, 0))[2]
            print(f"{stage:10s} {one:12.1f} {two:10.1f} {one / two if two else float('nan'):7.2f}")
        one, two = results[1][1], results[2][1]
        print(f"{'sweep':10s} {one:12.1f} {two:10.1f} {one / two:7.2f}")
        same = effects(root / "parallel-1" / "sweep").equals(effects(root / "parallel-2" / "sweep"))
        print("effects identical at both parallelisms" if same else "EFFECTS DIFFER between parallelisms")
        return 0 if same else 1
    finally:
        if ns.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
