"""``tracecause wandb-sync SWEEP``: upload a sweep's offline W&B fragments, each once, in order.

Each process writes its own ``offline-run-*`` folder, even under a reused run id (a requeued job,
each eval step). A run is uploaded as ``wandb sync --id ID <its fragments, oldest first>``; a
ledger (``<sweep>/wandb/synced.json``: per run id, each uploaded fragment's folder relative to
the sweep, size and sha256) makes the command idempotent: a second call uploads nothing, and a
sweep that grew (a resumed run's new fragment) uploads only what is new, to the same run.
A fragment that changed after its upload is reported, never uploaded twice.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tracecause.contracts import SweepLayout
from tracecause.io import atomic_write_json, sha256_file

LEDGER = "synced.json"


def ledger_path(sweep_dir: str | Path) -> Path:
    return SweepLayout(Path(sweep_dir)).wandb / LEDGER


def read_ledger(sweep_dir: str | Path) -> dict:
    path = ledger_path(sweep_dir)
    return json.loads(path.read_text()) if path.is_file() else {}


def _fingerprint(wandb_file: Path) -> dict:
    return {"size": wandb_file.stat().st_size, "sha256": sha256_file(wandb_file)}


def plan(sweep_dir: str | Path) -> list[dict]:
    """Per run id: its fragments in start order, split into ``new``, ``synced`` and ``changed``."""
    from tracecause import wandb_records

    root = Path(sweep_dir).resolve()
    ledger = read_ledger(root)
    runs: dict[str, dict] = {}
    for f in wandb_records.find_run_files(root):
        info = wandb_records.run_info(f)
        entry = runs.setdefault(info["id"], {"id": info["id"], "job_type": info["job_type"], "name": info["name"],
                                             "new": [], "synced": [], "changed": [], "rows": 0})
        entry["job_type"] = entry["job_type"] or info["job_type"]
        entry["name"] = entry["name"] or info["name"]
        rel = str(f.parent.relative_to(root))
        done = ledger.get(info["id"], {}).get("fragments", {}).get(rel)
        if done is None:
            entry["new"].append(rel)
            entry["rows"] += len(wandb_records.history(f))
        elif done != _fingerprint(f):
            entry["changed"].append(rel)
        else:
            entry["synced"].append(rel)
    return list(runs.values())


def sync(sweep_dir: str | Path, dry_run: bool = False, wandb_cmd: list[str] | None = None) -> list[dict]:
    """Upload what the ledger does not hold; returns the per-run report (with the command run)."""
    root = Path(sweep_dir).resolve()
    cmd0 = list(wandb_cmd or [sys.executable, "-m", "wandb"])
    runs = plan(root)
    if not runs:
        raise FileNotFoundError(f"no offline W&B runs under {root} (looked for offline-run-* folders)")
    for entry in runs:
        if not entry["new"]:
            continue
        # --include-synced: wandb's own marker (a .synced file) must not hide a fragment the ledger lacks
        entry["command"] = [*cmd0, "sync", "--id", entry["id"], "--include-synced", *(str(root / d) for d in entry["new"])]
        if dry_run:
            continue
        proc = subprocess.run(entry["command"], capture_output=True, text=True)
        entry["returncode"] = proc.returncode
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"wandb sync of run {entry['id']} failed (exit {proc.returncode}): {' | '.join(tail)}; "
                               "check the network and that WANDB_API_KEY or ~/.netrc holds a key; re-run to retry "
                               "(what was uploaded before is recorded and skipped)")
        ledger = read_ledger(root)  # re-read and write per run: an interrupted sync keeps what it did
        frags = ledger.setdefault(entry["id"], {}).setdefault("fragments", {})
        for rel in entry["new"]:
            frags[rel] = _fingerprint(next((root / rel).glob("run-*.wandb")))
        atomic_write_json(ledger_path(root), ledger)
    return runs


def report(runs: list[dict], dry_run: bool = False) -> str:
    """One line per run: what was (or would be) uploaded, what was already there."""
    lines = []
    for e in sorted(runs, key=lambda e: (e["job_type"], e["name"], e["id"])):
        what = f"{e['id']} ({e['job_type'] or '?'} {e['name'] or ''})".replace(" )", ")")
        parts = []
        if e["new"]:
            verb = "would upload" if dry_run else "uploaded"
            parts.append(f"{verb} {len(e['new'])} fragment(s), {e['rows']} history row(s)")
        if e["synced"]:
            parts.append(f"{len(e['synced'])} already synced")
        if e["changed"]:
            parts.append(f"{len(e['changed'])} changed since upload, not re-sent: {', '.join(e['changed'])}")
        lines.append(f"{what}: {'; '.join(parts) if e['new'] or e['changed'] else 'up to date'}")
    total = sum(len(e["new"]) for e in runs)
    lines.append(f"{len(runs)} run(s); {total} fragment(s) {'to upload' if dry_run else 'uploaded'}")
    return "\n".join(lines)
