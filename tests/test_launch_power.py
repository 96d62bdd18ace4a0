"""The plan's MDE is the MDE of the test analyze runs: Holm's alpha / N over the confirmatory family,
prompt clusters (design effect, C - 1 df), the seed variance pooled over a size's trained arms and
Satterthwaite's df; one seed is conditional. Validated against known truth by simulation (the
engine-path check at scale is bench/power_check.py). A pilot is read per benchmark on its own
declared primary metric, and refused without a finished analysis."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from launch import pilot as pilots
from launch import power
from launch.plan_inputs import PlanInputs
from launch.power_view import power_lines
from tracecause.config import ConfigError
from tracecause.contracts import Arm

C = power.Components(sample=0.45, prompt=0.08, icc=0.5, seed=0.04)
D = power.Design(prompts=150, clusters=50, samples=4, seeds=3, pooled_arms=10)


def test_a_larger_family_fewer_clusters_or_fewer_pooled_arms_raise_the_mde():
    def at(family=65, **design):
        return power.mde("amplification", C, replace(D, **design), family=family).value

    assert at(family=1) < at(family=10) < at(family=65)
    assert power.mde("training", C, D, family=65).alpha == pytest.approx(0.05 / 65)
    assert at(clusters=50) < at(clusters=25) < at(clusters=10)  # same 150 prompts: design effect and df
    assert at(pooled_arms=10) < at(pooled_arms=2)  # the seed estimate's df
    # sampling noise in the arms' seed means costs the pooled estimate df (as the engine counts them)
    assert power.seed_part_df(C, D) < power.pooled_seed_df(D) == 20
    assert power.seed_part_df(C, replace(D, samples=400)) == pytest.approx(20, rel=0.01)
    assert at(seeds=3) < at(seeds=2)
    assert power.mde("internalisation", C, D).value > power.mde("training", C, D).value


def test_one_seed_is_conditional_with_no_seed_term_and_prompt_cluster_df():
    one = replace(D, seeds=1)
    m = power.mde("amplification", C, one, family=65)
    assert m.conditional and m.df == pytest.approx(one.clusters - 1)
    assert m.value == power.mde("amplification", replace(C, seed=0.5), one, family=65).value  # no seed term
    three = power.mde("amplification", C, D, family=65)
    assert not three.conditional and one.clusters - 1 + 20 > three.df > 20  # Satterthwaite between the parts
    assert three.value > power.mde("amplification", replace(C, seed=0.0), D, family=65).value


def _cluster_mean_t(d: np.ndarray, clusters: int) -> np.ndarray:
    """(sims, P) paired differences -> t over cluster means (what the cluster-level tests measure)."""
    cm = d.reshape(len(d), clusters, -1).mean(2)
    return cm.mean(1) / (cm.std(1, ddof=1) / np.sqrt(clusters))


def test_one_seed_mde_is_detected_about_80_percent_at_holm_alpha():
    """Known truth: the effect planted at the printed MDE, one seed per arm, clustered interaction."""
    rng = np.random.default_rng(0)
    d = replace(D, seeds=1, prompts=120, clusters=40)
    m = power.mde("amplification", C, d, family=20)
    sims, P, k = 4000, d.prompts, d.prompts // d.clusters
    cl = np.repeat(np.arange(d.clusters), k)

    def arm():
        inter = rng.normal(0, C.prompt * C.icc ** 0.5, (sims, d.clusters))[:, cl] \
            + rng.normal(0, C.prompt * (1 - C.icc) ** 0.5, (sims, P))
        return inter + rng.normal(0, C.sample / np.sqrt(d.samples), (sims, P))

    t = _cluster_mean_t(m.value + arm() - arm(), d.clusters)
    detected = (2 * stats.t.sf(np.abs(t), d.clusters - 1) < m.alpha).mean()
    assert 0.76 <= detected <= 0.84
    t_half = _cluster_mean_t(m.value / 2 + arm() - arm(), d.clusters)
    assert (2 * stats.t.sf(np.abs(t_half), d.clusters - 1) < m.alpha).mean() < 0.3


def test_three_seed_mde_with_pooled_seed_variance_is_detected_about_80_percent():
    """Seed shifts dominate: the pooled-variance t over the size's 10 trained arms (power.py's test,
    cluster part from seed-averaged cluster means) rejects ~80 % at the MDE, alpha / N."""
    rng = np.random.default_rng(1)
    c = power.Components(sample=0.2, prompt=0.03, icc=0.0, seed=0.05)
    d = power.Design(prompts=60, clusters=60, samples=4, seeds=3, pooled_arms=10)
    m = power.mde("amplification", c, d, family=10)
    sims, S, A, P = 3000, d.seeds, d.pooled_arms, d.prompts
    effect = np.zeros(A)
    effect[0] = m.value  # arm 0 - arm 1 is the contrast; arms 2..9 only feed the seed pool
    y = (effect[None, :, None, None] + rng.normal(0, c.seed, (sims, A, S, 1))
         + rng.normal(0, c.prompt, (sims, A, 1, P)) + rng.normal(0, c.sample / np.sqrt(d.samples), (sims, A, S, P)))
    x = y.mean(3)  # (sims, A, S) seed means
    resid = y - x[..., None] - y.mean(2, keepdims=True) + y.mean((2, 3), keepdims=True)
    r = (resid ** 2).sum(3).sum(2) / ((S - 1) * (P - 1)) / P  # (sims, A)
    v = x.var(2, ddof=1)
    n = A * (S - 1)
    s2 = np.maximum(((S - 1) * (v - r)).sum(1) / n, 0)
    half_var = ((S - 1) * (s2[:, None] + r) ** 2).sum(1) / n ** 2
    diff = y[:, 0].mean(1) - y[:, 1].mean(1)  # (sims, P) seed-averaged paired differences
    v_prompt = diff.var(1, ddof=1) / P
    V = v_prompt + 2 * s2 / S
    df = V ** 2 / (v_prompt ** 2 / (P - 1) + (2 / S) ** 2 * half_var)
    p = 2 * stats.t.sf(np.abs(diff.mean(1)) / np.sqrt(V), df)
    assert 0.75 <= (p < m.alpha).mean() <= 0.85


def _plan(seeds=(0,), family=65, arms=None):
    arms = arms or [Arm("m", "none", "base"), Arm("m", "none", "qa", 0), Arm("m", "evil", "qta", 0)]
    return SimpleNamespace(spec=SimpleNamespace(seeds=list(seeds), analysis={}), arms=[SimpleNamespace(arm=a)
                                                                                      for a in arms],
                           inputs=PlanInputs(family_size=family or None))


BENCHES = {"sim_evil": {"prompts": 96, "clusters": 48, "samples": 4},
           "sim_misleading": {"prompts": None, "clusters": None, "samples": 1}}


def test_plan_prints_alpha_over_n_df_and_what_more_seeds_buy_and_flags_one_seed_conditional():
    text = "\n".join(power_lines(_plan(), None, BENCHES))
    assert "alpha 0.05 / 65 = 0.00077: Holm's first step over the confirmatory family of 65 tests" in text
    assert "ONE SEED" in text and "CONDITIONAL on these training runs" in text
    assert "1 seed*" in text and "2 seeds" in text and "3 seeds" in text
    m1 = power.mde("training", power.default_components(), power.Design(96, 48, 4, 1, 2), family=65)
    m3 = power.mde("training", power.default_components(), power.Design(96, 48, 4, 3, 2), family=65)
    assert f"{m1.value:.3f} (47 c)" in text and f"{m3.value:.3f} ({m3.df:.0f})" in text
    assert "seed variance pooled over the 2 trained arms of each model size" in text
    assert "sim_misleading" in text and "100?" in text
    unbuilt = "\n".join(power_lines(_plan(seeds=(0, 1, 2), family=None), None, BENCHES))
    assert "alpha 0.05 unadjusted: confirmatory family not built" in unbuilt and "ONE SEED" not in unbuilt
    assert "3 seeds*" in unbuilt


def test_with_the_family_built_the_table_shows_its_own_contrasts_and_counts_its_tests():
    plan = _plan()
    amp = {"kind": "amplification", "statistic": "difference", "benchmark": "sim_evil", "paradigm": "qta",
           "paradigm_b": "qa", "mode": "think"}
    spec = {"kind": "specificity", "statistic": "diagonal_dominance", "benchmark": "all", "paradigm": "qta",
            "paradigm_b": "qta", "mode": "think"}
    plan.inputs.family = {"alpha": 0.1, "tests": [{**amp, "size": "a"}, {**amp, "size": "b"}, spec]}
    text = "\n".join(power_lines(plan, None, BENCHES))
    row = next(line for line in text.splitlines() if "amplification qta-qa think" in line)
    m = power.mde(power.Shape(2, 0), power.default_components(), power.Design(96, 48, 4, 1, 2), alpha=0.1,
                  family=65)
    assert row.split()[:4] == ["sim_evil", "96", "48", "4"] and "    2  " in row and f"{m.value:.3f} (47 c)" in row
    assert "alpha 0.1 / 65" in text and "sim_misleading" not in text  # not in the family: not shown
    assert "specificity tests: a permutation test over training runs, not a linear contrast" in text


def test_a_pilot_without_a_finished_analysis_is_refused_with_file_key_and_fix(tmp_path):
    from evalsuite.analysis.simulate import SimSpec, simulate_sweep

    with pytest.raises(ConfigError, match="no such folder"):
        pilots.read_primaries(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="is not a sweep folder"):
        pilots.read_primaries(tmp_path / "empty")
    simulate_sweep(tmp_path / "p", SimSpec.small(models=("sim-0.6b",), types=("evil",), paradigms=("qa",),
                                                 seeds=(0,), n_clusters=4))
    with pytest.raises(ConfigError) as err:
        power_lines(_plan(), str(tmp_path / "p"), BENCHES)
    msg = str(err.value)
    assert f"{tmp_path / 'p' / 'analysis' / 'missing.json'}: primary_metrics: the pilot has no finished analysis" in msg
    assert f"run `python -m evalsuite analyze {tmp_path / 'p'}` first" in msg


def test_plan_with_a_pilot_that_has_no_analysis_exits_2_naming_the_file_and_the_fix(tmp_path, monkeypatch, capsys):
    from launch.cli import main as cli

    monkeypatch.delenv("TRACECAUSE_BENCHMARKS", raising=False)
    pilot = tmp_path / "pilot"
    pilot.mkdir()
    (pilot / "sweep.yaml").write_text("name: pilot\n")
    rc = cli(["plan", "paper", "--rehearse", "--out", str(tmp_path / "r"), "--study-out", str(tmp_path / "s"),
              "--pilot", str(pilot)])
    io = capsys.readouterr()
    assert rc == 2 and "minimum detectable" not in io.out
    assert f"tracecause plan: {pilot}/analysis/missing.json: primary_metrics: the pilot has no finished analysis" \
        in io.err and f"python -m evalsuite analyze {pilot}" in io.err


@pytest.fixture(scope="module")
def finished_pilot(tmp_path_factory):
    """A simulated pilot sweep (3 seeds, one size) with its analysis finished; sim_misleading's primary
    is declared as the continuous 'score' (judge noise sd 0.15), the others keep the 0/1 'harmful'."""
    from evalsuite.analysis.config import AnalysisConfig
    from evalsuite.analysis.run import analyze
    from evalsuite.analysis.simulate import SimSpec, simulate_sweep

    root = tmp_path_factory.mktemp("pilot") / "pilot"
    spec = SimSpec.small(models=("sim-0.6b",), paradigms=("qa", "qta"), seeds=(0, 1, 2), n_clusters=40,
                         paraphrases=2, k_samples=8, seed_sd=0.04, interaction_sd=0.06, nan_fraction=0.0)
    simulate_sweep(root, spec, analysis={"primary_metrics": {"sim_misleading": {"metric": "score",
                                                                                "higher_is": "worse"}}})
    analyze(root, AnalysisConfig(resamples=100, progress=False, wandb=False, figures=False))
    return root


def test_pilot_components_are_read_per_benchmark_on_its_declared_primary(finished_pilot):
    got = pilots.pilot_components(finished_pilot)
    assert {b: m for b, (m, _) in got.items()} == {"sim_evil": "harmful", "sim_misleading": "score",
                                                    "sim_submission": "harmful"}
    evil, misleading = got["sim_evil"][1], got["sim_misleading"][1]
    assert 0.38 < evil.sample < 0.5  # Bernoulli samples at rates ~0.2-0.5
    assert misleading.sample == pytest.approx(0.15, rel=0.05)  # the judge score's own noise, not the 0/1 scale
    assert evil.prompt == pytest.approx(0.06, rel=0.4)  # each run's interaction (sd 0.06)
    assert misleading.seed == pytest.approx(0.04, rel=0.5)  # pooled over 4 trained arms x 2 modes x 2 df
    assert all(c.source(k).startswith("pilot pilot") for _, c in got.values() for k in ("sample", "prompt", "seed"))
    assert "pooled, 16 df" in evil.source("seed")


def test_the_plan_says_which_components_came_from_the_pilot_and_which_are_assumed(finished_pilot):
    plan = _plan(seeds=(0, 1, 2))
    plan.inputs.analysis_benchmarks = {"sim_evil": {"primary": {"metric": "harmful"}},
                                          "sim_misleading": {"primary": {"metric": "harmful"}},
                                          "other": {"primary": {"metric": "x"}}}
    benches = {**BENCHES, "other": {"prompts": 50, "clusters": 50, "samples": 1}}
    text = "\n".join(power_lines(plan, str(finished_pilot), benches))
    evil = next(line for line in text.splitlines() if line.strip().startswith("sim_evil (harmful):"))
    assert "sample, prompt, icc: pilot pilot" in evil or "sample: pilot pilot" in evil
    assert "seed: pilot pilot (pooled, 16 df)" in evil
    assert "sim_misleading (harmful): " in text and "assumed (conservative default): the pilot's primary is 'score'" \
        in text
    assert "other (x): " in text and "assumed (conservative default): not in the pilot" in text
