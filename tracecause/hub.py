"""Hugging Face hub names: what is a hub id (vs a local folder), and whether a pin is cached here.

Shared by launch (the plan's pin checks) and the stages' own config checks, so "is this a hub
model that needs a revision" has one answer everywhere.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+")


def is_hub_id(name: str) -> bool:
    """``org/name`` that is not a local folder or file (a relative path like ``runs/x`` that exists is local)."""
    return bool(name and _HUB_ID.fullmatch(name) and not Path(name).exists())


def in_local_cache(hub_id: str, revision: str, repo_type: str = "model") -> bool:
    """The pinned snapshot is in this machine's Hugging Face cache (verified by having been downloaded)."""
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.expanduser("~/.cache/huggingface"), "hub")
    folder = f"{repo_type}s--{hub_id.replace('/', '--')}"
    return (Path(cache) / folder / "snapshots" / revision).is_dir()
