"""Seed variance pooled over a model size's trained arms (evalsuite/analysis/seeds.py), checked by
simulation through the path ``analyze`` runs: run.benchmark_effects on load.build_benchmarks
(simulate_seeds.null_replications: no true effect, every trained run shifted by its own seed draw).

Measured outside the tests, 2 x 1000 replications per setting (2 x 3000 contrasts of each kind),
false-positive rate at alpha 5 % (95 % CI coverage), before pooling -> after:
    3 seeds  vs base  3.9 / 4.1 % (.961 / .959) -> 4.9 / 4.9 % (.951 / .951)
             between  4.7 / 4.5 % (.953 / .955) -> 4.5 / 4.4 % (.955 / .956)
    2 seeds  vs base  4.9 / 5.0 % (.951 / .950) -> 5.5 / 5.0 % (.945 / .950)
             between  7.5 / 6.9 % (.925 / .931) -> 3.5 / 4.1 % (.965 / .959)
    rare, 3  vs base  5.8 / 6.5 % (.942 / .935) -> 6.5 / 6.6 % (.935 / .934)
             between  3.5 / 2.6 % (.965 / .974) -> 2.1 / 1.9 % (.979 / .981)
    rare, 2  vs base  5.7 / 6.0 % (.943 / .940) -> 4.2 / 4.1 % (.958 / .959)
             between  3.9 / 3.1 % (.961 / .969) -> 1.0 / 0.4 % (.990 / .996)
Before pooling, 19-59 % of these rows fell back to the prompt part's C - 1 df; after, none.

A 0/1 metric's seed component pooled per unit Bernoulli variance q(1 - q) and mapped back at each
effect's trained arms' mean rate (seeds.py), measured on 4 x 1000 replications per setting (seeds
S, S + 1000, S + 2000, S + 3000; S = 20261205 for 3 seeds, else as in SETTINGS), false-positive
rate at alpha 5 %: mean (range over the four) and mean coverage, pooled sigma^2 -> per p(1-p):
    3 seeds  vs base  5.4 (4.9-5.7) .946 -> 5.3 (4.8-5.6) .947
             between  4.6 (4.4-4.7) .954 -> 4.7 (4.3-5.0) .953
    2 seeds  vs base  5.1 (4.6-5.9) .949 -> 5.3 (4.9-6.0) .947
             between  3.7 (3.4-3.9) .963 -> 4.1 (3.7-4.4) .959
    rare, 3  vs base  6.2 (5.5-6.8) .938 -> 6.5 (6.0-7.2) .935
             between  2.2 (1.9-2.4) .978 -> 3.6 (3.4-3.7) .964
    rare, 2  vs base  4.1 (3.3-4.7) .959 -> 3.8 (3.2-4.2) .962
             between  0.6 (0.6-0.7) .994 -> 3.3 (3.1-3.5) .967
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalsuite.analysis.config import AnalysisConfig
from evalsuite.analysis.engine import CONDITIONAL, SEEDS_RANDOM
from evalsuite.analysis.run import benchmark_effects
from evalsuite.analysis.seeds import HETEROGENEITY_P
from evalsuite.analysis.simulate_seeds import null_replications

CFG = AnalysisConfig(resamples=200, progress=False, wandb=False, figures=False)
VS_BASE, BETWEEN = ("training",), ("amplification", "content")
# A rare outcome: ~1 % per prompt (rates spread over 0.4-2.7 % by cluster), 50 single-prompt clusters
# x 4 samples. Seed shifts on the logit scale keep every rate in (0, 1): sd 0.3 logits is the relative
# spread of sd 0.03 at 12 % (0.03 / (0.12 * 0.88) = 0.28).
RARE = dict(base_rate=0.01, n_clusters=50, paraphrases=1, k=4, logit=True, seed_sd=0.3, cluster_spread=1.0,
            interaction_sd=0.2)
SETTINGS = {
    "2 seeds": dict(n_reps=700, seeds=2, seed_sd=0.03, base_rate=0.12, seed=20261206),
    "rare, 3 seeds": dict(n_reps=500, seeds=3, seed=20261207, **RARE),
    "rare, 2 seeds": dict(n_reps=500, seeds=2, seed=20261208, **RARE),
}
_ROWS: dict = {}
# every simulated metric here is 0/1: its seed variance is pooled per unit q(1 - q), and the rows say so
POOLED = "pooled per p(1-p)"


def null_rows(setting: str) -> pd.DataFrame:
    if setting not in _ROWS:
        _ROWS[setting] = pd.DataFrame(benchmark_effects(null_replications(**SETTINGS[setting]), {}, CFG, []))
    return _ROWS[setting]


def _rates(rows: pd.DataFrame) -> tuple[float, float]:
    fpr = float((rows["p"] < 0.05).mean())
    coverage = float(((rows["ci_lo"] <= 0) & (0 <= rows["ci_hi"])).mean())
    return fpr, coverage


@pytest.mark.parametrize("setting", ["2 seeds", "rare, 3 seeds", "rare, 2 seeds"])
@pytest.mark.parametrize("kinds", [VS_BASE, BETWEEN], ids=["vs-base", "between-trained"])
def test_pooled_seed_inference_has_nominal_error_rates(setting, kinds):
    """Before pooling, 2 seeds per arm: between-trained 7.5 % false positives (coverage 0.925) over 3000
    null contrasts, with half the tests on 1-2 df; the row's own seeds were its only seed estimate."""
    rows = null_rows(setting)
    rows = rows[rows["kind"].isin(kinds) & rows["p"].notna()]
    assert len(rows) >= 900 and (rows["method"] == SEEDS_RANDOM).all()
    assert rows["seed_variance"].str.match(r"pooled per p\(1-p\) \(size rep\d{4}, \d+ df\)$").all()
    fpr, coverage = _rates(rows)
    if setting.startswith("rare") and kinds == BETWEEN:
        # 3.1-3.5 % at 2 seeds, 3.4-3.7 % at 3 over 1000 replications; these 500 give 2.9 % and 3.1 %, so
        # the band's floor is a little below 3 %. With sigma^2 itself pooled (a chance-high arm's spread
        # inflating the very contrasts its count makes large) the same 500 gave 0.7 % (.993) and 1.5 % (.985)
        assert 0.025 <= fpr <= 0.07 and 0.93 <= coverage <= 0.975, (fpr, coverage)
    else:
        assert 0.03 <= fpr <= 0.07, f"false-positive rate {fpr:.3f} over {len(rows)} null contrasts"
        assert 0.93 <= coverage <= 0.97, f"95% CI coverage {coverage:.3f} over {len(rows)} null contrasts"
    excludes = (rows["ci_lo"] > 0) | (rows["ci_hi"] < 0)
    assert ((rows["p"] < 0.05) == excludes).all()  # one model behind the p and the CI


def test_pooled_df_is_what_the_design_gives():
    """3 trained arms x (2 seeds - 1) = 3 df per size, whatever each arm's own spread; the prompt part
    (C - 1 = 15 df) never stands alone: before pooling, an arm whose own seed estimate came out <= 0
    fell back to exactly C - 1 df (the rows where most false positives came from)."""
    rows = null_rows("2 seeds")
    lin = rows[rows["kind"].isin(VS_BASE + BETWEEN)]
    assert (lin["seed_variance"].str.endswith(", 3 df)")).all()
    assert not np.isclose(lin["t_df"], 15).any()
    assert lin[lin["kind"].isin(BETWEEN)]["t_df"].median() >= 2.7  # before pooling: 1.9
    three = pd.DataFrame(benchmark_effects(null_replications(40, seeds=3, seed=4), {}, CFG, []))
    three = three[three["kind"].isin(VS_BASE + BETWEEN)]
    assert (three["seed_variance"].str.endswith(", 6 df)")).all()
    assert three[three["kind"].isin(BETWEEN)]["t_df"].median() >= 5.5  # before pooling: 3.8
    assert three[three["kind"].isin(VS_BASE)]["t_df"].median() >= 6


def _one_size(seeds=3, n_types=3, seed=5):
    types = tuple(f"type{i}" for i in range(n_types))
    return null_replications(1, seeds=seeds, seed=seed, n_clusters=30, types=types)


def test_an_arm_out_of_line_with_its_pool_uses_its_own_seeds():
    bench = _one_size()
    wild = ("rep0000", "type0", "qta")
    key = (wild, "think", "harmful")
    for s, shift in zip(sorted(bench.series[key]), (-0.25, 0.0, 0.25)):  # seed sd 0.25 in a pool of 0.03
        bench.series[key][s] = bench.series[key][s] + shift
    rows = pd.DataFrame(benchmark_effects(bench, {}, CFG, []))
    training = rows[rows["kind"] == "training"].set_index("rtype_a")
    note = training.loc["type0", "seed_variance"]
    assert note.startswith("own rep0000.type0.qta (heterogeneous: F p=") and note.endswith(", 2 df)")
    assert float(note.split("p=")[1].split(",")[0]) < HETEROGENEITY_P
    # the other three arms pool without it: 3 x 2 df
    for rtype in ("none", "type1", "type2"):
        assert training.loc[rtype, "seed_variance"] == f"{POOLED} (size rep0000, 6 df)"
    assert training.loc["type0", "t_df"] < 3  # its own 2 df (and the prompt part)
    # a contrast of the wild arm with a pooled one names both sources
    content = rows[(rows["kind"] == "content") & (rows["rtype_a"] == "type0") & (rows["rtype_b"] == "type1")]
    assert content["seed_variance"].iloc[0].split("; ") == ["own rep0000.type0.qta (heterogeneous: F p="
                                                              + note.split("p=")[1], f"{POOLED} (size rep0000, 6 df)"]


def test_same_spread_everywhere_pools_every_arm():
    rows = pd.DataFrame(benchmark_effects(_one_size(), {}, CFG, []))
    lin = rows[rows["kind"] != "replicate_split"]
    assert (lin["seed_variance"] == f"{POOLED} (size rep0000, 8 df)").all()  # 4 trained arms x 2 df


def test_only_a_rate_is_pooled_per_unit_bernoulli_variance():
    """A metric scored on a continuous scale pools sigma^2 itself: the q(1 - q) rule is for 0/1 outcomes."""
    rate = pd.DataFrame(benchmark_effects(_one_size(), {}, CFG, []))
    bench = _one_size()
    bench.is_rate = {metric: False for metric in bench.is_rate}
    score = pd.DataFrame(benchmark_effects(bench, {}, CFG, []))
    lin = score["kind"] != "replicate_split"
    assert (score.loc[lin, "seed_variance"] == "pooled (size rep0000, 8 df)").all()
    assert (rate.loc[lin, "seed_variance"] == f"{POOLED} (size rep0000, 8 df)").all()
    assert np.allclose(rate["estimate"], score["estimate"])  # the same data: only the variance differs
    assert not np.allclose(rate.loc[lin, "p"], score.loc[lin, "p"])


def test_a_one_seed_arm_takes_its_pools_seed_term_and_is_no_longer_conditional():
    bench = _one_size()
    one = ("rep0000", "type2", "qta")
    key = (one, "think", "harmful")
    bench.series[key] = {0: bench.series[key][0]}
    bench.seeds[one] = [0]
    rows = pd.DataFrame(benchmark_effects(bench, {}, CFG, []))
    row = rows[(rows["kind"] == "training") & (rows["rtype_a"] == "type2")].iloc[0]
    assert row["method"] == SEEDS_RANDOM and row["conditional_on"] == []
    assert row["seed_variance"] == f"{POOLED} (size rep0000, 6 df)"  # the three arms with seeds
    # every arm with one seed: no pool, conditional on the training runs, as before
    solo = null_replications(1, seeds=1, seed=6, n_clusters=30)
    rows = pd.DataFrame(benchmark_effects(solo, {}, CFG, []))
    lin = rows[rows["kind"] == "training"]
    assert (lin["method"] == CONDITIONAL).all() and lin["seed_variance"].str.startswith("none").all()
    assert all(len(c) == 1 for c in lin["conditional_on"])


def test_pools_by_size_and_paradigm_and_slopes_combine_pools():
    bench = null_replications(2, seeds=3, seed=7)
    rows = pd.DataFrame(benchmark_effects(bench, {"rep0000": 9.0, "rep0001": 9.6}, CFG, [], seed_pool="size_paradigm"))
    amp = rows[(rows["kind"] == "amplification") & (rows["size"] == "rep0001")]
    assert set(amp["seed_variance"]) == {f"{POOLED} (size rep0001 x qa, 2 df); {POOLED} (size rep0001 x qta, 4 df)"}
    slope = rows[(rows["kind"] == "scale") & (rows["statistic"] == "slope_training_difference")
                 & (rows["rtype_a"] == "evil")].iloc[0]
    assert slope["seed_variance"] == f"{POOLED} (size rep0000 x qta, 4 df); {POOLED} (size rep0001 x qta, 4 df)"
    assert 4 <= slope["t_df"] <= 4 + 4 + 15  # Satterthwaite over both pools and the prompt part
    with pytest.raises(ValueError, match="seed_pool 'arm'"):
        benchmark_effects(bench, {}, CFG, [], seed_pool="arm")
