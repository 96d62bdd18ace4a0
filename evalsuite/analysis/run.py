"""analyze(sweep): finished evals -> effects.parquet, missing.json, figures, report, W&B run."""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tracecause.config import to_dict, write_resolved
from tracecause.contracts import (EFFECT_COLUMNS, EFFECT_INFERENCE_COLUMNS, EFFECT_JUDGE_COLUMNS, EFFECTS_FILE,
                                  SweepLayout)
from tracecause.io import atomic_dir, atomic_write_json
from tracecause.seal import seal_files

from .config import AnalysisConfig
from .contrasts import internalisation_effects, pairwise_effects, replicate_splits, scale_effects
from .engine import NO_SEED_TERM, EffectResult, run_linear
from .equivalence import check_margins, with_equivalence
from .load import build_benchmarks, discover, find_missing_cells, load_prompt_means, scorers_used
from .distinct_seeds import require_distinct_seeds
from .family import type_benchmarks
from .multiplicity import assign_families
from .preregistration import check_plan
from .primary import check_primaries_present, declared_primaries
from .reliability import inference_notes, mark_judge_reliability
from .resample import percentile_ci
from .sizes import log10_params
from .spec import read_sweep_spec, spec_dict
from .specificity import specificity

log = logging.getLogger(__name__)
MISSING_FILE = "missing.json"
EXTRA_COLUMNS = ("statistic", "axis", "paradigm_b", "rtype_a", "rtype_b", "p_holm", "p_bh", "inputs",
                 "scale_of", "matched", "n_resamples", "seed_variance", *EFFECT_INFERENCE_COLUMNS,
                 *EFFECT_JUDGE_COLUMNS)


@dataclass
class AnalysisResult:
    effects: pd.DataFrame
    missing: dict
    out_dir: Path
    run_id: str | None = None


def _progress(enabled: bool):
    if not enabled:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(desc="resampling", unit="draw", unit_scale=True, mininterval=0.5)
    return bar, bar.update


def _row(r: EffectResult) -> dict:
    return {**r.meta, "estimate": r.estimate, "ci_lo": r.ci_lo, "ci_hi": r.ci_hi, "p": r.p,
            "effect_size": r.effect_size, "n_prompts": r.n_prompts, "n_clusters": r.n_clusters,
            "n_seeds": r.n_seeds, "inputs": r.inputs, "input_hashes": r.input_hashes, "method": r.method,
            "t_df": r.df, "conditional_on": r.conditional_on, "seed_variance": r.seed_variance, **r.unparsed}


def _ratio_p(ratio: np.ndarray) -> float:
    """Two-sided bootstrap p of H0 ratio = 1 (no-think keeps the whole think effect), from the replicates.

    The percentile interval inverted: p < alpha when 1 lies outside the (1 − alpha) percentile CI
    (up to the +1 of a Monte Carlo p). Replicates where the think effect is 0 (ratio undefined) drop out.
    """
    r = ratio[np.isfinite(ratio)]
    if len(r) == 0:
        return float("nan")
    tail = min((r <= 1).sum(), (r >= 1).sum())
    return float(min(1.0, 2 * (tail + 1) / (len(r) + 1)))


def _ratios(results: list[EffectResult], reps: np.ndarray, alpha: float) -> list[dict]:
    """Internalisation ratio = training effect no-think / training effect think, per arm.

    Its CI and p come from the benchmark's replicate matrix (run_linear): prompt clusters resampled,
    and each trained arm's seeds resampled (the same draw in both modes: one training run, two
    modes), so the interval is about the training procedure where an arm has several seeds.
    """
    index = {}
    for i, r in enumerate(results):
        m = r.meta
        if m["kind"] == "training":
            index[(m["arm_a"], m["arm_b"], m["metric"], m["mode"])] = i
    rows = []
    for r in results:
        m = r.meta
        if m["kind"] != "internalisation" or m["statistic"] != "no_think_effect":
            continue
        it = index.get((m["arm_a"], m["arm_b"], m["metric"], "think"))
        inn = index.get((m["arm_a"], m["arm_b"], m["metric"], "no_think"))
        if it is None or inn is None:
            continue
        with np.errstate(all="ignore"):
            ratio = reps[:, inn] / reps[:, it]
            est = results[inn].estimate / results[it].estimate if results[it].estimate != 0 else np.nan
        ratio[~np.isfinite(ratio)] = np.nan
        lo, hi = percentile_ci(ratio[:, None], alpha)
        row = _row(results[inn])
        seeds = "each arm's seeds resampled" if row["n_seeds"] > 1 else "one seed: conditional on the runs"
        # a single-seed arm's bootstrap cannot resample its seed, pooled seed variance or not
        row["conditional_on"] = [m["arm_a"]] if row["n_seeds"] == 1 else []
        if "seed_variance" in row:  # the ratio's seed term is the bootstrap's, not the t's pooled estimate
            row["seed_variance"] = "bootstrap over each arm's own seeds" if row["n_seeds"] > 1 else \
                NO_SEED_TERM
        row.update(kind="internalisation", statistic="ratio", mode="no_think_over_think", estimate=float(est),
                   ci_lo=float(lo[0]), ci_hi=float(hi[0]), p=_ratio_p(ratio), effect_size=np.nan, t_df=np.nan,
                   method=f"two-way bootstrap (prompt clusters x {seeds}): percentile CI; p of H0 ratio = 1 "
                          f"(the effect fully survives without thinking) from the same replicates")
        rows.append(row)
    return rows


def benchmark_effects(bench, log_params: dict, cfg: AnalysisConfig, notes: list[str], progress=None,
                      seed_pool: str = "size") -> list[dict]:
    """Every linear effect of one benchmark (and the ratios derived from them) as effect rows."""
    effects = pairwise_effects(bench, notes) + internalisation_effects(bench)
    effects += scale_effects(bench, effects, log_params)
    with_halves, splits = replicate_splits(bench)
    results, reps, skipped = run_linear(with_halves, effects + splits, cfg.resamples, cfg.seed, cfg.alpha, progress,
                                        seed_pool)
    notes += skipped
    return [_row(r) for r in results] + _ratios(results, reps, cfg.alpha)


def compute_effects(root: str | Path, cfg: AnalysisConfig) -> tuple[pd.DataFrame, dict, object]:
    spec = read_sweep_spec(root)
    prereg = check_plan(Path(root), spec.analysis, cfg.alpha, cfg.amend)
    spec.preregistered, spec.amended = prereg["frozen"] is not None, prereg["amended"]
    inv = discover(root, spec)
    require_distinct_seeds(inv.evals)
    means = load_prompt_means(inv)
    find_missing_cells(inv, means, spec)
    benches = build_benchmarks(means)
    primaries = declared_primaries(spec, benches)
    check_primaries_present(benches, primaries)
    check_margins(spec.analysis.equivalence_margins, set(benches) | set(spec.expected.get("benchmarks", {})),
                  str(Path(root) / "sweep.yaml"))
    primary = {name: p["metric"] for name, p in primaries.items()}
    models = sorted({c[0] for b in benches.values() for c in b.seeds})
    logp = {m: log10_params(m, spec.analysis.model_params) for m in models}
    notes = list(inv.notes)
    unknown = [m for m, x in logp.items() if x is None]
    if unknown:
        notes.append(f"parameter count unknown for {unknown}: left out of the scale trend "
                     f"(set sweep.yaml analysis.model_params)")
    bar, progress = _progress(cfg.progress)
    rows: list[dict] = []
    try:
        for bench in benches.values():
            rows += benchmark_effects(bench, {m: x for m, x in logp.items() if x is not None}, cfg, notes, progress,
                                      spec.analysis.seed_pool)
        rows += specificity(benches, primaries, spec.analysis.type_axis, cfg.resamples, cfg.seed, cfg.alpha,
                            notes, progress)
    finally:
        if bar is not None:
            bar.close()
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=[*EFFECT_COLUMNS, *EXTRA_COLUMNS])
    else:
        for c in ("unparsed_a", "rows_a", "unparsed_b", "rows_b"):
            df[c] = df[c].fillna(0).astype(int) if c in df else 0
        df = mark_judge_reliability(df, spec.analysis.unparsed_threshold)
        df["conditional_on"] = [c if isinstance(c, list) else [] for c in df.get("conditional_on", [[]] * len(df))]
        df["inference_note"] = inference_notes(df)
        df["higher_is"] = [primaries[b]["higher_is"] if b in primaries and m == primary[b] else ""
                           for b, m in zip(df["benchmark"], df["metric"])]
        df = assign_families(df, spec.analysis.family_filters, primary, family_type_benchmarks(spec, benches, prereg),
                             prereg["planned"])
        df = with_equivalence(df, spec.analysis.equivalence_margins, primary, cfg.alpha)
        df["input_hash"] = [hashlib.sha256("".join(h).encode()).hexdigest()[:16] for h in df["input_hashes"]]
        df["inputs"] = [";".join(x) for x in df["inputs"]]
        df["n_resamples"] = cfg.resamples
        df = df.drop(columns=["conditional_on"])
        for c in ("scale_of", "matched"):
            if c not in df:
                df[c] = None
        df = df.drop(columns=["input_hashes"])
        df = df[[*EFFECT_COLUMNS, *[c for c in df.columns if c not in EFFECT_COLUMNS]]]
        df["n_seeds"] = df["n_seeds"].astype(int)
        for c in ("matched", "scale_of"):
            df[c] = df[c].astype(object).where(df[c].notna(), None).astype(str)
    missing = inv.as_json()
    missing["notes"] = notes
    missing["primary_metrics"] = primary
    missing["primary_directions"] = {b: p["higher_is"] for b, p in primaries.items()}
    missing["unparsed_threshold"] = spec.analysis.unparsed_threshold
    missing["amended_after_data"] = list(spec.amended)
    scorers = scorers_used(inv)
    missing["benchmarks"] = {n: {"axis": b.axis, "prompts": len(b.prompt_ids), "clusters": b.n_clusters,
                                 "metrics": b.metrics, "scorers": scorers.get(n, {})} for n, b in benches.items()}
    return df, missing, spec


def family_type_benchmarks(spec, benches: dict, prereg: dict) -> dict[str, str]:
    """rtype -> its own benchmark, as frozen at submit; else from the battery order recorded in
    expected.json; else (a folder launch never wrote) from the benchmarks with data, by name."""
    frozen = prereg["frozen"]
    if frozen is not None and not prereg["amended"]:
        return dict(frozen.get("type_benchmark") or {})
    axes = spec.expected.get("benchmarks") or {n: {"axis": b.axis} for n, b in sorted(benches.items())}
    return type_benchmarks(spec.analysis, axes)


def analyze(root: str | Path, cfg: AnalysisConfig | None = None) -> AnalysisResult:
    """Compute every effect and write <sweep>/analysis/ in one atomic step, then log to W&B."""
    cfg = cfg or AnalysisConfig()
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"sweep folder {root} does not exist")
    t0 = time.time()
    df, missing, spec = compute_effects(root, cfg)
    layout = SweepLayout(root)
    from evalsuite import tracking
    from evalsuite.report.build import write_report

    run_id = tracking.analysis_run_id(spec.name, to_dict(cfg), df) if cfg.wandb else None
    info = {"effects": len(df)}
    with atomic_dir(layout.analysis, info=info, overwrite=True) as tmp:
        df.to_parquet(tmp / EFFECTS_FILE, index=False)
        atomic_write_json(tmp / MISSING_FILE, missing)
        write_resolved(cfg, tmp, name="analysis_config")
        atomic_write_json(tmp / "sweep_analysis_spec.json", spec_dict(spec))
        write_report(root, tmp, df, missing, spec, cfg, run_id=run_id, figures=cfg.figures)
        # the completion marker seals what readers reuse (the demo's recovery table, resume's done check)
        info.update(seal_files(tmp, {EFFECTS_FILE: len(df), MISSING_FILE: None}))
    log.info("analysis of %s: %d effects in %.1fs", root, len(df), time.time() - t0)
    if cfg.wandb:
        try:
            tracking.log_analysis(root, spec.name, df, layout.analysis, to_dict(cfg), run_id)
        except Exception as err:  # the analysis itself is safely on disk; say what failed and how to retry
            raise RuntimeError(f"analysis written to {layout.analysis}, but logging the W&B run failed: {err}; "
                               "re-run with WANDB_MODE=offline (then `tracecause wandb-sync`) or --no-wandb") from err
    return AnalysisResult(df, missing, layout.analysis, run_id)
