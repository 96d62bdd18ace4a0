"""Complete, atomic, rotating checkpoints of a ZeRO-3 run.

``checkpoints/<step>/`` holds DeepSpeed's shards (model + optimizer, every rank; LR schedule and
our client state in rank 0's model file), one RNG file per rank, ``trainer_state.json`` and the
completion marker. Every rank writes into ``checkpoints/.partial-<step>/``; after a barrier rank 0
marks it complete and renames it, so a folder named by a step is always whole, and a crash mid-save
leaves only a ``.partial-`` folder that is never loaded (and is swept by the next save).

Every file is fsynced before the marker is written, and the marker lists each file's size and
sha256: resume verifies the newest complete checkpoint against it and falls back to the previous
one when it was damaged afterwards (bit rot, a truncating copy). A checkpoint also records the
dataset hash; resuming on other data is refused, never silently mixed.
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

from tracecause.io import (atomic_write_json, completion_info, fsync_dir, fsync_tree, is_complete, mark_complete,
                          sha256_file)

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


def file_manifest(folder: Path) -> dict[str, dict]:
    """Relative path -> {size, sha256} of every file under ``folder`` (the marker excluded)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "_COMPLETE")
    return {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": sha256_file(p)} for p in files}


def damage(path: Path) -> str | None:
    """What is wrong with a complete checkpoint's files, or None when they match its marker."""
    listed = (completion_info(path) or {}).get("files")
    if listed is None:  # written before markers listed their files: nothing to verify against
        return None
    for rel, want in listed.items():
        f = path / rel
        if not f.is_file():
            return f"{rel} is missing"
        if f.stat().st_size != want["size"]:
            return f"{rel} has {f.stat().st_size} bytes, the marker says {want['size']}"
        if sha256_file(f) != want["sha256"]:
            return f"{rel} does not match its sha256 in the marker"
    return None


def resume_point(root: str | Path) -> Path | None:
    """The newest complete checkpoint whose files verify; damaged newer ones are named and skipped."""
    root = Path(root)
    steps = complete_steps(root)
    damaged = []
    for s in reversed(steps):
        problem = damage(root / str(s))
        if problem is None:
            if damaged:
                log.warning("falling back to checkpoint %d: %s", s, "; ".join(damaged))
            return root / str(s)
        damaged.append(f"checkpoint {s} is damaged ({problem})")
    if damaged:
        raise ValueError(f"every complete checkpoint in {root} is damaged: {'; '.join(damaged)}. Restore them "
                           f"from a copy, or move {root} away to train from step 0")
    return None


def check_dataset(what: str, recorded: str | None, dataset_hash: str, data_path: str) -> None:
    """Refuse to continue (or reuse) training done on other data: resuming would mix two datasets."""
    if recorded is not None and recorded != dataset_hash:
        raise ValueError(f"{what} was trained on dataset hash {recorded}, but data.path={data_path} now has dataset "
                         f"hash {dataset_hash}: the data changed since. Restore the original data, or train on the "
                         "new data under a new output.dir (or checkpoint.dir)")


def check_compatible(path: Path, config_hash: str, world_size: int, dataset_hash: str | None = None,
                     data_path: str = "") -> dict:
    """Refuse a checkpoint trained under another config (both hashes named), world size or dataset."""
    state = read_state(path)
    if dataset_hash is not None:
        check_dataset(f"checkpoint {path}", state.get("dataset_hash"), dataset_hash, data_path)
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
    try:
        engine.save_checkpoint(str(tmp), tag=DS_TAG, client_state={"tracecause": state})
        torch.save(_rng_state(), tmp / f"rng_rank{rank}.pt")
        fsync_tree(tmp)  # every rank flushes what it wrote (on its own node) before the marker exists
    except Exception as err:  # torch's writer says "file write failed", not why: name the likely cause
        raise RuntimeError(_save_failure(root, tmp, step, err)) from err
    dist.barrier()
    if rank == 0:
        atomic_write_json(tmp / STATE_FILE, state)
        mark_complete(tmp, {"step": step, "files": file_manifest(tmp)})
        final = root / str(step)
        if final.exists():  # the same step saved again after a resume: replace it whole
            trash = root / f"{PARTIAL}old-{step}"
            os.replace(final, trash)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
        fsync_dir(root)
        _rotate(root, keep_last)
    dist.barrier()
    return time.perf_counter() - t0


def _save_failure(root: Path, tmp: Path, step: int, err: Exception) -> str:
    free = shutil.disk_usage(root).free
    newest = latest(root)
    need = sum(p.stat().st_size for p in newest.rglob("*") if p.is_file()) if newest else 0
    why = (f"the disk is full: {free / 2**20:.0f} MiB free, a checkpoint takes ~{need / 2**20:.0f} MiB. Free space "
           "there (or point checkpoint.dir elsewhere) and requeue" if free < need or free < 2**20 else
           f"{free / 2**20:.0f} MiB free")
    return (f"saving checkpoint {step} into {tmp} failed ({type(err).__name__}: {err}); {why}. The last complete "
            f"checkpoint ({newest.name if newest else 'none'}) is untouched and resume starts from it")


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
