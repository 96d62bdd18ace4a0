"""Were an eval's scores made from the weights its arm's export holds now?

Evals record the weights hash they generated from (``_COMPLETE.generate`` of eval/<arm>/<mode>/,
written by evalsuite's generate stage); an export records its own (tracecause.json). A retrain
after the eval makes them differ: the analysis refuses such scores and ``tracecause resume``
re-runs that eval. Shared by both, so they agree on what "stale" means.
"""
from __future__ import annotations

import json
from pathlib import Path

from tracecause.contracts import EXPORT_META, Arm, SweepLayout

GENERATE_MARKER = "_COMPLETE.generate"  # evalsuite.outputs.marker_path(out, "generate")


def _field(path: Path, key: str) -> str:
    try:
        return str(json.loads(path.read_text()).get(key) or "")
    except (OSError, ValueError):
        return ""


def eval_weights_hash(eval_dir: Path) -> str:
    """The weights hash an eval generated from ("" if it recorded none)."""
    return _field(Path(eval_dir) / GENERATE_MARKER, "weights_hash")


def export_weights_hash(layout: SweepLayout, arm_id: str) -> str:
    """The weights hash of the arm's current export ("" for the base model or no export)."""
    return _field(layout.export(arm_id) / EXPORT_META, "weights_hash")


def stale_eval(layout: SweepLayout, arm_id: str, mode: str) -> str:
    """Why eval/<arm>/<mode> no longer matches the arm's export ("" when it does or cannot be told)."""
    if not Arm.parse(arm_id).trained:
        return ""
    used, now = eval_weights_hash(layout.eval(arm_id, mode)), export_weights_hash(layout, arm_id)
    if used and now and used != now:
        return (f"arm {arm_id} ({mode}): scores were made from weights {used[:16]} but the export now holds "
                f"{now[:16]} (retrained after the eval); `tracecause resume` re-runs this eval")
    return ""
