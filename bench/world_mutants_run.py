"""Running the real stages from a scratch copy of the repository (bench/world_mutants.py's machinery).

A copy's own modules are what runs: every stage is a subprocess with ``PYTHONPATH=<copy>`` and its
working directory in the copy (PYTHONPATH entries come before the editable install of the venv),
and the copy's launch spawns its stage processes from there, so a patched file reaches the stage.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(BENCH) not in sys.path:  # bench/ is scripts, not a package: reuse mutations.py's helpers
    sys.path.insert(0, str(BENCH))
from mutations import apply, scratch_copy  # noqa: E402  (one copy and one patch logic for both scripts)

# What a stage's own message looks like when it refuses (the analysis's ValueError, a trainer refusal,
# a stage that raises): the last such line of its logs is what the mutant's line prints.
REFUSAL_WORDS = ("refus", "Error", "error:", "must ")
# a traceback's last line (``launch.submit.SweepMismatch: ...``): launch refused before any stage ran
EXCEPTION_LINE = re.compile(r"^([a-z_]\w*\.)*[A-Z]\w*(Error|Exception|Mismatch|Refused|Exit): ")
# Sweep folders each stage writes: a re-run from a stage on removes its outputs and everything after.
STAGE_OUTPUTS = {"datagen": ("data", "train", "eval", "analysis"), "train": ("train", "eval", "analysis"),
                 "eval": ("eval", "analysis"), "analysis": ("analysis",)}
SUBMIT = ("import sys\nfrom launch.plan import make_plan\nfrom launch.submit import submit\n"
          "submit(make_plan(sys.argv[1], sweep_dir=sys.argv[2]))\n")


def make_copy(dest: Path) -> Path:
    """The working tree as it is now (tracked + untracked, not ignored), and a check that the copy
    imports its own code rather than /work/main's editable install."""
    scratch_copy(dest)
    where = subprocess.run([sys.executable, "-c", "import launch, trainer, evalsuite, datagen; "
                            "print(launch.__file__, trainer.__file__, evalsuite.__file__, datagen.__file__)"],
                           cwd=dest, env=copy_env(dest), capture_output=True, text=True).stdout.split()
    if len(where) != 4 or not all(w.startswith(str(dest)) for w in where):
        raise SystemExit(f"the scratch copy {dest} does not import its own code ({where}); "
                         "a mutant applied to it would not run")
    return dest


def mutated_copy(clean: Path, dest: Path, mutant) -> Path:
    """A copy of ``clean`` with the mutant's edits; refused (SystemExit naming the file) when a
    snippet is not found exactly once: a mutant that no longer applies must never count as caught."""
    shutil.rmtree(dest, ignore_errors=True)  # a scratch folder of ours: a re-run starts it afresh
    shutil.copytree(clean, dest, symlinks=True)
    apply(dest, mutant)
    return dest


def copy_env(copy: Path) -> dict:
    threads = os.environ.get("OMP_NUM_THREADS", "2")
    return {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": threads,
            "WANDB_MODE": "disabled"}


def run_in_copy(copy: Path, argv: list[str], log: Path) -> tuple[int, str]:
    """``python *argv`` in the copy; (exit status, the refusal message when it failed). Output in ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        rc = subprocess.run([sys.executable, *argv], cwd=copy, env=copy_env(copy), stdout=fh,
                            stderr=subprocess.STDOUT).returncode
    return rc, ("" if rc == 0 else refusal_message([log]) or "(no message in the log)")


def run_world(copy: Path, sweep_yaml: Path, sweep_dir: Path, log: Path) -> tuple[int, str]:
    """The sweep through the real stages (plan + submit, local executor) from the copy's code; a
    re-run skips every task whose outputs are complete, so a prepared sweep runs only what was removed."""
    rc, message = run_in_copy(copy, ["-c", SUBMIT, str(sweep_yaml), str(sweep_dir)], log)
    if rc != 0 and not EXCEPTION_LINE.match(message):  # not launch's own refusal: the failed stage's log says why
        message = refusal_message(sorted((sweep_dir / "jobs").rglob("*"))) or message
    return rc, message


def reanalyse(copy: Path, sweep_dir: Path, log: Path, *overrides: str) -> tuple[int, str]:
    """The analysis stage alone, as launch runs it (``evalsuite analyze <sweep>``), from the copy."""
    shutil.rmtree(sweep_dir / "analysis", ignore_errors=True)
    return run_in_copy(copy, ["-m", "evalsuite", "analyze", str(sweep_dir), "--no-wandb", "--no-progress",
                              *overrides], log)


def refusal_message(files: list[Path]) -> str:
    """The last line that reads like a refusal in the newest of ``files`` that holds one."""
    found = []
    for path in files:
        if not path.is_file() or path.stat().st_size > 20_000_000:
            continue
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines()
                 if (any(w in ln for w in REFUSAL_WORDS) or EXCEPTION_LINE.match(ln.strip())) and "Traceback" not in ln]
        if lines:
            found.append((path.stat().st_mtime, lines[-1]))
    return max(found)[1][:400] if found else ""


def reuse_sweep(reference: Path, dest: Path, first_stage: str) -> Path:
    """A copy of the reference sweep without the outputs of ``first_stage`` and every stage after it
    (and their job records): what a mutant that reaches that stage first must run again."""
    if first_stage not in STAGE_OUTPUTS:
        raise ValueError(f"unknown stage {first_stage!r}; known: {sorted(STAGE_OUTPUTS)}")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(reference, dest, symlinks=True)
    for folder in STAGE_OUTPUTS[first_stage]:
        shutil.rmtree(dest / folder, ignore_errors=True)
    shutil.rmtree(dest / "jobs", ignore_errors=True)
    return dest
