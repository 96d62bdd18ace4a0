"""Plan, dry-run submission and status for sweeps of ~10, ~100 and ~1,000 arms: times and growth.

    .venv/bin/python bench/sweep_scale.py            # uses the local SLURM cluster's sacct if it is up

Target: 1,000 arms planned and statused in under 2 s, status with ONE sacct call (counted with a
logging sacct wrapper on PATH that execs the real one). Sweeps are paper.yaml narrowed/widened with
overrides; the smoke battery stands in for the default one (whose upstream files are not shipped).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = {  # paper arms = models x (1 base + 10 per seed)
    10: ["models=[qwen3-0.6b]", "seeds=[0]"],
    100: ["seeds=[0,1]"],
    1000: [f"seeds=[{','.join(str(s) for s in range(20))}]"],
}


def sacct_wrapper(tmp: Path) -> Path | None:
    real = shutil.which("sacct")
    if real is None:
        return None
    bindir = tmp / "bin"
    bindir.mkdir()
    log = tmp / "sacct-calls.log"
    (bindir / "sacct").write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nexec {real} \"$@\"\n")
    (bindir / "sacct").chmod(0o755)
    os.environ["PATH"] = f"{bindir}:{os.environ['PATH']}"
    return log


def fake_records(plan, first_id: int = 880000) -> None:
    from launch import records

    for j, job in enumerate(plan.jobs):
        for i, t in enumerate(job.tasks):
            records.update_record(records.record_path(plan.sweep_dir, t.stage, t.key), stage=t.stage, key=t.key,
                                  arm=t.arm, job_id=f"{first_id + j}_{i}" if job.size > 1 else str(first_id + j),
                                  state="submitted", attempts=1)


def main() -> int:
    try:
        from slurm.cluster import local_cluster_env
        os.environ.update(local_cluster_env() or {})
    except ImportError:
        pass
    from launch.plan import make_plan
    from launch.status import collect
    from launch.submit import submit

    make_plan("paper", ["eval.battery=smoke", *SIZES[10]], sweep_dir=tempfile.mkdtemp())  # imports, caches
    tmp = Path(tempfile.mkdtemp(prefix="sweep-scale-"))
    log = sacct_wrapper(tmp)
    rows = []
    for n, extra in SIZES.items():
        t0 = time.perf_counter()
        plan = make_plan("paper", ["eval.battery=smoke", *extra], sweep_dir=tmp / f"s{n}")
        t_plan = time.perf_counter() - t0
        t0 = time.perf_counter()
        import contextlib, io
        with contextlib.redirect_stdout(io.StringIO()):
            submit(plan, dry_run=True)
        t_dry = time.perf_counter() - t0
        fake_records(plan)
        before = len(log.read_text().splitlines()) if log and log.exists() else 0
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            status_rows = collect(plan.sweep_dir, use_sacct=log is not None)
        t_status = time.perf_counter() - t0
        calls = (len(log.read_text().splitlines()) if log and log.exists() else 0) - before
        rows.append((len(plan.arms), sum(j.size for j in plan.jobs), t_plan, t_dry, t_status, calls, len(status_rows)))
    print(f"{'arms':>6} {'tasks':>6} {'plan s':>8} {'dry-run s':>10} {'status s':>9} {'sacct calls':>12}")
    for arms, tasks, tp, td, ts, calls, _ in rows:
        print(f"{arms:>6} {tasks:>6} {tp:>8.3f} {td:>10.3f} {ts:>9.3f} {calls if log else 'n/a':>12}")
    (a0, *_), (a2, *_) = rows[0], rows[-1]
    growth = lambda k: rows[-1][k] / max(rows[0][k], 1e-9)
    print(f"\ngrowth {a0} -> {a2} arms (x{a2 / a0:.0f}): plan x{growth(2):.1f}, dry-run x{growth(3):.1f}, "
          f"status x{growth(4):.1f}")
    big = rows[-1]
    print(f"{big[0]} arms: plan + status = {big[2] + big[4]:.2f} s (target < 2 s); "
          f"sacct calls for status: {big[5] if log else 'n/a (no SLURM client)'} (target 1)")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
