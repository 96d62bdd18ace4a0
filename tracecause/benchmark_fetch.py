"""``tracecause benchmarks fetch``: download a battery's files from their pinned upstream, resumably,
and check each against the lock before it takes its place.

A download goes to ``<file>.part`` (fsynced as it grows). A dropped connection is retried with an
HTTP Range request from where the part ends (a server that ignores Range sends the whole file and
the part starts over); 429/5xx back off like every client here (tracecause.http_retry). A killed
fetch leaves only the part, which the next fetch continues. Only a complete file whose sha256 is
the locked one is renamed into place; a mismatch deletes the part and names file, URL and both
hashes. Where the lock is unset, ``--update-lock`` records the hash of this first fetch.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

from tracecause.benchmarks import LOCK_FILE, SOURCES_FILE, BenchmarkFile, battery_files, read_lock, write_lock
from tracecause.http_retry import RetryPolicy, parse_retry_after, retry_delay, retryable_status
from tracecause.io import fsync_dir, sha256_file


class FetchError(RuntimeError):
    pass


@dataclass
class FetchReport:
    fetched: list[str] = field(default_factory=list)     # downloaded and verified (or newly locked)
    present: list[str] = field(default_factory=list)     # already there with the locked sha256
    locked: dict[str, str] = field(default_factory=dict)  # relpath -> sha256 recorded by --update-lock
    unverified: dict[str, str] = field(default_factory=dict)  # lock unset, not updated: relpath -> sha256
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def download(url: str, final: Path, client: httpx.Client, policy: RetryPolicy,
             log: Callable[[str], None] = print) -> Path:
    """``url`` -> ``final.part``, resuming across dropped connections; returns the complete part."""
    part = final.with_name(final.name + ".part")
    final.parent.mkdir(parents=True, exist_ok=True)
    last = ""
    for attempt in range(policy.max_retries + 1):
        retry_after = None
        offset = part.stat().st_size if part.exists() else 0
        try:
            # identity encoding: Range offsets count the file's own bytes, not a gzip stream's
            headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
            with client.stream("GET", url, headers=headers) as resp:
                if resp.status_code == 416 and offset:  # the part already holds the whole file
                    return part
                if resp.status_code in (200, 206):
                    mode = "ab" if resp.status_code == 206 else "wb"  # 200: the server ignored Range
                    with open(part, mode) as fh:
                        try:
                            for chunk in resp.iter_bytes():  # as received: a drop keeps every byte so far
                                fh.write(chunk)
                        finally:  # keep what arrived: the next attempt continues from here
                            fh.flush()
                            os.fsync(fh.fileno())
                    return part
                resp.read()
                last = f"{url} answered {resp.status_code}: {resp.text[:200]}"
                if not retryable_status(resp.status_code):
                    raise FetchError(last)
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
        except httpx.TransportError as err:  # refused, reset, dropped mid-body, timeout
            got = part.stat().st_size if part.exists() else 0
            last = f"{url}: {type(err).__name__} after {got} bytes"
        if attempt < policy.max_retries:
            delay = retry_delay(attempt + 1, policy, retry_after)
            log(f"  {last}; retry {attempt + 1}/{policy.max_retries} in {delay:.1f}s (resuming)")
            time.sleep(delay)
    raise FetchError(f"gave up after {policy.max_retries} retries: {last}; run the fetch again to resume")


def fetch_battery(battery: str, dest: str | Path, update_lock: bool = False, mirror: str = "",
                  sources: str | Path = SOURCES_FILE, lock: str | Path = LOCK_FILE,
                  policy: RetryPolicy = RetryPolicy(max_retries=8, backoff=1.0, backoff_max=30.0),
                  timeout_s: float = 60.0, log: Callable[[str], None] = print) -> FetchReport:
    """Fetch every upstream file of ``battery`` into ``dest``; idempotent (verified files are kept)."""
    root = Path(dest).expanduser().resolve()
    files = battery_files(battery, sources, lock)
    report = FetchReport()
    with httpx.Client(timeout=timeout_s, follow_redirects=True) as client:
        for f in files:
            try:
                _fetch_one(f, root, client, policy, mirror, update_lock, report, log)
            except FetchError as err:
                report.errors.append(f"{f.relpath}: {err}")
                log(f"  FAILED {f.relpath}: {err}")
    if report.locked:
        entries = read_lock(lock)
        entries.update(report.locked)
        write_lock(entries, lock)
    return report


def _fetch_one(f: BenchmarkFile, root: Path, client: httpx.Client, policy: RetryPolicy, mirror: str,
               update_lock: bool, report: FetchReport, log: Callable[[str], None]) -> None:
    final = root / f.relpath
    if not f.commit:
        raise FetchError(f"source {f.source!r} ({f.repo}) has no pinned commit: review upstream and set "
                         f"sources.{f.source}.commit in configs/benchmarks/sources.yaml")
    if f.sha256 and final.is_file() and sha256_file(final) == f.sha256:
        report.present.append(f.relpath)
        log(f"  ok       {f.relpath} (already fetched, sha256 matches the lock)")
        return
    url = f.url(mirror)
    log(f"  fetching {f.relpath} <- {url}")
    part = download(url, final, client, policy, log)
    got = sha256_file(part)
    if f.sha256 and got != f.sha256:
        part.unlink()
        raise FetchError(f"sha256 {got} is not the locked {f.sha256} (from {url}); the download was corrupt "
                         f"or upstream changed under the pinned commit. Nothing was kept; fetch again, and if it "
                         f"persists, review upstream before re-pinning (the lock line to '-', then --update-lock)")
    os.replace(part, final)
    fsync_dir(final.parent)
    report.fetched.append(f.relpath)
    if not f.sha256:
        if update_lock:
            report.locked[f.relpath] = got
            log(f"  locked   {f.relpath} sha256 {got}")
        else:
            report.unverified[f.relpath] = got
            log(f"  UNVERIFIED {f.relpath} sha256 {got}: the lock is unset; review it, then fetch with --update-lock")
