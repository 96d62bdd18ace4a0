"""The exact inputs behind each number: sweep spec, code, datasets, train/eval configs, score files."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tracecause.contracts import DATASET_MANIFEST, EXPORT_META, SCORES_FILE, Arm, SweepLayout
from tracecause.io import sha256_file


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _config_hash(folder: Path) -> str:
    """The stage's resolved-config hash next to an output (an eval writes score_config/generate_config)."""
    for name in ("config.sha256", "score_config.sha256", "generate_config.sha256"):
        f = folder / name
        if f.is_file():
            return f.read_text().strip()
    y = folder / "config.yaml"
    if y.is_file():
        first = y.read_text().splitlines()[:1]
        if first and first[0].startswith("# config_hash:"):
            return first[0].split(":", 1)[1].strip()
    return ""


def sweep_provenance(root: Path) -> dict:
    layout = SweepLayout(root)
    code = _read_json(layout.code) if layout.code.is_file() else {}
    datasets = []
    for manifest in sorted((root / "data").glob(f"*/{DATASET_MANIFEST}")):
        info = _read_json(manifest)
        datasets.append({"dataset": manifest.parent.name, "manifest_sha256": sha256_file(manifest)[:16],
                         "dataset_hash": str(info.get("dataset_hash", info.get("sha256", "")))[:16]})
    return {"sweep_yaml_sha256": sha256_file(layout.spec) if layout.spec.is_file() else None,
            "code": {k: code.get(k) for k in ("commit", "dirty") if k in code}, "datasets": datasets}


def inputs_table(root: Path, used: list[str], scored_weights: dict | None = None) -> pd.DataFrame:
    """One row per eval used: score-file hash, eval config hash, train config and dataset hashes, and the
    weights hash the scores were generated from (recorded by the eval, checked against the export)."""
    layout = SweepLayout(root)
    rows = []
    for key in used:
        arm_id, mode = key.rsplit("/", 1)
        arm = Arm.parse(arm_id)
        ev = layout.eval(arm_id, mode)
        meta = _read_json(layout.export(arm_id) / EXPORT_META) if arm.trained else {}
        rows.append({"eval": key, "scores_sha256": sha256_file(ev / SCORES_FILE)[:16],
                     "eval_config": _config_hash(ev)[:16],
                     "train_config": str(meta.get("config_hash") or _config_hash(layout.train(arm_id)))[:16],
                     "dataset_hash": str(meta.get("dataset_hash", ""))[:16],
                     "weights_hash (scored)": str((scored_weights or {}).get(key, ""))[:16]})
    return pd.DataFrame(rows)
