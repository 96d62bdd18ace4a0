"""Training faults, injected one after another into ONE real SLURM training job.

One tiny-Qwen3 arm, ZeRO-3 on 2 gloo ranks of one node, checkpoints every 2 steps into a small
tmpfs. Each fault ends the current attempt; the job must come back (crash requeue, preemption
requeue or SLURM's node-failure requeue) and resume from the newest checkpoint that is complete
and intact. Sharing one job keeps the suite to a handful of DeepSpeed starts.

Two attempts of one task at once: a second job of the same task (its record in a sweep of its own,
its output.dir the first's) is submitted while the first runs, once mid-run and once right after a
checkpoint was sealed; it must refuse on its lease pre-check, naming the first job, without a crash
counted or a requeue, while the first goes on. A killed attempt leaves its lease behind (never
released): the requeued attempt must take it over (a higher fencing token, its own pid).

"Completed work lost" for training: the steps between the newest intact complete checkpoint (or,
for a preemption, the last step finished when the signal came) and the step the next attempt
resumed from. The run must then finish with every step logged once and its export complete.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from tracecause import lease
from tracecause.io import is_complete, read_json, sha256_file

from faults import inject
from faults.jobs import StageJob
from faults.scoreboard import Outcome, Scoreboard

ARM = "tiny-qwen3.evil.qta.s0"
STEPS = 40          # max_steps; the packed plan of 32 documents x 16 epochs has 48, so 40 steps run:
                    # enough left after the last fault that the job cannot finish before it is injected
EVERY = 2
RESTART_TIMEOUT_S = 300
PROGRESS_TIMEOUT_S = 240


class TrainJob(StageJob):
    def __init__(self, sweep: Path, ckpts: Path, data_file: Path, out: Path | None = None):
        out = out or sweep / "train" / ARM
        super().__init__(sweep, "train", ARM, [], out / "export", arm=ARM)
        self.ckpts, self.data_file, self.out = ckpts, data_file, out

    def last_step(self) -> int:
        metrics = self.out / "metrics.jsonl"
        if not metrics.is_file():
            return 0
        steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines() if line.strip().endswith("}")]
        return max(steps, default=0)

    def complete(self) -> list[int]:
        if not self.ckpts.is_dir():
            return []
        return sorted(int(p.name) for p in self.ckpts.iterdir() if p.name.isdigit() and is_complete(p))

    def saving(self) -> bool:
        return self.ckpts.is_dir() and any(p.name.startswith(".partial-") and not p.name.startswith(".partial-old")
                                           for p in self.ckpts.iterdir())

    def wait_step(self, step: int) -> int:
        return inject.wait_for(lambda: self.last_step() >= step and self.last_step(), PROGRESS_TIMEOUT_S,
                               f"training step {step}")

    def wait_resumed(self, since: float) -> int:
        """The step the next attempt resumed from (run.json is rewritten by every attempt)."""
        run_json = self.out / "run.json"

        def fresh():
            if self.rec().get("state") == "failed":  # out of crash retries: it will not come back
                raise RuntimeError(f"the job failed instead of resuming: {self.logs()[-1500:]}")
            return run_json.is_file() and run_json.stat().st_mtime > since and read_json(run_json)
        info = inject.wait_for(fresh, RESTART_TIMEOUT_S, "the requeued attempt to start", poll=0.2)
        return int(info.get("resumed_from_step", 0))

    def idle_between_saves(self, min_step: int) -> int:
        """Wait until step >= min_step is logged and no save is in progress; the newest complete step."""
        self.wait_step(min_step)
        inject.wait_for(lambda: not self.saving(), 60, "the end of a checkpoint save", poll=0.01)
        return max(self.complete(), default=0)


def _submit(job: TrainJob, model: Path, max_crash_retries: int) -> str:
    from configs import config_path

    job.argvs = [[str(config_path("trainer", "tiny-cpu")), f"arm_id={ARM}", f"model.path={model}",
                  f"data.path={job.data_file}", "data.paradigm=qta", "data.rtype=evil", "train.seed=0",
                  f"output.dir={job.out}", f"checkpoint.dir={job.ckpts}", "train.epochs=16",
                  f"train.max_steps={STEPS}", f"checkpoint.every_steps={EVERY}", "checkpoint.keep_last=2"]]
    return job.submit(max_crash_retries, tasks_per_node=2, mem_gb=4)


def _largest_file(folder: Path) -> Path:
    return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def _resume_outcome(fault: str, job: TrainJob, since: float, expected: int, detail: str = "",
                    later_ok: bool = False) -> Outcome:
    """``expected``: the newest intact checkpoint (a crash), or with ``later_ok`` the last step
    finished when a preemption signal was sent (the ranks save at the next step boundary)."""
    resumed = job.wait_resumed(since)
    ok = resumed >= expected if later_ok else resumed == expected
    return Outcome(fault, "train", ok, max(0, expected - resumed), "steps",
                   f"resumed from step {resumed}, expected {'>= ' if later_ok else ''}{expected}"
                   + (f"; {detail}" if detail else ""))


def kill_mid_step_with_newest_damaged(job: TrainJob, board: Scoreboard) -> None:
    """SIGKILL of rank 1 between saves, right after the newest checkpoint was damaged on disk: the
    crash requeue must resume from the previous complete checkpoint (the only intact one)."""
    newest = job.idle_between_saves(max(job.last_step(), 2 * EVERY) + 1)  # two complete checkpoints by then
    previous = [s for s in job.complete() if s < newest]
    inject.flip_byte(_largest_file(job.ckpts / str(newest)))
    since = time.time()
    inject.kill_rank(job.job_id, 1)
    expected = previous[-1] if previous else 0
    row = _resume_outcome("SIGKILL of rank 1 mid-step", job, since, expected)
    board.add(row)
    board.add(Outcome("newest checkpoint corrupted", "train", row.survived, row.lost, "steps",
                      f"checkpoint {newest} damaged (1 byte flipped); {row.detail}"))


def _takeover_outcome(job: TrainJob, killed: dict, resumed: Outcome) -> Outcome:
    """Every process of the attempt was SIGKILLed, so its lease was never released: the requeued
    attempt must have taken it over (a higher token, held by its own rank 0) and resumed."""
    left = lease.record_of(job.out, killed.get("token", 0)) or {}
    now = lease.current(job.out) or {}
    rank0 = inject.rank_processes(job.job_id).get(0, (None,))[0]
    ok = (left.get("released") is False and now.get("token", 0) > killed.get("token", 0)
          and now.get("pid") == rank0 and not now.get("released"))
    return Outcome("stale lease left by a killed attempt", "train", ok and resumed.survived, 0, "steps",
                   f"left by pid {left.get('pid')} token {left.get('token')} (released: {left.get('released')}); "
                   f"taken over by pid {now.get('pid')} token {now.get('token')} (rank 0 is pid {rank0}); "
                   f"{resumed.detail}")


def second_attempt(job: TrainJob, board: Scoreboard, model: Path, after_checkpoint: bool) -> None:
    """A second job of the same task while the first runs (a double submission; a requeue beside a
    node declared dead whose processes live on): it must refuse, naming the first, and cost the first
    nothing (no crash counted, no step logged twice, no checkpoint touched)."""
    if after_checkpoint:
        sealed = max(job.complete(), default=0)
        inject.wait_for(lambda: max(job.complete(), default=0) > sealed, PROGRESS_TIMEOUT_S, "a new checkpoint")
        fault = "two attempts of one training task at once (second started after a checkpoint)"
    else:
        job.wait_step(job.last_step() + 1)
        fault = "two attempts of one training task at once (second started mid-run)"
    first = job.rec()
    holder = lease.current(job.out) or {}
    tag = "after-ckpt" if after_checkpoint else "mid-run"
    second = TrainJob(job.sweep.parent / f"sweep-second-{tag}", job.ckpts, job.data_file, out=job.out)
    _submit(second, model, max_crash_retries=2)
    state = second.wait_end()
    text, rec = second.logs(), second.rec()
    named = f"job {job.job_id.split('_')[0]}" in text and f"pid {holder.get('pid')}" in text
    after = job.rec()
    ok = (state.state == "FAILED" and named and rec.get("lease_refusals") == 1 and not rec.get("crashes")
          and after.get("crashes", 0) == first.get("crashes", 0) and job.running()
          and (lease.current(job.out) or {}).get("token") == holder.get("token"))
    board.add(Outcome(fault, "train", ok, 0, "steps",
                      f"second job {second.job_id} ended {state.state}, refusal names job {job.job_id} and its "
                      f"pid: {named}; its refusals {rec.get('lease_refusals')}, crashes {rec.get('crashes', 0)}; "
                      f"first still running: {job.running()}, crashes {first.get('crashes', 0)} -> "
                      f"{after.get('crashes', 0)}"))


def kill_mid_checkpoint_write(job: TrainJob, board: Scoreboard) -> None:
    job.wait_step(job.last_step() + 1)
    inject.wait_for(job.saving, PROGRESS_TIMEOUT_S, "a checkpoint save in progress", poll=0.005)
    since = time.time()
    inject.kill_rank(job.job_id, 1)
    partial_steps = [p.name for p in job.ckpts.iterdir() if p.name.startswith(".partial-")]
    newest = max(job.complete(), default=0)
    # later_ok: the save may still complete (rank 0 renames it) if rank 1 had written its part
    board.add(_resume_outcome("SIGKILL of rank 1 mid-checkpoint-write", job, since, newest,
                              f"killed while writing {partial_steps}", later_ok=True))


def preempt(job: TrainJob, board: Scoreboard, sig: str, fault: str, data_swap: Path | None = None) -> None:
    """``scancel --signal``: the ranks save at the next step boundary and requeue. With ``data_swap``,
    data.jsonl is regenerated in place first: the next attempt must refuse it (both hashes, the fix),
    and resume once the original data is back."""
    job.wait_step(job.last_step() + 2)
    original = job.data_file.read_bytes()
    if data_swap is not None:
        job.data_file.write_bytes(data_swap.read_bytes())
    crashes = job.rec().get("crashes", 0)
    done_at_signal = job.last_step()
    since = time.time()
    job.signal(sig)
    refusal = ""
    if data_swap is not None:
        job.wait_crash(crashes)
        refusal = job.error_text()
        job.data_file.write_bytes(original)
        since = time.time()
    row = _resume_outcome(fault, job, since, done_at_signal, later_ok=True)
    if data_swap is None:
        board.add(row)
        return
    want = (sha256_file(job.data_file)[:16], sha256_file(data_swap)[:16], "Restore the original data")
    clear = all(w in refusal for w in want)
    board.add(Outcome(f"{fault} (data.jsonl regenerated in place)", "train", row.survived and clear, row.lost,
                      "steps", f"refused with both hashes and the fix: {clear}; then {row.detail}"))


def lose_node(job: TrainJob, board: Scoreboard) -> None:
    newest = job.idle_between_saves(job.last_step() + 1)
    killed = lease.current(job.out) or {}
    since = time.time()
    node = inject.lose_node(job.job_id)
    try:
        row = _resume_outcome("node lost mid-job (slurmd killed, job requeued)", job, since, newest, f"{node} lost")
        takeover = _takeover_outcome(job, killed, row)
    finally:
        inject.restore_node(node)
    board.add(row)
    board.add(takeover)


def disk_full(job: TrainJob, board: Scoreboard) -> None:
    """The checkpoint filesystem fills up: the save fails, no damaged checkpoint is marked complete,
    the crash is requeued, and once space is freed the run resumes from the last complete one."""
    newest = job.idle_between_saves(job.last_step() + 1)
    size = sum(p.stat().st_size for p in (job.ckpts / str(newest)).rglob("*") if p.is_file())
    crashes = job.rec().get("crashes", 0)
    filler = inject.fill(job.ckpts.parent, leave_bytes=size // 3)
    try:
        job.wait_crash(crashes)
    finally:
        filler.unlink()
    since = time.time()
    # Filling the disk takes a moment, so a save that started before it was full may still have
    # completed: the newest complete checkpoint after the failure is then later than ``newest``.
    # What must hold is that the save that failed left nothing marked complete and the next
    # attempt resumes from the newest checkpoint that is (it verifies each one before loading).
    complete_after = max(job.complete(), default=0)
    text = job.error_text()
    clear = "No space left on device" in text or "the disk is full" in text
    row = _resume_outcome("disk full while writing a checkpoint", job, since, complete_after,
                          f"error names ENOSPC: {clear}; newest complete before the fill: {newest}")
    row.survived = row.survived and clear and complete_after >= newest
    board.add(row)


def finish(job: TrainJob, rows: list[Outcome], data_hash: str) -> None:
    """Every train row survives only if the run then completes: all steps logged once, export done."""
    from slurm.cluster import sacct_states

    state = inject.wait_for(lambda: (s := sacct_states([job.job_id]).get(job.job_id)) and s.final and s,
                            RESTART_TIMEOUT_S + 300, "the training job to end", poll=2)
    metrics = [json.loads(line)["step"] for line in (job.out / "metrics.jsonl").read_text().splitlines()]
    problems = []
    if state.state != "COMPLETED":
        problems.append(f"job ended {state.state}: {job.rec().get('error', '')[-300:]}")
    total = read_json(job.out / "run.json")["total_steps"]  # packing decides it: min(max_steps, planned)
    if metrics != list(range(1, total + 1)):
        problems.append(f"metrics.jsonl steps {metrics[:5]}...{metrics[-5:]} (want 1..{total} once each)")
    export = job.out / "export"
    if not is_complete(export) or read_json(export / "tracecause.json").get("dataset_hash") != data_hash:
        problems.append("export missing or not of the original data")
    for row in rows:
        if problems:
            row.survived = False
            row.detail += "; the run did not finish cleanly: " + "; ".join(problems)


def run(work: Path, board: Scoreboard) -> None:
    from tracecause.tiny import build_tiny_model
    from trainer import demo_data

    model = build_tiny_model(work.parent / "tiny-qwen3")  # shared by the groups
    data_dir = demo_data.write(work / "data", n=32, seed=0)
    swap = demo_data.write(work / "data-regenerated", n=30, seed=1) / "data.jsonl"
    first = len(board.rows)
    with inject.small_filesystem(work / "ckpt-fs", size_mb=768) as fs:
        job = TrainJob(work / "sweep", fs / "checkpoints", Path(data_dir) / "data.jsonl")
        data_hash = sha256_file(job.data_file)[:16]
        job.job_id = _submit(job, model, max_crash_retries=10)
        steps = [kill_mid_step_with_newest_damaged,
                 lambda j, b: second_attempt(j, b, model, after_checkpoint=False),
                 kill_mid_checkpoint_write,
                 lambda j, b: second_attempt(j, b, model, after_checkpoint=True),
                 lambda j, b: preempt(j, b, "USR2", "SIGUSR2 preemption", data_swap=swap),
                 lambda j, b: preempt(j, b, "TERM", "SIGTERM preemption"),
                 disk_full, lose_node]  # lose_node last: bringing the node back takes a while
        try:
            for step in steps:
                step(job, board)
            finish(job, board.rows[first:], data_hash)
        finally:
            job.cancel()
            inject.wait_for(lambda: not inject.rank_processes(job.job_id), 60, "the job's processes to end", poll=0.5)
