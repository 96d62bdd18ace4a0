"""Many simulated null studies in one benchmark, for checking the seed-level inference.

Each replication is one "model size" (rep0000, rep0001, ...) with the base model (one
untrained run), QA and one QTA arm per type of ``types`` (default two: 3 trained arms, as
ARMS), ``seeds`` training seeds each. There is no true effect
of any kind: every trained run shifts its arm by its own normal draw (sd ``seed_sd``).
The prompt-level means are built exactly as analysis/load.py builds them from scores files and
go through build_benchmarks, so the tests run the effect engine ``analyze`` runs.

Two scales for the prompt rates:
  - ``logit=False`` (default): additive on the rate, base_rate + cluster + prompt + seed shift +
    run × prompt noise, clipped to [0, 1] — right for mid-range rates (sd 0.03 at 12 %);
  - ``logit=True``: the same terms added on the logit of the rate, every spread and ``seed_sd`` in
    logit units — for a rare outcome, where an additive shift would push rates below 0. A seed sd of
    0.3 logits is the same relative spread as 0.03 at 12 % (0.03 / (0.12 · 0.88) ≈ 0.28): at a 1 %
    rate one sd moves an arm to about 0.74 % or 1.35 %.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit as to_logit

from .load import Benchmark, build_benchmarks

ARMS = (("none", "base"), ("none", "qa"), ("evil", "qta"), ("misleading", "qta"))


def null_replications(n_reps: int, seeds: int = 3, seed_sd: float = 0.03, base_rate: float = 0.12,
                      n_clusters: int = 16, paraphrases: int = 3, k: int = 4, interaction_sd: float = 0.02,
                      seed: int = 0, logit: bool = False, cluster_spread: float = 0.05,
                      prompt_spread: float = 0.02, types: tuple = ("evil", "misleading")) -> Benchmark:
    rng = np.random.default_rng([seed, 31])
    arms = (*ARMS[:2], *((t, "qta") for t in types))  # base, QA, one QTA arm per type
    P = n_clusters * paraphrases
    cluster = np.repeat(np.arange(n_clusters), paraphrases)
    runs = [(r, rt, pa, s) for r in range(n_reps) for rt, pa in arms for s in range(1 if pa == "base" else seeds)]
    rep = np.array([r for r, *_ in runs])
    trained = np.array([pa != "base" for _, _, pa, _ in runs])
    prompt_effect = (rng.uniform(-cluster_spread, cluster_spread, (n_reps, n_clusters))[:, cluster]
                     + rng.uniform(-prompt_spread, prompt_spread, (n_reps, P)))
    shift = np.where(trained, rng.normal(0, seed_sd, len(runs)), 0.0)  # one draw per training run
    noise = rng.normal(0, interaction_sd, (len(runs), P))
    if logit:
        p = expit(to_logit(base_rate) + prompt_effect[rep] + shift[:, None] + noise)
    else:
        p = base_rate + prompt_effect[rep] + shift[:, None] + noise
    values = rng.binomial(k, np.clip(p, 0.0, 1.0)) / k
    ids = lambda fmt: np.repeat([fmt.format(r=r, t=t, p=pa, s=s) for r, t, pa, s in runs], P)  # noqa: E731
    df = pd.DataFrame({
        "model": ids("rep{r:04d}"), "rtype": ids("{t}"), "paradigm": ids("{p}"), "seed": np.repeat([s for *_, s in runs], P),
        "mode": "think", "benchmark": "sim_null", "axis": "evil", "metric": "harmful",
        "prompt_id": np.tile([f"q{c:03d}-p{j}" for c in range(n_clusters) for j in range(paraphrases)], len(runs)),
        "cluster_id": np.tile([f"q{c:03d}" for c in cluster], len(runs)), "value": values.ravel(),
        "n_samples": k, "n_rows": k, "n_unparsed": 0, "binary": True,
        "input": ids("rep{r:04d}.{t}.{p}.s{s}/think"), "sha256": "sim"})
    return build_benchmarks(df)["sim_null"]
