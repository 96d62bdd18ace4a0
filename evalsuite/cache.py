"""Append-only, crash-safe result cache (generations, logprob probes, judge calls).

One ``tracecause.journal.ResultJournal`` per kind under ``<cache>/<kind>/``: every finished
request is fsynced as it is stored, a torn last line is skipped, concurrent SLURM tasks never
share a file. ``cache_key`` names a request by everything its result depends on.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tracecause.journal import ResultJournal, Validate


def cache_key(**parts: Any) -> str:
    """Stable key of a request: sha256 of its canonical JSON parts."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResultCache(ResultJournal):
    """The journal of one kind of request under the eval cache folder (``<cache>/<kind>/``);
    ``validate`` keeps invalid values out of it (tracecause.journal)."""

    def __init__(self, root: str | Path, kind: str, validate: Validate | None = None):
        super().__init__(Path(root) / kind, validate=validate)
