"""``score``: samples.jsonl + judged.jsonl -> scores.parquet (long) + summary.json per (arm, mode).

Metric definitions: evalsuite/metrics.py. The summary gives, per (benchmark, metric), the mean over
prompts of the per-prompt mean over K samples, a normal-approximation 95 % CI over prompts, the
number of samples and prompts with a value, how many judge replies did not parse, and which
scorer(s) produced the values (e.g. the refusal classifier: rules or which LLM judge).
"""
from __future__ import annotations

import io
import math
from typing import Any

import pandas as pd

from tracecause.config import write_resolved
from tracecause.contracts import SAMPLE_ID_COLUMNS, SCORE_COLUMNS, SCORES_FILE, SUMMARY_FILE
from tracecause.io import atomic_write_bytes, atomic_write_json, is_complete, mark_complete

from evalsuite import outputs
from evalsuite.battery import LLM_JUDGES, load_battery
from evalsuite.config import EvalConfig
from evalsuite.eval_run import EvalTracker
from evalsuite.metrics import sample_metrics


def benchmark_uses(battery) -> dict[str, list[tuple[str, str]]]:
    return {s.name: [(j.name, span) for j in s.judges for span in (j.spans if j.name in LLM_JUDGES else ["answer"])]
            for s in battery.benchmarks}


def score_rows(samples: list[dict], judged: list[dict], uses: dict) -> pd.DataFrame:
    key = lambda r: (r["benchmark"], r["prompt_id"], r["turn"], r["sample_index"])
    verdicts = {key(j): j["judgements"] for j in judged}
    first_turn = {(r["benchmark"], r["prompt_id"], r["sample_index"]): r for r in samples if r["turn"] == 1}
    no_verdicts: dict = {}
    records = []
    for row in samples:
        if row["benchmark"] not in uses:
            raise ValueError(f"samples hold benchmark {row['benchmark']!r}, which the battery does not list: "
                             f"re-run generate with this battery")
        first = first_turn.get((row["benchmark"], row["prompt_id"], row["sample_index"])) if row["turn"] > 1 else None
        first_verdicts = verdicts.get(key(first), no_verdicts) if first else None
        ident = tuple(row[c] for c in SAMPLE_ID_COLUMNS)
        for metric, value, parsed, scorer in sample_metrics(row, verdicts.get(key(row), no_verdicts),
                                                            uses[row["benchmark"]], first, first_verdicts):
            records.append(ident + (metric, float(value), bool(parsed), scorer))
    df = pd.DataFrame.from_records(records, columns=list(SAMPLE_ID_COLUMNS + SCORE_COLUMNS))
    for col in ("seed", "turn", "sample_index", "sampling_seed"):
        df[col] = df[col].astype("int64")
    df["value"] = df["value"].astype("float64")
    df["parsed"] = df["parsed"].astype(bool)
    return df


def summarise(df: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (bench, metric), g in df.groupby(["benchmark", "metric"], sort=True):
        vals = g.dropna(subset=["value"])
        per_prompt = vals.groupby("prompt_id")["value"].mean()
        n_p = len(per_prompt)
        mean = float(per_prompt.mean()) if n_p else math.nan
        half = 1.96 * float(per_prompt.std(ddof=1)) / math.sqrt(n_p) if n_p > 1 else math.nan
        out.setdefault(bench, {"axis": str(g["axis"].iloc[0]), "metrics": {}})["metrics"][metric] = {
            "mean": mean, "ci_lo": mean - half, "ci_hi": mean + half, "n": int(len(vals)),
            "n_prompts": n_p, "n_rows": int(len(g)), "n_unparsed": int((~g["parsed"]).sum()),
            "unparsed_rate": float((~g["parsed"]).mean()),
            "scorer": " + ".join(sorted(g["scorer"].astype(str).unique())),
        }
    return out


def _finite(obj):
    """JSON has no NaN: write null for an undefined mean/CI."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def write_scores(cfg: EvalConfig, mode: str, df: pd.DataFrame, ih: str) -> dict:
    out = cfg.out_dir(mode)
    df = df.sort_values(["benchmark", "prompt_id", "turn", "sample_index", "metric"], kind="stable").reset_index(drop=True)
    atomic_write_bytes(out / SCORES_FILE, parquet_bytes(df))
    summary = {"arm_id": cfg.arm_id, "mode": mode, "benchmarks": summarise(df), "n_samples": int(
        df.drop_duplicates(["benchmark", "prompt_id", "turn", "sample_index"]).shape[0]),
        "n_unparsed": int((~df["parsed"]).sum())}
    atomic_write_json(out / SUMMARY_FILE, _finite(summary))
    outputs.mark_stage(out, "score", out / SCORES_FILE, len(df), ih)
    mark_folder(out, ih)
    return summary


def mark_folder(out, ih: str) -> None:
    """The folder's marker, last; it seals every merged output too (analysis re-hashes scores.parquet)."""
    mark_complete(out, {"stage": "score", "inputs_hash": ih, **outputs.seal_folder(out)})


def run_score(cfg: EvalConfig) -> dict[str, Any]:
    cfg.require()
    battery = load_battery(cfg.battery)
    uses = benchmark_uses(battery)
    extra = {"uses": uses}
    n, k = cfg.shard.count, cfg.shard.index
    stats: dict[str, Any] = {"rows": 0, "modes_done": [], "merged": []}
    tracker = EvalTracker(cfg, "score")
    for mode in cfg.modes:
        out = cfg.out_dir(mode)
        samples = outputs.read_input(out, "generate", k, n, "score")
        judged = outputs.read_input(out, "judge", k, n, "score")
        ih = outputs.input_hash(out, ("generate", "judge"), k, n, extra)
        done = outputs.stage_done(out, "score", ih) if n == 1 else outputs.shard_done(out, "score", k, n, ih)
        if not done:
            # generate shards split by item, so a turn-2 row finds its turn-1 row in the same shard
            df = score_rows(samples, judged, uses)
            write_resolved(cfg, out, name="score_config")
            stats["rows"] += len(df)
            stats["modes_done"].append(mode)
            if n == 1:
                tracker.completed(mode, write_scores(cfg, mode, df, ih), df, samples)
            else:
                outputs.write_shard(out, "score", k, n, df.to_dict("records"), ih)
        merged = ih
        if n > 1:
            merged = outputs.merged_hash_if_ready(out, "score", ("generate", "judge"), n, extra)
            if merged and not outputs.stage_done(out, "score", merged):
                df = pd.DataFrame(outputs.read_shards(out, "score", n), columns=list(SAMPLE_ID_COLUMNS + SCORE_COLUMNS))
                df["value"] = df["value"].astype("float64")
                tracker.completed(mode, write_scores(cfg, mode, df, merged), df)
                stats["merged"].append(mode)
        if merged and not is_complete(out) and outputs.stage_done(out, "score", merged):
            mark_folder(out, merged)  # an upstream output found damaged and redone took the folder's marker
    tracker.finish()
    return stats
