"""What the study can detect: the minimum detectable effect (MDE) of each confirmatory contrast.

Model of one primary score y (a rate or a [0, 1] score) of arm a, seed s, prompt i, sample k::

    y = mu_a + u_as + v_ai + e_asik      u: seed (training-run) effect, var sigma_seed^2 (0 for base)
                                          v: prompt x arm interaction, var sigma_prompt^2
                                          e: sampling noise, var sigma_sample^2

Contrasts are paired by prompt (the prompt main effect cancels). The mean of an arm over S seeds,
n prompts and K samples has variance ``sigma_seed^2/S + sigma_prompt^2/n + sigma_sample^2/(n S K)``;
a contrast adds the variances of the arms it compares (four for internalisation's
difference-in-differences). MDE = (t_{1-alpha/2} + t_{power}) x SE, with the seed-level degrees of
freedom the analysis uses (S-1 per trained arm) when seeds are treated as random; with one seed the
seed variance cannot be estimated and the MDE rests on the assumed value (flagged).

Variance components come from a pilot sweep folder (``--pilot DIR``: its scores.parquet files) or
from the conservative defaults below, which the plan prints as "assumed".
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Conservative defaults: a rate at 0.5 has the largest sampling variance (0.25); prompt-by-arm
# interaction and seed spread at 0.10 and 0.05 of the scale (the toy world measured seed spreads
# of this order in the project's design notes).
DEFAULT_SD = {"sample": 0.5, "prompt": 0.10, "seed": 0.05}
ALPHA, POWER = 0.05, 0.80

# kind -> (what it compares, trained arm means, untrained (base) arm means) in the contrast
CONTRASTS = {
    "training": ("arm - base (same mode)", 1, 1),
    "amplification": ("QTA - QA (CoT amplification)", 2, 0),
    "content": ("type A - type B, same paradigm (answers fixed)", 2, 0),
    "answer_free": ("QT / T-only - base", 1, 1),
    "internalisation": ("(arm - base) think - (arm - base) no-think", 2, 2),
}


@dataclass(frozen=True)
class Components:
    sample: float
    prompt: float
    seed: float
    source: str  # "assumed (conservative default)" or "pilot <dir> (...)"


def default_components() -> Components:
    return Components(DEFAULT_SD["sample"], DEFAULT_SD["prompt"], DEFAULT_SD["seed"], "assumed (conservative default)")


def arm_mean_variance(c: Components, prompts: int, samples: float, seeds: int, trained: bool) -> float:
    seed_var = c.seed ** 2 / seeds if trained else 0.0
    return seed_var + c.prompt ** 2 / prompts + c.sample ** 2 / (prompts * max(samples, 1e-9) * seeds)


def contrast_se(kind: str, c: Components, prompts: int, samples: float, seeds: int) -> float:
    """Standard error of one confirmatory contrast (arms independent: conservative for internalisation,
    whose think and no-think means share a training run). The base is one untrained model: no seed term."""
    _, n_trained, n_base = CONTRASTS[kind]
    var = n_trained * arm_mean_variance(c, prompts, samples, seeds, trained=True) \
        + n_base * arm_mean_variance(c, prompts, samples, 1, trained=False)
    return var ** 0.5


def critical(seeds: int, alpha: float = ALPHA, power: float = POWER) -> tuple[float, str]:
    """t_{1-alpha/2} + t_{power} at the seed-level degrees of freedom (normal with one seed: flagged)."""
    from scipy import stats

    if seeds >= 2:
        df = seeds - 1
        return float(stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)), f"t, {df} df (seeds)"
    return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)), "normal; seed variance NOT estimable"


def mde(kind: str, c: Components, prompts: int, samples: float, seeds: int) -> float:
    return critical(seeds)[0] * contrast_se(kind, c, prompts, samples, seeds)


def mde_table(benchmarks: dict[str, dict], seeds: int, c: Components) -> list[dict]:
    """Rows (contrast, benchmark, prompts, samples, seeds, MDE). ``benchmarks``: name -> {prompts, samples}
    (prompts None = unknown: the MDE is given per 100 prompts)."""
    rows = []
    for kind, (what, _, _) in CONTRASTS.items():
        for name, b in benchmarks.items():
            n = b.get("prompts") or 100
            rows.append({"contrast": kind, "what": what, "benchmark": name, "prompts": b.get("prompts"),
                         "assumed_prompts": not b.get("prompts"), "samples": b.get("samples") or 1, "seeds": seeds,
                         "mde": mde(kind, c, n, b.get("samples") or 1, seeds)})
    return rows


def pilot_components(pilot: str | Path) -> Components:
    """Variance components from a finished pilot sweep's scores (all benchmarks' primary-scale metrics
    pooled; each component floored at 0). The seed term needs arms with >= 2 seeds, else it stays assumed."""
    import numpy as np
    import pandas as pd

    files = sorted(Path(pilot).glob("eval/*/*/scores.parquet"))
    if not files:
        raise FileNotFoundError(f"--pilot {pilot}: no eval/<arm>/<mode>/scores.parquet (a finished pilot sweep folder)")
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    df = df[df["value"].notna()]
    keys = ["benchmark", "metric", "mode", "arm_id", "prompt_id"]
    per_prompt = df.groupby(keys)["value"].agg(["mean", "var", "count"]).reset_index()
    sample_var = float(np.nanmean(per_prompt["var"])) if per_prompt["count"].max() > 1 else DEFAULT_SD["sample"] ** 2
    k = float(per_prompt["count"].mean())
    # prompt x arm interaction: spread of paired arm differences across prompts, less sampling noise
    wide = per_prompt.pivot_table(index=["benchmark", "metric", "mode", "prompt_id"], columns="arm_id", values="mean")
    arms = list(wide.columns)
    diffs = [(wide[a] - wide[b]).var() for i, a in enumerate(arms) for b in arms[i + 1:]]
    diffs = [d for d in diffs if np.isfinite(d)]
    prompt_var = max(0.0, (float(np.mean(diffs)) - 2 * sample_var / k) / 2) if diffs else DEFAULT_SD["prompt"] ** 2
    arm_means = df.groupby(["benchmark", "metric", "mode", "model", "rtype", "paradigm", "seed"])["value"].mean()
    by_arm = arm_means.groupby(level=["benchmark", "metric", "mode", "model", "rtype", "paradigm"])
    seed_vars = [g.var() for _, g in by_arm if len(g) >= 2]
    n_prompts = max(1, int(per_prompt.groupby(["benchmark", "arm_id", "mode"]).size().mean()))
    if seed_vars:
        seed_var = max(0.0, float(np.mean(seed_vars)) - sample_var / (n_prompts * k))
        seed_src = f"seed from {len(seed_vars)} multi-seed arm(s)"
    else:
        seed_var, seed_src = DEFAULT_SD["seed"] ** 2, "seed ASSUMED (pilot has one seed per arm)"
    return Components(sample_var ** 0.5, prompt_var ** 0.5, seed_var ** 0.5,
                      f"pilot {pilot} ({len(df):,} scores; {seed_src})")
