"""Seals: what a completion marker records of the files it completes, and the check before reuse.

A marker says an output was finished; it does not say the bytes are still the ones written. A
restore from a lagging replica, an interrupted copy of a moved sweep or a filesystem that dropped
an un-synced tail leaves the marker and changes the file. So each marker records a seal per file
(sha256, size, rows where counted), and every consumer re-hashes the file against it before reuse:
a mismatch is named (file, expected and found hash), then the unit is redone or refused — never
reused silently.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

from tracecause.io import sha256_file


class SealError(ValueError):
    """A finished file no longer matches the seal its completion marker recorded."""


def seal(path: str | Path, rows: int | None = None) -> dict:
    """The seal of a finished file: its sha256 and size, and its row count where the writer counted."""
    path = Path(path)
    out = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    if rows is not None:
        out["rows"] = rows
    return out


def seal_files(folder: str | Path, rows: Mapping[str, int | None]) -> dict:
    """``{"files": {name: seal}}`` for the files of ``folder`` named in ``rows`` (name -> row count or None)."""
    return {"files": {name: seal(Path(folder) / name, n) for name, n in rows.items()}}


def seal_problem(path: str | Path, sealed: Mapping | None) -> tuple[str, str]:
    """(problem, sha256 found): problem is "" while ``path`` still holds what ``sealed`` recorded.

    ``sealed`` is a ``seal()`` record (a marker, or one entry of its ``files``); one without a sha256
    (a marker written before outputs were sealed) is a problem the caller may choose to tolerate.
    """
    path = Path(path)
    if not sealed or not sealed.get("sha256"):
        return f"{path}: its completion marker records no sha256 (written before outputs were sealed)", ""
    if not path.is_file():
        return f"{path} is missing (sealed sha256 {sealed['sha256']})", ""
    found = sha256_file(path)
    if found != sealed["sha256"]:
        size = path.stat().st_size
        was = f", sealed at {sealed['bytes']} bytes" if "bytes" in sealed else ""
        return (f"{path} does not hold what was sealed when it was finished: sha256 expected {sealed['sha256']}, "
                f"found {found} ({size} bytes{was})"), found
    return "", found


def files_problem(folder: str | Path, sealed_files: Mapping[str, Mapping | None]) -> str:
    """The first of ``folder``'s sealed files (name -> seal) that no longer holds its seal ("" if none)."""
    for name, sealed in sealed_files.items():
        problem, _ = seal_problem(Path(folder) / name, sealed)
        if problem:
            return problem
    return ""


def verify_seal(path: str | Path, sealed: Mapping | None) -> str:
    """The sha256 of ``path``, re-hashed; SealError naming the file and both hashes if it differs."""
    problem, found = seal_problem(path, sealed)
    if problem:
        raise SealError(problem)
    return found


def weights_digest(folder: str | Path) -> str:
    """The weights hash of an exported model folder, as its tracecause.json records it: sha256 over
    (name, sha256) of each *.safetensors file in name order, first 16 hex digits (the same formula as
    trainer/export.py's weights_hash, which writes it; tests/test_seal_verify.py holds them equal)."""
    h = hashlib.sha256()
    for f in sorted(Path(folder).glob("*.safetensors")):
        h.update(f.name.encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()[:16]
