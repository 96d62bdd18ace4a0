"""Complete, atomic, rotating checkpoints of a ZeRO-3 run.

``checkpoints/<step>/`` holds DeepSpeed's shards (model + optimizer, every rank; LR schedule and
our client state in rank 0's model file), one RNG file per rank, ``trainer_state.json`` and the
completion marker. Every rank writes into ``checkpoints/.partial-<step>/``; after a barrier rank 0
marks it complete and renames it, so a folder named by a step is always whole, and a crash mid-save
leaves only a ``.partial-`` folder that is never loaded (and is swept by the next save).
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from tracecause.io import atomic_write_json, is_complete, mark_complete

from . import distributed as dist

log = logging.getLogger("trainer")
DS_TAG = "ds"
STATE_FILE = "trainer_state.json"
PARTIAL = ".partial-"


def complete_steps(root: str | Path) -> list[int]:
    root = Path(root)
    if not root.is_dir():
        return []
    steps = [int(p.name) for p in root.iterdir() if p.name.isdigit() and p.is_dir() and is_complete(p)]
    return sorted(steps)


def latest(root: str | Path) -> Path | None:
    steps = complete_steps(root)
    return Path(root) / str(steps[-1]) if steps else None


def read_state(path: str | Path) -> dict:
    return json.loads((Path(path) / STATE_FILE).read_text())


def check_compatible(path: Path, config_hash: str, world_size: int) -> dict:
    """Refuse a checkpoint trained under another config (both hashes named) or world size."""
    state = read_state(path)
    if state.get("config_hash") != config_hash:
        raise ValueError(f"checkpoint {path} was written by config hash {state.get('config_hash')}, "
                         f"this run's config hash is {config_hash}: refusing to resume a different training run. "
                         "Use a new output.dir (or checkpoint.dir), or restore the original config")
    if state.get("world_size") != world_size:
        raise ValueError(f"checkpoint {path} holds ZeRO-3 shards of {state.get('world_size')} ranks; this job has "
                         f"{world_size}. Resume with the same number of processes")
    return state


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save(engine, root: str | Path, step: int, state: dict, rank: int, keep_last: int) -> float:
    """Collective: every rank calls it. Returns the seconds it took."""
    t0 = time.perf_counter()
    root = Path(root)
    tmp = root / f"{PARTIAL}{step}"
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():  # left by a crash during an earlier save of this step
            shutil.rmtree(tmp)
    dist.barrier()
    engine.save_checkpoint(str(tmp), tag=DS_TAG, client_state={"tracecause": state})
    torch.save(_rng_state(), tmp / f"rng_rank{rank}.pt")
    dist.barrier()
    if rank == 0:
        atomic_write_json(tmp / STATE_FILE, state)
        mark_complete(tmp, {"step": step})
        final = root / str(step)
        if final.exists():  # the same step saved again after a resume: replace it whole
            trash = root / f"{PARTIAL}old-{step}"
            os.replace(final, trash)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _rotate(root, keep_last)
    dist.barrier()
    return time.perf_counter() - t0


def _rotate(root: Path, keep_last: int) -> None:
    steps = complete_steps(root)
    for s in steps[:-keep_last]:
        shutil.rmtree(root / str(s), ignore_errors=True)
    for p in root.iterdir():
        if p.name.startswith(PARTIAL):
            shutil.rmtree(p, ignore_errors=True)


def load(engine, path: Path, rank: int) -> dict:
    """Collective: restore shards, LR schedule and this rank's RNG; return the client state."""
    load_path, client = engine.load_checkpoint(str(path), tag=DS_TAG, load_optimizer_states=True,
                                               load_lr_scheduler_states=True)
    if load_path is None:
        raise RuntimeError(f"DeepSpeed could not load the checkpoint in {path}")
    rng_file = path / f"rng_rank{rank}.pt"
    _set_rng_state(torch.load(rng_file, weights_only=False))
    return client["tracecause"]
