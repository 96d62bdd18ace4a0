"""The plan as people read it: the stage graph, resources per task, and GPU-hour estimates."""
from __future__ import annotations

from launch.graph import Job
from launch.plan import Plan


def gpu_hours(job: Job) -> float:
    """Upper bound: every task runs to its time limit."""
    return job.size * job.resources.gpus * job.resources.time_min / 60


def estimated_train_hours(job: Job, tflops: float, mfu: float = 0.35) -> float | None:
    """6·N·tokens at ``mfu`` of peak (attention term left out: a planning number, not a promise)."""
    tokens, n = job.notes.get("tokens"), job.notes.get("n_params")
    if not tokens or not n or not job.resources.gpus:
        return None
    return job.size * 6 * n * tokens / (mfu * tflops * 1e12) / 3600


def deps_text(job: Job) -> str:
    parts = []
    if job.after:
        parts.append("afterok:" + ("+".join(job.after) if len(job.after) <= 3 else f"{len(job.after)} jobs"))
    if job.after_corr:
        parts.append(f"aftercorr:{job.after_corr}")
    return " ".join(parts) or "-"


def format_plan(plan: Plan) -> str:
    p, spec = plan.profile, plan.spec
    counts: dict[str, int] = {}
    for a in plan.arms:
        counts[a.arm.paradigm] = counts.get(a.arm.paradigm, 0) + 1
    lines = [f"sweep {spec.name}  ->  {plan.sweep_dir}",
             f"cluster {p.name} ({p.scheduler}{', partition ' + p.partition if p.partition else ''})   "
             f"dataset {plan.dataset_id}",
             f"arms: {len(plan.arms)} (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")", "",
             f"{'job':<34} {'tasks':>5} {'nodes x procs':>13} {'gpu/node':>8} {'cpu/proc':>8} {'mem GB':>7} "
             f"{'time':>6} {'GPU-h max':>9}  depends on"]
    total, est_total = 0.0, 0.0
    for job in plan.jobs:
        r = job.resources
        gh = gpu_hours(job)
        total += gh
        lines.append(f"{job.name:<34} {job.size:>5} {f'{r.nodes} x {r.tasks_per_node}':>13} {r.gpus_per_node:>8} "
                     f"{r.cpus_per_task:>8} {r.mem_gb:>7.0f} {r.time_min:>5}m {gh:>9.1f}  {deps_text(job)}")
        mem = job.notes.get("memory")
        if mem:
            lines.append(f"{'':<36}ZeRO-3 model states {mem['state_gib_per_process']:.1f} GiB/process "
                         f"(budget {mem['budget_gib']:.1f} GiB{', optimizer offload' if mem['offload'] else ''})")
        est = estimated_train_hours(job, p.gpu_tflops)
        if est is not None:
            est_total += est
            lines.append(f"{'':<36}estimated {est:.1f} GPU-h at 35% MFU ({job.notes['tokens']:,} tokens/arm)")
    lines += ["", f"GPU-hours: at most {total:.0f} (every task to its time limit)"
              + (f"; training estimate {est_total:.0f}" if est_total else "")]
    return "\n".join(lines)
