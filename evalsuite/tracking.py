"""Weights & Biases for eval and analysis runs: stable ids, offline-first, sweep-wide sync.

* Run id = hash of what the run is (stage, arm, mode, resolved config), never a SLURM job id,
  so a requeued or re-run job logs into the same run. ``group`` = the sweep, ``job_type`` =
  eval / analysis. Files go to ``<sweep>/wandb/``.
* Offline unless WANDB_MODE says otherwise or a key is available; air-gapped clusters just work.
  Each offline process writes its own ``offline-run-*`` folder; ``tracecause wandb-sync``
  (tracecause.wandb_sync) uploads them in start order under their run id once a network is there.
* The API key is only ever read by wandb itself from the environment or ~/.netrc; nothing here
  accepts, stores or prints it.
* Generated text reaches a W&B table only with ``allow_text=True`` (off by default).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from tracecause.config import canonical_json, config_hash
from tracecause.contracts import EFFECT_INFERENCE_COLUMNS, EFFECT_JUDGE_COLUMNS, SAMPLE_ID_COLUMNS, SweepLayout

DEFAULT_PROJECT = "tracecause"
TABLE_ROW_LIMIT = 10_000
_ID_LIKE = set(SAMPLE_ID_COLUMNS) | {"metric", "finish_reason"}


def run_id(*parts: Any) -> str:
    """A W&B-safe id from the canonical JSON of ``parts`` (same inputs, same id)."""
    return hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()[:16]


def _mode() -> str:
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    has_key = bool(os.environ.get("WANDB_API_KEY")) or _netrc_has_wandb()
    return "online" if has_key else "offline"


def _netrc_has_wandb() -> bool:
    try:
        import netrc

        return any("wandb" in host for host in netrc.netrc().hosts)
    except (FileNotFoundError, OSError, Exception):  # no or unreadable netrc: not configured
        return False


def init_run(sweep_dir: str | Path, *, job_type: str, run_id: str, name: str, config: Mapping,
             group: str | None = None, tags: Iterable[str] = (), project: str | None = None, mode: str | None = None):
    """``project``/``mode`` from the stage's config win over $WANDB_PROJECT / the key-based default."""
    import wandb

    root = Path(sweep_dir)
    SweepLayout(root).wandb.mkdir(parents=True, exist_ok=True)
    return wandb.init(
        project=project or os.environ.get("WANDB_PROJECT", DEFAULT_PROJECT), entity=os.environ.get("WANDB_ENTITY") or None,
        dir=str(root), id=run_id, resume="allow", group=group or root.name, job_type=job_type, name=name,
        config=dict(config), tags=sorted(set(tags)), mode=os.environ.get("WANDB_MODE") or mode or _mode(),
        settings=wandb.Settings(console="off", silent=True, x_disable_stats=True, x_disable_meta=True),
    )


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# ----------------------------------------------------------------------------- eval runs


def summary_records(summary: Any) -> list[dict]:
    """Normalise an eval summary to [{benchmark, metric, mean, ci_lo, ci_hi, n}].

    Accepts evalsuite's summary.json ({"benchmarks": {benchmark: {"axis", "metrics": {metric: stats}}}}),
    {benchmark: {metric: {mean|estimate|value, ci_lo, ci_hi, n}}}, {benchmark: {metric: number}} or a
    list of records with those keys.
    """
    out = []
    if isinstance(summary, Mapping) and isinstance(summary.get("benchmarks"), Mapping):
        summary = summary["benchmarks"]
    if isinstance(summary, Mapping):
        for bench, metrics in summary.items():
            if isinstance(metrics, Mapping) and isinstance(metrics.get("metrics"), Mapping):
                metrics = metrics["metrics"]
            if not isinstance(metrics, Mapping):
                raise ValueError(f"eval summary: benchmark {bench!r} must map metric -> value or stats")
            for metric, stats in metrics.items():
                out.append({"benchmark": bench, "metric": metric,
                            **(dict(stats) if isinstance(stats, Mapping) else {"mean": stats})})
    else:
        out = [dict(r) for r in summary]
    for r in out:
        for k in ("mean", "estimate", "value"):
            if k in r:
                r["mean"] = r[k]
                break
        if "mean" not in r or "benchmark" not in r or "metric" not in r:
            raise ValueError(f"eval summary record {r} needs benchmark, metric and mean (or estimate/value)")
    return out


def eval_metrics(summary: Any, mode: str = "") -> dict:
    """``eval/[<mode>/]<benchmark>/<metric>`` with ``_ci_lo``, ``_ci_hi``, ``_n`` and the judge's ``_unparsed_rate``."""
    logged = {}
    for r in summary_records(summary):
        key = f"eval/{mode + '/' if mode else ''}{r['benchmark']}/{r['metric']}"
        for suffix, field in (("", "mean"), ("_ci_lo", "ci_lo"), ("_ci_hi", "ci_hi"), ("_n", "n"),
                              ("_unparsed_rate", "unparsed_rate")):
            if _finite(r.get(field)):
                logged[key + suffix] = r[field]
    return logged


def safe_table_frame(df, allow_text: bool = False):
    """Sample rows for a W&B table: without generated/judge text unless explicitly allowed."""
    if not allow_text:
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        # anything not a number or a flag could carry generated or judge text
        text = [c for c in df.columns if c not in _ID_LIKE and not (is_numeric_dtype(df[c]) or is_bool_dtype(df[c]))]
        df = df.drop(columns=text)
    return df.head(TABLE_ROW_LIMIT)


def log_eval(summary: Any, arm_id: str, mode: str, cfg: Any, samples_table=None, allow_text: bool = False, *,
             sweep_dir: str | Path | None = None, group: str | None = None) -> str:
    """Log one (arm, mode) eval: ``eval/<benchmark>/<metric>`` with ``_ci_lo``, ``_ci_hi``, ``_n``.

    ``sweep_dir`` defaults to $WANDB_DIR or the working directory. Returns the run id.
    """
    root = Path(sweep_dir or os.environ.get("WANDB_DIR") or Path.cwd())
    rid = run_id("eval", arm_id, mode, config_hash(cfg))
    metrics = eval_metrics(summary)
    run = init_run(root, job_type="eval", run_id=rid, name=f"eval.{arm_id}.{mode}", group=group,
                   config={"arm_id": arm_id, "mode": mode, "config_hash": config_hash(cfg),
                           "eval": json.loads(canonical_json(cfg))},
                   tags=["eval", mode, *arm_id.split(".")[:3]])
    try:
        run.log(metrics)
        if samples_table is not None:
            run.log({"eval/samples": plain_table(safe_table_frame(samples_table, allow_text))})
    finally:
        run.finish()
    return rid


# ----------------------------------------------------------------------------- analysis run


def effect_key(row: Mapping) -> str:
    return f"effect/{row['kind']}/{row['benchmark']}/{row['metric']}/{row['arm_a']}_vs_{row['arm_b']}/{row['mode']}"


def effect_metrics(df) -> dict:
    """Every effect's estimate, CI, p and adjusted p under ``effect_key`` (+ suffixes)."""
    out = {}
    for row in df.to_dict("records"):
        key = effect_key(row)
        if key in out:
            raise ValueError(f"two effects map to the W&B key {key!r}; effect rows must be unique")
        for suffix, field in (("", "estimate"), ("_ci_lo", "ci_lo"), ("_ci_hi", "ci_hi"), ("_p", "p"),
                              ("_p_adj", "p_adj"), ("_effect_size", "effect_size"),
                              ("_unparsed_rate_a", "unparsed_rate_a"), ("_unparsed_rate_b", "unparsed_rate_b")):
            if _finite(row.get(field)):
                out[key + suffix] = float(row[field])
    return out


TABLE_COLUMNS = ("kind", "statistic", "benchmark", "metric", "mode", "size", "paradigm", "arm_a", "arm_b", "estimate",
                 "ci_lo", "ci_hi", "p", "p_adj", "family", "effect_size", "n_prompts", "n_clusters", "n_seeds",
                 "input_hash",
                 # what each p and CI mean, and the judge failures behind them (tracecause.contracts)
                 *EFFECT_INFERENCE_COLUMNS, *EFFECT_JUDGE_COLUMNS)


def plain_table(df, columns=None):
    """wandb.Table from plain Python values (its DataFrame path is ~20x slower on Arrow strings)."""
    import wandb

    columns = [c for c in (columns or df.columns) if c in df.columns]
    rows = []
    for row in df[columns].itertuples(index=False):
        rows.append([None if isinstance(v, float) and not math.isfinite(v) else (v.item() if hasattr(v, "item") else v)
                     for v in row])
    return wandb.Table(columns=columns, data=rows, allow_mixed_types=True)


def analysis_run_id(sweep_name: str, cfg: Mapping, effects) -> str:
    inputs = sorted(set(effects["input_hash"])) if len(effects) else []
    return run_id("analysis", sweep_name, dict(cfg), inputs)


def log_analysis(sweep_dir: str | Path, sweep_name: str, effects, analysis_dir: str | Path, cfg: Mapping,
                 rid: str | None = None) -> str:
    """The analysis run: every effect, the effects table, the missing list and the figures."""
    import wandb

    rid = rid or analysis_run_id(sweep_name, cfg, effects)
    analysis_dir = Path(analysis_dir)
    run = init_run(sweep_dir, job_type="analysis", run_id=rid, name=f"analysis.{sweep_name}", group=sweep_name,
                   config={"analysis": dict(cfg), "sweep": sweep_name}, tags=["analysis"])
    try:
        run.summary.update(effect_metrics(effects))
        if "inference_note" in effects:  # say it in the run, not only in the table
            run.summary["analysis/effects_conditional_on_single_training_run"] = int(
                effects["inference_note"].astype(str).str.startswith("conditional").sum())
            run.summary["analysis/effects_unreliable_judge_failures"] = int((~effects["reliable"].astype(bool)).sum())
        payload = {"analysis/effects": plain_table(effects, TABLE_COLUMNS)}
        missing = analysis_dir / "missing.json"
        if missing.is_file():
            info = json.loads(missing.read_text())
            rows = [[k, v] for k in ("missing_arms", "unfinished_evals", "missing_evals", "missing_cells")
                    for v in info.get(k, [])]
            payload["analysis/missing"] = wandb.Table(columns=["what", "item"], data=rows)
            if info.get("amended_after_data"):  # the analysis plan changed after submit (preregistration.py)
                run.summary["analysis/amended_after_data"] = "; ".join(info["amended_after_data"])
        for png in sorted((analysis_dir / "figures").glob("*.png")):
            payload[f"figures/{png.stem}"] = wandb.Image(str(png))
        run.log(payload)
        effects_file = analysis_dir / "effects.parquet"
        if effects_file.is_file():
            run.save(str(effects_file), base_path=str(analysis_dir), policy="now")
    finally:
        run.finish()
    return rid
