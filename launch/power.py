"""What the study can detect: the minimum detectable effect (MDE) of the test ``analyze`` runs.

Model of one primary score of arm a, training seed s, prompt i (in paraphrase cluster c), sample k::

    y = mu_a + u_as + w_ac + z_ai + e_asik     u: seed shift of a training run, var sigma_seed^2 (0: base)
                                                w + z: prompt x arm interaction, var sigma_prompt^2, of
                                                       which the share icc is common to a cluster (w)
                                                e: sampling noise of one sample, var sigma_sample^2

A contrast is a sum of arm means (coefficients +-1), paired by prompt. The test (evalsuite.analysis):

    V = V_prompt + V_seed,     V_prompt = sum over arms of [sigma_prompt^2 deff / n + sigma_sample^2 / (n K S_a)]
                               V_seed   = sigma_seed^2 x sum over trained arms of 1 / S_a
    deff = 1 + (m - 1) icc, m = n / C prompts per cluster; V_prompt is estimated from C clusters
    (C - 1 df), sigma_seed^2 is pooled over every trained arm of a model size (df_pool = sum (S_a - 1),
    fewer effective df where sampling noise is a large part of the seed means' spread: seed_part_df),
    and the t has Satterthwaite's df between the two parts. With one seed per arm the seed
    variance cannot be estimated: the test is a cluster sign-flip over prompts, conditional on
    those training runs, and its MDE has no seed term (the row says so).

Multiplicity: Holm over the confirmatory family of N tests; its first step needs p < alpha / N,
and every MDE here is at alpha / N (conservative: later Holm steps need less).
MDE = the effect with probability ``power`` of p < alpha / N: solved on the noncentral t.
"""
from __future__ import annotations

from dataclasses import astuple, dataclass, replace

# Conservative defaults: a rate at 0.5 has the largest sampling variance (0.25); prompt-by-arm
# interaction and seed spread at 0.10 and 0.05 of the scale (the toy world measured seed spreads
# of this order in the project's design notes); half the interaction shared by a question's
# paraphrases (a guess, printed as such: a pilot measures it).
DEFAULTS = {"sample": 0.5, "prompt": 0.10, "icc": 0.5, "seed": 0.05}
ALPHA, POWER = 0.05, 0.80
ASSUMED = "assumed (conservative default)"


@dataclass(frozen=True)
class Shape:
    """What a contrast sums: trained arms (each with a seed term), untrained base arms, series per arm
    (2 for internalisation's think - no-think difference in differences)."""
    trained: int
    base: int
    series: int = 1


# kind -> (what it compares, its shape)
CONTRASTS = {
    "training": ("arm - base (same mode)", Shape(1, 1)),
    "amplification": ("QTA - QA (CoT amplification)", Shape(2, 0)),
    "content": ("type A - type B, same paradigm", Shape(2, 0)),
    "answer_free": ("QT / T-only - base", Shape(1, 1)),
    # the run's seed shifts in the two modes are taken as independent (conservative: a shift common
    # to both modes cancels)
    "internalisation": ("(arm - base) think - (arm - base) no-think", Shape(1, 1, 2)),
}


def shape_of(test: dict) -> Shape | None:
    """The shape of one confirmatory test (a family row: kind, statistic, paradigm, paradigm_b);
    None for a test that is not a linear contrast (specificity: a permutation test)."""
    if test.get("kind") == "specificity":
        return None
    trained = sum(p not in ("base", None) for p in (test.get("paradigm"), test.get("paradigm_b")))
    return Shape(trained, 2 - trained, 2 if test.get("statistic") == "did" else 1)


def _shape(kind: str | Shape) -> Shape:
    return kind if isinstance(kind, Shape) else CONTRASTS[kind][1]


@dataclass(frozen=True)
class Components:
    """Standard deviations on the primary metric's scale, and where each came from."""
    sample: float
    prompt: float
    icc: float
    seed: float
    sources: tuple = ()  # ((component, "pilot ..." | ASSUMED), ...)

    def source(self, name: str) -> str:
        return dict(self.sources).get(name, ASSUMED)


@dataclass(frozen=True)
class Design:
    prompts: int
    clusters: int
    samples: float  # K per prompt
    seeds: int  # per trained arm
    pooled_arms: int  # trained arms whose seed variance is pooled into one estimate (per model size)


@dataclass(frozen=True)
class Mde:
    value: float
    se: float
    df: float  # inf: normal
    alpha: float  # the per-test level used (alpha / N)
    conditional: bool  # one seed: inference given the training runs, no seed term


def default_components() -> Components:
    return Components(DEFAULTS["sample"], DEFAULTS["prompt"], DEFAULTS["icc"], DEFAULTS["seed"])


def holm_first_step(alpha: float, family: int) -> float:
    """The level Holm's first (hardest) step needs over a family of ``family`` tests."""
    return alpha / max(1, family)


def design_effect(d: Design, icc: float) -> float:
    m = d.prompts / max(1, d.clusters)
    return 1.0 + (m - 1.0) * icc


def prompt_part(kind: str | Shape, c: Components, d: Design) -> float:
    """V_prompt: each series' prompt x arm interaction (design effect) and sampling noise (over S seeds)."""
    trained, base, series = astuple(_shape(kind))
    inter = c.prompt ** 2 * design_effect(d, c.icc) / d.prompts
    noise = c.sample ** 2 / (d.prompts * max(d.samples, 1e-9))
    return series * (trained * (inter + noise / d.seeds) + base * (inter + noise))


def seed_part(kind: str | Shape, c: Components, d: Design) -> float:
    """V_seed: each trained arm's seed shift over its S seeds; 0 with one seed (not estimable: conditional)."""
    trained, _, series = astuple(_shape(kind))
    return 0.0 if d.seeds < 2 else series * trained * c.seed ** 2 / d.seeds


def pooled_seed_df(d: Design) -> int:
    """Degrees of freedom of the pooled seed variance: every pooled trained arm's S - 1."""
    return d.pooled_arms * (d.seeds - 1)


def seed_part_df(c: Components, d: Design) -> float:
    """Satterthwaite df of the pooled seed estimate sigma_seed^2 = v - r, as the analysis counts it: each
    arm's variance of seed means v holds sampling noise r = sigma_sample^2 / (K n) too, so the estimate
    varies like (sigma_seed^2 + r) on df_pool and carries df_pool (sigma_seed^2 / (sigma_seed^2 + r))^2."""
    r = c.sample ** 2 / (max(d.samples, 1e-9) * d.prompts)
    s2 = c.seed ** 2
    return pooled_seed_df(d) * (s2 / (s2 + r)) ** 2 if s2 > 0 else float(pooled_seed_df(d))


def satterthwaite(parts: list[tuple[float, float]]) -> float:
    """df of a sum of independent variance estimates [(value, df)]."""
    if any(k <= 0 for v, k in parts if v > 0):
        return float("nan")  # a part with no degrees of freedom (one cluster): no t test
    total = sum(v for v, _ in parts)
    denom = sum(v * v / k for v, k in parts if v > 0)
    return total * total / denom if denom > 0 else float("inf")


def multiplier(alpha: float, df: float, power: float = POWER) -> float:
    """delta / SE at which a two-sided t test at level ``alpha`` with ``df`` rejects with ``power``
    (noncentral t; normal when df is infinite)."""
    from scipy import optimize, stats

    if not df > 0:
        return float("nan")
    if df == float("inf"):
        crit = stats.norm.isf(alpha / 2)
        return float(optimize.brentq(lambda x: stats.norm.sf(crit - x) + stats.norm.cdf(-crit - x) - power, 0, 1e3))
    crit = stats.t.isf(alpha / 2, df)

    def rejects(x: float) -> float:  # the far tail is negligible where scipy's nct returns nan there
        far = stats.nct.cdf(-crit, df, x)
        return stats.nct.sf(crit, df, x) + (far if far == far else 0.0) - power

    return float(optimize.brentq(rejects, 0, 4 * crit + 20, xtol=1e-6))


def mde(kind: str | Shape, c: Components, d: Design, alpha: float = ALPHA, family: int = 1,
        power: float = POWER) -> Mde:
    """The MDE of one confirmatory contrast under the test analyze runs (module docstring)."""
    level = holm_first_step(alpha, family)
    vp, vs = prompt_part(kind, c, d), seed_part(kind, c, d)
    parts = [(vp, d.clusters - 1)] + ([(vs, seed_part_df(c, d))] if d.seeds >= 2 else [])
    df = satterthwaite(parts)
    se = (vp + vs) ** 0.5
    return Mde(multiplier(level, df, power) * se, se, df, level, conditional=d.seeds < 2)


def mde_by_seeds(kind: str | Shape, c: Components, d: Design, seeds: list[int], alpha: float = ALPHA,
                 family: int = 1) -> dict[int, Mde]:
    """The same contrast at other seed counts (what a second and third seed would buy)."""
    return {s: mde(kind, c, replace(d, seeds=s), alpha, family) for s in seeds}


def smallest_signflip_p(resamples: int) -> float:
    """The smallest p a Monte Carlo sign-flip test can give (one-seed inference): (0 + 1) / (R + 1)."""
    return 1.0 / (resamples + 1)
