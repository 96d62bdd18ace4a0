"""Seed-level inference: one model of the variance behind both the p-value and the CI.

The estimand is the effect of the *training procedure*, training seeds random: a fresh seed
would move each trained arm by its own seed shift, independently of every other arm. An effect
is Σ_arms λ_a · u_a, u_a the arm's contribution of one unit *shape* (Σ c·series over its
modes/metrics, first c = 1: a training effect's arm is 1·think, a did's is think − no_think, a
slope's is the training effect's shape times its weight λ), and with S_a seeds per arm

    V = max(V_prompt − Σ_a r_a / S_a, 0) + Σ_a max(λ_a² σ²_seed + r_a, 0) / S_a

V_prompt: the prompt-cluster (linearised ratio) variance of the paired prompt-level effect, seeds
averaged — every arm's sampling noise and prompt × arm interaction. r_a: the part of arm a's
variance of seed means that is sampling noise (seed × prompt residual mean square / P on the
effect's prompts; for a one-seed arm, the pool's residual mean square / P), counted once.
σ²_seed: the seed-to-seed variance of the unit shape, **pooled** over the trained arms of the
arm's pool — one model size, or one size × paradigm (sweep.yaml ``analysis.seed_pool``) — with
≥ 2 seeds, method of moments:

    σ²_seed = Σ_b (S_b − 1)(v_b − r_b) / Σ_b (S_b − 1),   v_b = variance of arm b's seed means,

df_pool = Σ (S_b − 1): 11 arms × 3 seeds give 22 df instead of each arm's 2. Pooling the seed
component, not the seed means' variance, keeps each arm's own sampling noise r_a (arms at
different rates differ there, not in seed spread); σ²_seed is not truncated at 0 (truncating
it over-covers: 1.8 % false positives for 5 % at 2 seeds), only each arm's total.

A 0/1 metric (every term of the shape a rate): a count's spread grows with its level, so the
seed component is one constant per unit of Bernoulli variance, σ²_seed = κ · L with
L = Σ_terms c² · q(1 − q), and κ is what the pool estimates (the rule's label: "pooled per
p(1-p)"):

    κ = Σ_b (S_b − 1)(v_b − r_b) / m_b / Σ_b (S_b − 1),   m_b = arm b's own L (its own rates),

an arm with no events (or only events: m_b = 0) left out. Each effect maps κ back at its own
level: q the mean rate of the effect's trained arms (the rate they share under the null; the
base arm has no seed term, its noise is in V_prompt). Why: pooling σ² itself lets an arm whose
count came out high by chance inflate the seed term of exactly the contrasts where that count
makes the difference large, so between trained arms at a ~1 % rate the test rejected 0.6 %
(2 seeds) and 2.2 % (3 seeds) of null contrasts for 5 %; per unit level 3.3 % and 3.6 %
(tests/test_analysis_pooled_seeds.py). Continuous metrics pool σ² as above.

CI = estimate ± t_df·√V and p = 2·P(T_df > |estimate|/√V) with Satterthwaite's df over the prompt
part (C − 1 df) and each pooled estimate (df_pool; arms sharing one estimate count once, their
coefficients summed, Var(σ²_seed) from the pool's fitted seed-mean variances; for a 0/1 metric
the df can fall below df_pool where the effect's arms' rates differ, as q(1 − q) at their mean
rate exceeds their own: V then holds a difference of mean squares). The seed part
always counts: no fall-back to prompt-only df when an estimate comes out ≤ 0 (where every part
clipped to 0, V is V_prompt, its df still over the parts: about 1 row in 1000 at 2 seeds).

Heterogeneity: an arm whose variance of seed means exceeds what the rest of its pool predicts
(σ²_seed of the others, at its own level for a 0/1 metric, + its own r_a; one-sided F test,
p < HETEROGENEITY_P) is left out of the pool, and effects involving it use its own seeds
(v_a / S_a with S_a − 1 df, as before pooling);
the row's ``seed_variance`` says which ("pooled (size X, 22 df)" / "own ARM (heterogeneous: F
p=0.003, 2 df)"). Only a larger spread is flagged: a pooled estimate is too small only for arms
that vary more than the rest.

A trained arm with a single seed gets its pool's term too, so its row is about the training
procedure; only where no arm of the effect has a pool estimate or seeds of its own (every trained
arm of the size has one seed) does the row stay conditional (engine.py: cluster bootstrap).
Replicate-split halves (conds with a fourth element) use their parent's pool without the parent:
the split is one of the parent's own seed degrees of freedom.

Measured (simulate_seeds.null_replications, 3 trained arms per size, 4 x 1000 replications): see
tests/test_analysis_pooled_seeds.py. A rare binary outcome (~1 %, a few events per seed) is still
a little conservative between trained arms at 2 seeds (3.3 %; 3 df in the pool): more arms per
pool (more df) shrink that.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import fdtrc, stdtr, stdtrit  # scipy.stats' t and F without its per-call overhead

HETEROGENEITY_P = 0.01  # one-sided F test of an arm's seed spread against the rest of its pool


@dataclass
class SeedInference:
    estimate: float
    ci_lo: float
    ci_hi: float
    p: float
    df: float
    se: float
    seed_share: float  # fraction of V from seed-to-seed variation
    seed_variance: str = ""  # where the seed terms came from, in words (pooled / own, df)
    pooled_single: list = field(default_factory=list)  # one-seed trained arms given their pool's seed term


@dataclass(frozen=True)
class PoolEstimate:
    """σ²_seed of one unit contribution shape over one pool's arms (heterogeneous arms left out)."""
    name: str
    s2: float  # seed variance component, unbiased (may be < 0 by sampling; only totals are clipped at 0)
    ms_resid: float  # pooled seed x prompt residual mean square: a one-seed arm's r is ms_resid / P
    df: int
    half_var: float  # Var(s2) / 2: Satterthwaite's "MS² / df" of this estimate
    flagged: dict  # cond -> heterogeneity p of the arms left out
    per_level: bool = False  # s2 per unit Bernoulli variance (a 0/1 metric): an arm's component is s2 · level

    @property
    def label(self) -> str:
        return f"pooled{' per p(1-p)' if self.per_level else ''} ({self.name})"


def arm_contributions(bench, terms, mask) -> dict:
    """Per trained arm (cond): its seeds' per-prompt contributions Σ coef·value, shape (S, P_masked).

    Grouped by arm because seed s of one arm and seed s of another are different training runs:
    their seed shifts are independent draws (pooling them by seed index would pair unrelated runs).
    """
    groups: dict = {}
    for key, coef in terms:
        groups.setdefault(key[0], []).append((key, coef))
    out = {}
    for cond, items in groups.items():
        seeds = sorted(set.intersection(*(set(bench.series[k]) for k, _ in items)))
        out[cond] = np.stack([sum(c * bench.series[k][s][mask] for k, c in items) for s in seeds])
    return out


def arm_shapes(terms) -> dict:
    """Per arm: (unit shape, λ) with its contribution = λ · Σ_(mode, metric, c) c·series, first c = 1."""
    items: dict = {}
    for (cond, mode, metric), coef in terms:
        items.setdefault(cond, []).append(((mode, metric), coef))
    out = {}
    for cond, its in items.items():
        its = sorted(its)
        lam = its[0][1]
        out[cond] = (tuple((mm, c / lam) for mm, c in its), lam)
    return out


def seed_spread(y: np.ndarray) -> tuple[float, float]:
    """(v, r) of one arm's (S, P) contributions: variance of its seed means, and the part of it that is
    seed × prompt residual noise (MS_resid / P). v − r estimates σ²_seed."""
    S, P = y.shape
    if S < 2 or P < 2:
        return 0.0, 0.0
    x = y.mean(1)
    resid = y - x[:, None] - y.mean(0)[None, :] + y.mean()
    ms_resid = (resid ** 2).sum() / ((S - 1) * (P - 1))
    return float(x.var(ddof=1)), float(ms_resid / P)


def prompt_variance(d: np.ndarray, clusters: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
    """Linearised cluster variance of the ratio estimator Σd / n over masked prompts, and #clusters."""
    codes, inv = np.unique(clusters[mask], return_inverse=True)
    C = len(codes)
    D = np.bincount(inv, weights=d[mask], minlength=C)
    n = np.bincount(inv, minlength=C).astype(float)
    est = D.sum() / n.sum()
    if C < 2:
        return float("nan"), C
    return float(C / (C - 1) * ((D - est * n) ** 2).sum() / n.sum() ** 2), C


def rate_shape(bench, shape) -> bool:
    """Every term of the unit shape on a 0/1 metric: its seed variance is modelled per unit of level."""
    return all(bench.is_rate.get(metric, False) for (_, metric), _ in shape)


def bernoulli_level(bench, conds, shape, mask) -> float:
    """Σ_terms c² · q(1 − q) of a unit shape, q each term's rate averaged over ``conds`` (every arm's
    seeds and the masked prompts): the level a 0/1 metric's seed variance is proportional to."""
    total = 0.0
    for (mode, metric), c in shape:
        rates = [np.nanmean(np.stack(list(bench.series[(cond, mode, metric)].values()))[:, mask]) for cond in conds
                 if (cond, mode, metric) in bench.series]
        q = float(np.mean(rates))
        total += c * c * q * (1.0 - q)
    return total


def _moments(spreads: list) -> tuple[float, int]:
    """Pooled σ²_seed (per unit level m_b; m_b = 1 unless per_level) and its df from [(df_b, v_b, r_b, P_b, m_b)]."""
    n = sum(x[0] for x in spreads)
    return (sum(k * (v - r) / m for k, v, r, _, m in spreads) / n if n else float("nan")), n


def pool_estimate(name: str, spreads: dict, per_level: bool = False) -> PoolEstimate | None:
    """σ²_seed from {cond: (S − 1, v, r, P, m)}, each arm first tested against the rest of the pool."""
    flagged = {}
    for cond, (k, v, r, _, m) in spreads.items():
        rest = [x for c, x in spreads.items() if c != cond]
        s2_rest, n_rest = _moments(rest)
        if not n_rest:
            continue
        expected = max(s2_rest, 0.0) * m + r  # the seed component as at least 0: flag only clear excess
        p = float(fdtrc(k, n_rest, v / expected)) if expected > 0 else (0.0 if v > 0 else 1.0)
        if p < HETEROGENEITY_P:
            flagged[cond] = p
    kept = [x for c, x in spreads.items() if c not in flagged]
    s2, n = _moments(kept)
    if not n:
        return None
    half_var = sum(k * (max(s2 * m + r, 0.0) / m) ** 2 for k, _, r, _, m in kept) / n ** 2
    ms_resid = sum(k * r * P for k, _, r, P, _ in kept) / n
    return PoolEstimate(f"{name}, {n} df", s2, ms_resid, n, half_var, flagged, per_level)


class SeedPools:
    """One benchmark's pooled seed-variance estimates, per (pool, unit shape), computed once and cached.

    Members: real trained arms (model, rtype, paradigm) with >= 2 seeds; a pool is one model size
    (``by="size"``) or one size × paradigm (``by="size_paradigm"``).
    """

    def __init__(self, bench, by: str = "size"):
        if by not in ("size", "size_paradigm"):
            raise ValueError(f"seed_pool {by!r}: use 'size' or 'size_paradigm'")
        self.bench, self.by = bench, by
        self.members: dict = {}
        for cond, seeds in bench.seeds.items():
            if len(cond) == 3 and cond[2] != "base" and len(seeds) >= 2:
                self.members.setdefault(self.key(cond), []).append(cond)
        self._cache: dict = {}

    def key(self, cond) -> tuple:
        return (cond[0], cond[2]) if self.by == "size_paradigm" else (cond[0],)

    def estimate(self, cond, shape) -> PoolEstimate | None:
        """The pooled estimate for a trained arm's unit shape (None: no pool, base arm, or no members).

        A replicate-split half (cond of 4) gets its pool without its parent arm: the split contrast is
        one of the parent's own seed degrees of freedom, and a variance estimate holding its own
        numerator is too large exactly when the contrast is (measured: 1.8 % false positives for 5 %)."""
        if cond[2] == "base":
            return None
        key = (self.key(cond), shape, cond[:3] if len(cond) > 3 else None)
        if key not in self._cache:
            self._cache[key] = self._compute(*key)
        return self._cache[key]

    def flagged(self, cond, shape) -> float | None:
        """Heterogeneity p of an arm (of a half: its parent) left out of its pool, None if it is in."""
        full = self.estimate(cond[:3], shape)
        return full.flagged.get(cond[:3]) if full is not None else None

    def _compute(self, pk, shape, leave_out=None) -> PoolEstimate | None:
        spreads, per_level = {}, rate_shape(self.bench, shape)
        for cond in self.members.get(pk, ()):
            if cond == leave_out:
                continue
            keys = [((cond, *mm), c) for mm, c in shape]
            if not all(k in self.bench.series for k, _ in keys):
                continue
            seeds = sorted(set.intersection(*(set(self.bench.series[k]) for k, _ in keys)))
            if len(seeds) < 2:
                continue
            y = np.stack([sum(c * self.bench.series[k][s] for k, c in keys) for s in seeds])
            present = np.isfinite(y).all(0)  # this arm's prompts with every value of the shape
            y = y[:, present]
            # an arm with no events (or only events) has level 0 and says nothing about the ratio
            m = bernoulli_level(self.bench, [cond], shape, present) if per_level else 1.0
            if y.shape[1] >= 2 and m > 0:
                spreads[cond] = (len(seeds) - 1, *seed_spread(y), y.shape[1], m)
        name = f"size {pk[0]}" + (f" x {pk[1]}" if len(pk) > 1 else "")
        return pool_estimate(name, spreads, per_level) if spreads else None


def _seed_parts(bench, terms, mask, pools: SeedPools):
    """Seed terms of V: (Σ r_a / S_a to take from V_prompt, Σ seed-mean variance terms, Satterthwaite
    groups {estimate: [Σ λ²·L/S, Var/2]} (L = 1 but for a 0/1 metric), labels of the estimates used,
    one-seed arms given a pool term)."""
    shapes = arm_shapes(terms)
    trained = sorted({key[0] for key, _ in terms if key[0][2] != "base"})
    residual, value, groups, labels, single = 0.0, 0.0, {}, set(), []
    for cond, y in arm_contributions(bench, terms, mask).items():
        S, P = y.shape
        shape, lam = shapes[cond]
        est = pools.estimate(cond, shape) if pools is not None else None
        flagged_p = pools.flagged(cond, shape) if est is not None else None
        if est is not None and flagged_p is None:
            # this arm's variance of seed means: the pool's seed component + its own sampling noise
            # (a one-seed arm's noise, not estimable from one run, from the pool's residual)
            r = seed_spread(y)[1] if S >= 2 else lam ** 2 * est.ms_resid / P
            # a 0/1 metric: the seed component at the effect's trained arms' common level (module docstring)
            level = bernoulli_level(bench, trained, shape, mask) if est.per_level else 1.0
            residual += r / S
            value += max(lam ** 2 * est.s2 * level + r, 0.0) / S
            groups.setdefault(id(est), [0.0, est.half_var])[0] += lam ** 2 * level / S  # one estimate: counted once
            labels.add(est.label)
            if S == 1:
                single.append(cond)
        elif S >= 2:  # not poolable: the arm's own seeds, S − 1 df
            v, r = seed_spread(y)
            residual += r / S
            value += v / S
            groups[("own", cond)] = [1.0 / S, v ** 2 / (S - 1)]
            why = f"heterogeneous: F p={flagged_p:.2g}" if flagged_p is not None else "no pool"
            labels.add(f"own {'.'.join(map(str, cond))} ({why}, {S - 1} df)")
    return residual, value, groups, labels, single


def seed_level_inference(bench, terms, mask, d, alpha: float, pools: SeedPools | None = None) -> SeedInference | None:
    """t-based CI and p from V_prompt + seed terms (module docstring); None when no arm of the effect
    has a seed term (every trained arm has one seed and no pool estimate: conditional inference)."""
    if pools is None:
        pools = SeedPools(bench)
    residual, seed_value, groups, labels, single = _seed_parts(bench, terms, mask, pools)
    if not groups:
        return None
    est = float(d[mask].sum() / mask.sum())
    v_prompt, C = prompt_variance(d, bench.clusters, mask)
    # V_prompt holds every arm's sampling noise; the arms' seed-mean variances hold it again: count it once
    prompt_part = max(v_prompt - residual, 0.0)
    V = prompt_part + seed_value
    if V <= 0 < v_prompt:
        # every part at 0 (the prompt part truncated, and the pool's seed estimate so far below its noise
        # that each arm's term clipped to 0): V_prompt still measures the sampling noise, df from the parts
        V = v_prompt
    nan = float("nan")
    if not np.isfinite(V) or V <= 0:
        return SeedInference(est, nan, nan, nan, nan, nan, nan, "; ".join(sorted(labels)), single)
    denom = sum(coef ** 2 * half_var for coef, half_var in groups.values())
    if C > 1:
        denom += prompt_part ** 2 / (C - 1)
    df = V ** 2 / denom if denom > 0 else float("inf")
    se = float(np.sqrt(V))
    q = float(stdtrit(df, 1 - alpha / 2))
    p = float(2 * stdtr(df, -abs(est) / se))
    return SeedInference(est, est - q * se, est + q * se, p, float(df), se, max(V - v_prompt, 0.0) / V,
                         "; ".join(sorted(labels)), single)
