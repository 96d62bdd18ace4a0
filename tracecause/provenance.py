"""What identifies a run's inputs and code, independent of where they live.

* ``code_version``: the git commit (and whether the tree was dirty) of this checkout. Every stage
  puts it into its W&B run's config, and launch records it in ``code.json``; asked where the code
  runs, so a requeued job on newer code says so.
* ``location_free``: a local path reduced to its name, for hashes that must survive a sweep
  folder moved or copied to another filesystem (a hub id is kept as it is).
"""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""  # not a git checkout (an installed wheel) or no git: recorded as unknown


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """``{"commit": <sha or "">, "dirty": bool}`` of the checkout this package runs from."""
    return {"commit": _git("rev-parse", "HEAD"), "dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def location_free(value: str) -> str:
    """A local path's name (``<sweep>/data/dg-1a2b`` -> ``dg-1a2b``); a hub id unchanged."""
    if not value or not (value.startswith(("/", ".", "~")) or Path(value).exists()):
        return value
    path = Path(value).expanduser()
    return f"{path.parent.name}/{path.name}" if path.suffix else path.name  # a file: keep its folder's name
