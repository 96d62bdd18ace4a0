"""The statistics are validated, not assumed: simulated coverage and null rejection rates (with and
without training-seed variation), and agreement with scipy's bootstrap / permutation test on shared cases."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evalsuite.analysis.config import AnalysisConfig
from evalsuite.analysis.engine import SEEDS_RANDOM, LinearEffect, run_linear, stable_seed
from evalsuite.analysis.load import Benchmark
from evalsuite.analysis.run import benchmark_effects
from evalsuite.analysis.simulate_seeds import null_replications
from evalsuite.analysis.multiplicity import assign_families, bh, holm
from evalsuite.analysis.resample import paired_cluster_test

REPS = 4000  # binomial SE of a 95% coverage estimate: 0.34 percentage points


def _clustered_diffs(rng, reps, n_clusters, per_cluster, effect, cluster_sd=0.3, prompt_sd=0.3):
    """(P, reps) paired prompt differences with a shared cluster component, and cluster labels."""
    u = rng.normal(0, cluster_sd, (n_clusters, reps))
    e = rng.normal(0, prompt_sd, (n_clusters * per_cluster, reps))
    clusters = np.repeat(np.arange(n_clusters), per_cluster)
    return effect + u[clusters] + e, clusters


def _upper(rate, n, z=1.645):
    return rate + z * math.sqrt(rate * (1 - rate) / n)


def test_cluster_bootstrap_covers_truth_and_signflip_controls_false_positives():
    rng = np.random.default_rng(20261127)
    truth = 0.2
    d, clusters = _clustered_diffs(rng, REPS, n_clusters=60, per_cluster=3, effect=truth)
    res = paired_cluster_test(d, clusters, n_resamples=1000, seed=1)
    coverage = np.mean((res.ci_lo <= truth) & (truth <= res.ci_hi))
    assert 0.93 <= coverage <= 0.97, f"95% CI coverage {coverage:.4f} over {REPS} simulated studies"
    assert np.mean(res.p < 0.05) > 0.5, "a real effect of this size should usually be detected"

    d0, clusters = _clustered_diffs(rng, REPS, n_clusters=60, per_cluster=3, effect=0.0)
    null = paired_cluster_test(d0, clusters, n_resamples=1000, seed=2)
    fpr = np.mean(null.p < 0.05)
    # "≤ 5 %" as a claim: the observed rate is not significantly above 5 % (one-sided, 4000 studies)
    assert fpr <= _upper(0.05, REPS), f"false-positive rate {fpr:.4f} under the null"
    assert np.mean((null.ci_lo <= 0) & (0 <= null.ci_hi)) >= 0.93

    # The check has teeth: ignoring the paraphrase clusters gives too-narrow intervals here.
    naive = paired_cluster_test(d0, None, n_resamples=1000, seed=3)
    assert np.mean((naive.ci_lo <= 0) & (0 <= naive.ci_hi)) < 0.90
    assert np.mean(naive.p < 0.05) > 0.08


def test_binary_outcomes_with_k_samples_cover_truth():
    """Rates from K Bernoulli samples per prompt, prompt means first, as the analysis does."""
    rng = np.random.default_rng(7)
    reps, C, m, K = REPS, 50, 2, 4
    base = np.clip(0.3 + rng.uniform(-0.15, 0.15, (C, 1)), 0, 1)[np.repeat(np.arange(C), m)]
    pa, pb = base + 0.1, base
    a = rng.binomial(K, np.broadcast_to(pa, (C * m, reps))) / K
    b = rng.binomial(K, np.broadcast_to(pb, (C * m, reps))) / K
    res = paired_cluster_test(a - b, np.repeat(np.arange(C), m), n_resamples=1000, seed=4)
    truth = 0.1
    coverage = np.mean((res.ci_lo <= truth) & (truth <= res.ci_hi))
    assert 0.93 <= coverage <= 0.97, coverage


def test_bootstrap_agrees_with_scipy_paired_percentile():
    rng = np.random.default_rng(3)
    x = rng.normal(1.0, 1.0, 30)
    y = x - 0.4 + rng.normal(0, 0.8, 30)
    ref = stats.bootstrap((x, y), lambda a, b, axis: np.mean(a - b, axis=axis), paired=True, vectorized=True,
                          method="percentile", n_resamples=20000, rng=np.random.default_rng(11))
    mine = paired_cluster_test(x - y, None, n_resamples=20000, seed=5)
    se = ref.standard_error
    assert abs(mine.ci_lo - ref.confidence_interval.low) < 0.1 * se
    assert abs(mine.ci_hi - ref.confidence_interval.high) < 0.1 * se
    assert np.std(mine.replicates, ddof=1) == pytest.approx(se, rel=0.05)


def test_signflip_agrees_with_scipy_permutation_test():
    rng = np.random.default_rng(4)
    stat = lambda a, b, axis: np.mean(a - b, axis=axis)  # noqa: E731
    for n, shift in ((12, 0.5), (12, 0.0), (10, 1.0)):  # exact: every one of the 2**n sign patterns
        x = rng.normal(0, 1, n)
        y = x - shift + rng.normal(0, 1, n)
        ref = stats.permutation_test((x, y), stat, permutation_type="samples", vectorized=True,
                                     n_resamples=np.inf, alternative="two-sided")
        mine = paired_cluster_test(x - y, None, n_resamples=2 ** n, seed=6)
        assert mine.p == pytest.approx(ref.pvalue, abs=1e-12)
    x = rng.normal(0, 1, 40)
    y = x - 0.3 + rng.normal(0, 1, 40)
    ref = stats.permutation_test((x, y), stat, permutation_type="samples", vectorized=True, n_resamples=20000,
                                 alternative="two-sided", rng=np.random.default_rng(8))
    mine = paired_cluster_test(x - y, None, n_resamples=20000, seed=7)
    assert mine.p == pytest.approx(ref.pvalue, abs=0.01)


def test_holm_and_bh():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    # Holm by definition: sorted .005·4=.02, .01·3=.03, .03·2=.06, .04·1 -> max(.06,.04)
    np.testing.assert_allclose(holm(p)[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(holm(p)[4])
    q = np.random.default_rng(0).uniform(0, 0.2, 50)
    np.testing.assert_allclose(bh(q), stats.false_discovery_control(q, method="bh"))


def test_families_holm_for_confirmatory_bh_for_rest():
    import pandas as pd

    df = pd.DataFrame({"kind": ["amplification", "amplification", "training", "training"],
                       "statistic": "difference", "benchmark": "b", "axis": "a", "metric": ["m", "m2", "m", "m"],
                       "mode": "think", "size": "s", "paradigm": "qta", "paradigm_b": "qa", "rtype_a": "evil",
                       "rtype_b": "none", "p": [0.01, 0.02, 0.02, 0.04]})
    out = assign_families(df, [{"kind": "amplification", "metric": "primary"}], {"b": "m"})
    assert list(out["family"]) == ["confirmatory", "exploratory", "exploratory", "exploratory"]
    assert out["p_adj"].iloc[0] == pytest.approx(0.01)  # Holm in a family of one
    np.testing.assert_allclose(out["p_adj"].iloc[1:], bh([0.02, 0.02, 0.04]))


def _bench(series: dict, clusters: np.ndarray, is_rate=False) -> Benchmark:
    seeds = {}
    for (cond, _, _), rows in series.items():
        seeds.setdefault(cond, set()).update(rows)
    return Benchmark("bench", "axis", np.array([f"p{i}" for i in range(len(clusters))]), clusters,
                     int(clusters.max()) + 1, series, {c: sorted(s) for c, s in seeds.items()},
                     {"m": is_rate}, {})


# ----------------------------------------------------------------------------- seeds random
# p-values and CIs answer one question — the training procedure, seeds random — validated by
# simulation on the effect engine `analyze` runs (run.benchmark_effects on load.build_benchmarks).



def test_engine_single_seed_equals_paired_test_and_cohens_h():
    rng = np.random.default_rng(9)
    clusters = np.repeat(np.arange(15), 2)
    a = rng.binomial(1, 0.5, 30).astype(float)
    b = rng.binomial(1, 0.25, 30).astype(float)
    A, B = ("m", "evil", "qta"), ("m", "none", "base")
    bench = _bench({(A, "think", "m"): {0: a}, (B, "think", "m"): {0: b}}, clusters, is_rate=True)
    eff = LinearEffect([((A, "think", "m"), 1.0), ((B, "think", "m"), -1.0)],
                       {"kind": "training", "arm_a": "A", "arm_b": "B", "mode": "think", "metric": "m"}, rate_pair=True)
    (res,), reps, _ = run_linear(bench, [eff], 2000, seed=3, alpha=0.05)
    ref = paired_cluster_test(a - b, clusters, n_resamples=2000, seed=stable_seed(3, "bench"))
    assert res.estimate == pytest.approx(ref.estimate)
    assert (res.ci_lo, res.ci_hi) == pytest.approx((ref.ci_lo, ref.ci_hi))
    assert res.p == pytest.approx(ref.p)
    h = 2 * np.arcsin(np.sqrt(a.mean())) - 2 * np.arcsin(np.sqrt(b.mean()))
    assert res.effect_size == pytest.approx(h)
    assert (res.n_prompts, res.n_clusters, res.n_seeds) == (30, 15, 1)


CFG = AnalysisConfig(resamples=200, progress=False, wandb=False, figures=False)


@pytest.fixture(scope="module")
def null_effects() -> pd.DataFrame:
    # 700 simulated studies: 3 seeds per trained arm, no true effect, each trained seed shifts its
    # arm's rate by N(0, 0.03) around a base rate of 12 % (seed noise as large as a typical effect)
    bench = null_replications(700, seeds=3, seed_sd=0.03, base_rate=0.12, seed=20261130)
    return pd.DataFrame(benchmark_effects(bench, {}, CFG, []))


@pytest.mark.parametrize("kinds", [("training",), ("amplification", "content")], ids=["vs-base", "between-trained"])
def test_seed_level_inference_has_nominal_error_rates(null_effects, kinds):
    rows = null_effects[null_effects["kind"].isin(kinds)]
    assert len(rows) >= 1400 and (rows["method"] == SEEDS_RANDOM).all()
    fpr = float((rows["p"] < 0.05).mean())
    coverage = float(((rows["ci_lo"] <= 0) & (0 <= rows["ci_hi"])).mean())
    assert 0.03 <= fpr <= 0.07, f"false-positive rate {fpr:.3f} over {len(rows)} null contrasts"
    assert 0.93 <= coverage <= 0.97, f"95% CI coverage {coverage:.3f} over {len(rows)} null contrasts"
    # one model behind both numbers: p < 0.05 exactly when the 95% CI excludes 0
    excludes = (rows["ci_lo"] > 0) | (rows["ci_hi"] < 0)
    assert ((rows["p"] < 0.05) == excludes).all()
    # seed variance pooled over the size's 3 trained arms: 6 df, not each arm's own 2 (before: median 3.8
    # between trained arms); still t quantiles, not normal ones
    assert (rows["seed_variance"] == rows["size"].map("pooled per p(1-p) (size {}, 6 df)".format)).all()
    assert 5.5 <= rows["t_df"].median() < 30


def test_each_arms_seeds_are_their_own_training_runs():
    """Two arms whose seed s happen to score identically are still two sets of independent runs: the
    difference is uncertain. Pairing seed s of one arm with seed s of another would call it exactly 0."""
    rng = np.random.default_rng(5)
    clusters = np.repeat(np.arange(20), 2)
    prompts = rng.normal(0.3, 0.1, 40)
    per_seed = {s: prompts + shift for s, shift in enumerate((-0.05, 0.0, 0.06))}
    A, B = ("m", "evil", "qta"), ("m", "misleading", "qta")
    bench = _bench({(A, "think", "m"): dict(per_seed), (B, "think", "m"): dict(per_seed)}, clusters)
    eff = LinearEffect([((A, "think", "m"), 1.0), ((B, "think", "m"), -1.0)],
                       {"kind": "content", "arm_a": "A", "arm_b": "B", "mode": "think", "metric": "m"})
    (res,), _, _ = run_linear(bench, [eff], 200, 0, 0.05)
    assert res.estimate == 0.0 and res.method == SEEDS_RANDOM
    assert np.isfinite(res.ci_lo) and res.ci_hi - res.ci_lo > 0.05 and res.p == pytest.approx(1.0)


def test_seed_spread_widens_the_interval():
    rng = np.random.default_rng(10)
    clusters = np.repeat(np.arange(40), 2)
    base = rng.normal(0, 1, 80)
    A, B = ("m", "evil", "qta"), ("m", "none", "base")
    series = lambda spread: {(A, "think", "m"): {s: base + 0.3 + off + rng.normal(0, 0.2, 80)  # noqa: E731
                                                 for s, off in enumerate(spread)},
                             (B, "think", "m"): {0: base + rng.normal(0, 0.2, 80)}}
    eff = LinearEffect([((A, "think", "m"), 1.0), ((B, "think", "m"), -1.0)],
                       {"kind": "training", "arm_a": "A", "arm_b": "B", "mode": "think", "metric": "m"})
    (same,), _, _ = run_linear(_bench(series([0, 0, 0, 0]), clusters), [eff], 500, 1, 0.05)
    (spread,), _, _ = run_linear(_bench(series([-0.4, -0.1, 0.1, 0.4]), clusters), [eff], 500, 1, 0.05)
    assert spread.n_seeds == 4 and spread.method == same.method == SEEDS_RANDOM
    assert (spread.ci_hi - spread.ci_lo) > 2 * (same.ci_hi - same.ci_lo)
    assert spread.ci_lo < spread.estimate < spread.ci_hi and spread.df < same.df


def test_replicate_splits_are_nulls_with_nominal_error_rates(monkeypatch):
    # 500 simulated null studies with 5 seeds per trained arm: each arm's seeds {0,1} - {2,3,4} is a
    # contrast whose truth is 0 by construction, tested like any two arms
    bench = null_replications(500, seeds=5, seed_sd=0.03, base_rate=0.12, seed=20261201)
    rows = pd.DataFrame(benchmark_effects(bench, {}, CFG, []))
    split = rows[rows["kind"] == "replicate_split"]
    assert len(split) == 500 * 3 and (split["method"] == SEEDS_RANDOM).all()
    assert set(split["arm_a"].str.rsplit(".", n=1).str[1]) == {"s0+s1"}
    assert set(split["arm_b"].str.rsplit(".", n=1).str[1]) == {"s2+s3+s4"}
    fpr = float((split["p"] < 0.05).mean())
    coverage = float(((split["ci_lo"] <= 0) & (0 <= split["ci_hi"])).mean())
    assert 0.03 <= fpr <= 0.07, f"false-positive rate {fpr:.3f} over {len(split)} replicate splits"
    assert 0.93 <= coverage <= 0.97, f"95% CI coverage {coverage:.3f} over {len(split)} replicate splits"
    # the halves leave every other effect as it was: the same rows, value for value, without them
    monkeypatch.setattr("evalsuite.analysis.run.replicate_splits", lambda b: (b, []))
    without = pd.DataFrame(benchmark_effects(bench, {}, CFG, []))
    other = rows[rows["kind"] != "replicate_split"].reset_index(drop=True)
    pd.testing.assert_frame_equal(other[without.columns], without)
    # four seeds (halves of two) give no split: measured too hot (see SPLIT_MIN_SEEDS)
    four = null_replications(3, seeds=4, seed=1)
    assert not any(r["kind"] == "replicate_split" for r in benchmark_effects(four, {}, CFG, []))


def test_seed_level_df_never_falls_below_its_parts_when_the_prompt_part_is_truncated():
    """Satterthwaite's df of a sum of positive parts lies between the smallest part's df and their
    total. When the residual mean squares exceed the prompt variance (sampling noise: most often with
    few prompts and a rare outcome) the prompt part is truncated at 0; V must then be that same sum,
    or df drops below every part's (measured in the world demo: 0.88 from parts of 4 and 11 df)."""
    from evalsuite.analysis.seeds import arm_contributions, prompt_variance, seed_level_inference, seed_spread

    rng = np.random.default_rng(3)
    clusters = np.arange(12)
    A, B = ("m", "evil", "qta"), ("m", "evil_low", "qta")
    truncated = 0
    for _ in range(300):
        rate_a = np.clip(0.15 + rng.normal(0, 0.05, (5, 1)), 0, 1)
        rate_b = np.clip(0.04 + rng.normal(0, 0.01, (5, 1)), 0, 1)
        series = {(A, "think", "m"): dict(enumerate(rng.binomial(4, np.repeat(rate_a, 12, 1)) / 4)),
                  (B, "think", "m"): dict(enumerate(rng.binomial(4, np.repeat(rate_b, 12, 1)) / 4))}
        # declared a score, not a rate: a rate's seed component is taken at the two arms' mean rate
        # (seeds.py), whose q(1 - q) exceeds theirs at 15 % vs 4 %, and V then legitimately holds a
        # difference of mean squares (2 of these 300 below 4 df, the lowest 3.6): not this test's case
        bench = _bench(series, clusters, is_rate=False)
        terms = [((A, "think", "m"), 1.0), ((B, "think", "m"), -1.0)]
        mask = np.ones(12, dtype=bool)
        d = np.mean(list(series[terms[0][0]].values()), 0) - np.mean(list(series[terms[1][0]].values()), 0)
        residual = sum(seed_spread(y)[1] / len(y) for y in arm_contributions(bench, terms, mask).values())
        if prompt_variance(d, clusters, mask)[0] < residual:
            truncated += 1
        inf = seed_level_inference(bench, terms, mask, d, 0.05)
        if np.isfinite(inf.df):
            # the pooled seed part has 8 df (2 arms x 4), at worst 4 where one arm's noise dominates;
            # the prompt part 11
            assert inf.df >= 4 - 1e-9, inf
            assert inf.ci_hi - inf.estimate == pytest.approx(stats.t.ppf(0.975, inf.df) * inf.se)
    assert truncated >= 10  # the case this test is about did occur
