"""Complete, atomic, rotating checkpoints of a ZeRO-3 run.

``checkpoints/<step>/`` holds DeepSpeed's shards (model + optimizer, every rank; LR schedule and
our client state in rank 0's model file), one RNG file per rank, ``trainer_state.json`` and the
completion marker. Every rank writes into ``checkpoints/.partial-<step>.t<token>/`` (``token``: the
attempt's fencing token, tracecause.lease, so two attempts never write into one folder); after a
barrier rank 0 seals it and renames it, so a folder named by a step is always whole, and a crash
mid-save leaves only a ``.partial-`` folder that is never loaded (and is swept by the next save of
a NEWER attempt: a partial of a higher token is another attempt's save in progress, never touched).

Sealing lists every rank's expected files (DeepSpeed's per-rank shards named after rank 0's, one
RNG file per rank, the state file) and refuses a folder missing any of them. Every file is fsynced
before the marker is written, and the marker lists each file's size and sha256: resume verifies the
newest complete checkpoint against it (every expected file listed and intact) and falls back to the
previous one when it was damaged afterwards (bit rot, a truncating copy). Publishing and rotating
happen only after a fencing check. A checkpoint also records the dataset hash; resuming on other
data is refused, never silently mixed.
"""
from __future__ import annotations

import json
import logging
import random
import re
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from tracecause.io import (atomic_write_json, completion_info, fsync_tree, is_complete, mark_complete, sha256_file,
                          swap_dir)

from . import distributed as dist

log = logging.getLogger("trainer")
DS_TAG = "ds"
STATE_FILE = "trainer_state.json"
PARTIAL = ".partial-"
RANK0_SHARD = re.compile(r"(?<![0-9])zero_pp_rank_0_")  # DeepSpeed's per-rank file names, rank 0's
TOKEN_SUFFIX = re.compile(r"\.t(\d+)$")


class IncompleteCheckpoint(RuntimeError):
    """A save whose folder lacks some rank's file: never sealed."""


def partial_token(name: str) -> int:
    """The fencing token a ``.partial-`` folder was written under (0: before tokens existed)."""
    m = TOKEN_SUFFIX.search(name)
    return int(m.group(1)) if m else 0


def expected_files(folder: Path, world_size: int) -> tuple[list[str], str]:
    """(every rank's files, what is missing) for a checkpoint folder of ``world_size`` ranks."""
    ds = folder / DS_TAG
    rank0 = sorted(p.name for p in ds.iterdir() if RANK0_SHARD.search(p.name)) if ds.is_dir() else []
    names = [f"{DS_TAG}/{RANK0_SHARD.sub(f'zero_pp_rank_{r}_', n)}" for n in rank0 for r in range(world_size)]
    names += [f"rng_rank{r}.pt" for r in range(world_size)] + [STATE_FILE]
    missing = [n for n in names if not (folder / n).is_file()]
    if not rank0:
        missing.insert(0, f"{DS_TAG}/ (DeepSpeed's shards of rank 0)")
    return names, ", ".join(missing)


def seal(folder: Path, step: int, world_size: int) -> None:
    """Write the marker listing every rank's expected files and every file's sha256; refuse a folder
    that lacks any rank's file (it would "verify" afterwards and fail only when loaded)."""
    expected, missing = expected_files(folder, world_size)
    if missing:
        raise IncompleteCheckpoint(f"checkpoint {step} in {folder} is missing files of {world_size} ranks: {missing}; "
                                   "it is not sealed, never loaded, and the last sealed checkpoint stays the resume "
                                   "point")
    mark_complete(folder, {"step": step, "world_size": world_size, "expected": expected, "files": file_manifest(folder)})


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
    info = completion_info(path) or {}
    listed = info.get("files")
    if listed is None:  # written before markers listed their files: nothing to verify against
        return None
    for rel in info.get("expected", []):
        if rel not in listed:
            return f"{rel} (one rank's file) is not in the marker"
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


def check_newest_compatible(root: Path, config_hash: str, world_size: int, dataset_hash: str, data_path: str) -> None:
    """Before any process group: refuse another run's checkpoints from the newest one's state file
    alone (no hashing). Which checkpoint is resumed, verified, is chosen later, under the lease."""
    newest = latest(root)
    if newest is None:
        return
    try:
        read_state(newest)
    except (OSError, ValueError):  # a damaged state file: resume_point names it and falls back
        return
    check_compatible(newest, config_hash, world_size, dataset_hash, data_path)


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


def save(engine, root: str | Path, step: int, state: dict, rank: int, keep_last: int, lease=None,
         token: int = 0) -> float:
    """Collective: every rank calls it. Returns the seconds it took. ``lease`` (rank 0's) and ``token``
    (every rank's): the attempt's fencing, checked before anything is deleted, published or rotated."""
    t0 = time.perf_counter()
    root = Path(root)
    tmp = root / f"{PARTIAL}{step}.t{token}"
    dist.fence(lease, f"starting checkpoint {step}")
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():  # this attempt's own earlier try at this step
            shutil.rmtree(tmp)
    dist.barrier()
    try:
        engine.save_checkpoint(str(tmp), tag=DS_TAG, client_state={"tracecause": state})
        torch.save(_rng_state(), tmp / f"rng_rank{rank}.pt")
        fsync_tree(tmp)  # every rank flushes what it wrote (on its own node) before the marker exists
    except Exception as err:  # torch's writer says "file write failed", not why: name the likely cause
        raise RuntimeError(_save_failure(root, tmp, step, err)) from err
    dist.barrier()
    refused = ""
    if rank == 0:
        atomic_write_json(tmp / STATE_FILE, state)
        try:
            seal(tmp, step, state["world_size"])
        except IncompleteCheckpoint as err:
            refused = str(err)
    if dist.all_reduce_max(float(bool(refused))) > 0:  # every rank stops, none waits for rank 0
        raise IncompleteCheckpoint(refused or f"checkpoint {step}: rank 0 refused to seal it (a rank's files are missing)")
    dist.fence(lease, f"publishing checkpoint {step}")
    if rank == 0:
        _publish(root, tmp, step, token)
        if lease is not None:
            lease.check("rotating checkpoints")
        _rotate(root, keep_last, token)
    dist.barrier()
    return time.perf_counter() - t0


def _publish(root: Path, tmp: Path, step: int, token: int) -> None:
    # The same step saved again after a resume is replaced whole; the old one is set aside under a
    # partial name of this attempt's token, so a crash mid-swap leaves a folder _rotate sweeps.
    swap_dir(tmp, root / str(step), trash=root / f"{PARTIAL}old-{step}.t{token}")


def _save_failure(root: Path, tmp: Path, step: int, err: Exception) -> str:
    free = shutil.disk_usage(root).free
    newest = latest(root)
    need = sum(p.stat().st_size for p in newest.rglob("*") if p.is_file()) if newest else 0
    why = (f"the disk is full: {free / 2**20:.0f} MiB free, a checkpoint takes ~{need / 2**20:.0f} MiB. Free space "
           "there (or point checkpoint.dir elsewhere) and requeue" if free < need or free < 2**20 else
           f"{free / 2**20:.0f} MiB free")
    return (f"saving checkpoint {step} into {tmp} failed ({type(err).__name__}: {err}); {why}. The last complete "
            f"checkpoint ({newest.name if newest else 'none'}) is untouched and resume starts from it")


def _rotate(root: Path, keep_last: int, token: int = 0) -> None:
    """Keep the newest ``keep_last`` complete checkpoints; sweep partial folders of OLDER attempts
    (their writers are fenced out). A partial of this token or a higher one is never touched."""
    steps = complete_steps(root)
    for s in steps[:-keep_last]:
        shutil.rmtree(root / str(s), ignore_errors=True)
    for p in root.iterdir():
        if p.name.startswith(PARTIAL) and partial_token(p.name) < token:
            shutil.rmtree(p, ignore_errors=True)


def load(engine, path: Path, rank: int) -> dict:
    """Collective: restore shards, LR schedule and this rank's RNG; return the client state."""
    try:
        load_path, client = engine.load_checkpoint(str(path), tag=DS_TAG, load_optimizer_states=True,
                                                   load_lr_scheduler_states=True)
    except (AssertionError, FileNotFoundError) as err:  # DeepSpeed asserts on a missing shard, without a word
        present = sorted(p.name for p in (path / DS_TAG).iterdir()) if (path / DS_TAG).is_dir() else "the folder is gone"
        raise RuntimeError(f"DeepSpeed could not load checkpoint {path} ({type(err).__name__}: {err}); its shards: "
                           f"{present}") from err
    if load_path is None:
        raise RuntimeError(f"DeepSpeed could not load the checkpoint in {path}")
    rng_file = path / f"rng_rank{rank}.pt"
    _set_rng_state(torch.load(rng_file, weights_only=False))
    return client["tracecause"]
