"""The plan's minimum detectable effects, validated by simulation against known truth: data drawn
from the variance-components model with the true effect set to the printed MDE are detected ~80 %
of the time at alpha 0.05; at half the MDE, far less. Pilot variance components are recovered."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from launch import power

SIMS = 3000


def _arm_means(rng, sims, c, n, k, seeds, trained, effect=0.0):
    """Simulated arm means (sims x seeds): the model's three components, drawn independently."""
    seed = rng.normal(0, c.seed, (sims, seeds)) if trained else np.zeros((sims, seeds))
    prompt = rng.normal(0, c.prompt, (sims, 1, n))  # the arm's prompt interaction: shared by its seeds
    noise = rng.normal(0, c.sample / np.sqrt(k), (sims, seeds, n))  # mean of K samples per prompt
    return effect + seed + (prompt + noise).mean(axis=2)


@pytest.mark.parametrize("kind", ["training", "content"])
def test_one_seed_z_test_at_the_mde_has_80_percent_power(kind):
    rng = np.random.default_rng(0)
    c = power.Components(0.5, 0.1, 0.05, "test")
    n, k, seeds = 60, 4, 1
    mde = power.mde(kind, c, n, k, seeds)
    se = power.contrast_se(kind, c, n, k, seeds)
    a = _arm_means(rng, SIMS, c, n, k, seeds, trained=True, effect=mde)[:, 0]
    b = _arm_means(rng, SIMS, c, n, k, seeds, trained=kind == "content")[:, 0]
    rejected = np.abs((a - b) / se) > stats.norm.ppf(0.975)
    assert 0.77 <= rejected.mean() <= 0.83
    a_half = _arm_means(rng, SIMS, c, n, k, seeds, trained=True, effect=mde / 2)[:, 0]
    assert (np.abs((a_half - b) / se) > stats.norm.ppf(0.975)).mean() < 0.4


def test_seed_level_t_test_at_the_mde_has_about_80_percent_power():
    """With S seeds the analysis tests at the seed level (S-1 df): the MDE's t quantiles match.
    (Seed noise dominates here: a seed-level test cannot see the one base model's sampling noise,
    which the MDE's SE rightly includes; with it large the t-test would over-reject under the null.)"""
    rng = np.random.default_rng(1)
    c = power.Components(0.05, 0.0, 0.08, "test")
    n, k, seeds = 80, 2, 5
    mde = power.mde("training", c, n, k, seeds)
    a = _arm_means(rng, SIMS, c, n, k, seeds, trained=True, effect=mde)
    base = _arm_means(rng, SIMS, c, n, k, 1, trained=False)[:, :1]
    d = a - base  # per-seed differences to the one base model
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / np.sqrt(seeds))
    rejected = np.abs(t) > stats.t.ppf(0.975, seeds - 1)
    assert 0.70 <= rejected.mean() <= 0.88  # the shifted-t approximation of the noncentral t


def test_more_prompts_samples_and_seeds_lower_the_mde():
    c = power.default_components()
    assert power.mde("training", c, 400, 2, 1) < power.mde("training", c, 100, 2, 1)
    assert power.mde("training", c, 100, 8, 1) < power.mde("training", c, 100, 2, 1)
    assert power.mde("amplification", c, 100, 2, 10) < power.mde("amplification", c, 100, 2, 3)
    assert power.mde("internalisation", c, 100, 2, 1) > power.mde("training", c, 100, 2, 1)


def test_pilot_variance_components_are_recovered_from_a_sweep_folder(tmp_path):
    rng = np.random.default_rng(2)
    truth = power.Components(0.3, 0.12, 0.06, "truth")
    n, k, seeds = 200, 8, 4
    rows = []
    for arm in ("qta", "qt"):
        prompt = rng.normal(0, truth.prompt, n)
        for s in range(seeds):
            u = rng.normal(0, truth.seed)
            for i in range(n):
                for j in range(k):
                    rows.append({"arm_id": f"m.evil.{arm}.s{s}", "model": "m", "rtype": "evil", "paradigm": arm,
                                 "seed": s, "mode": "think", "benchmark": "b", "metric": "x", "prompt_id": f"p{i}",
                                 "value": 0.5 + u + prompt[i] + rng.normal(0, truth.sample)})
    df = pd.DataFrame(rows)
    for arm_id, part in df.groupby("arm_id"):
        out = tmp_path / "eval" / arm_id / "think"
        out.mkdir(parents=True)
        part.to_parquet(out / "scores.parquet")
    got = power.pilot_components(tmp_path)
    assert got.sample == pytest.approx(truth.sample, rel=0.05)
    assert got.prompt == pytest.approx(truth.prompt, rel=0.35)
    assert got.seed == pytest.approx(truth.seed, rel=0.6) and "multi-seed" in got.source
    with pytest.raises(FileNotFoundError, match="no eval/<arm>/<mode>/scores.parquet"):
        power.pilot_components(tmp_path / "nothing")
