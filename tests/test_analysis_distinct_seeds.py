"""Seeds must differ: two seeds of one arm generated from the same weights are refused by name."""
from __future__ import annotations

import json

import pytest

from evalsuite.analysis.config import AnalysisConfig
from evalsuite.analysis.run import analyze
from evalsuite.analysis.simulate import SimSpec, simulate_sweep
from tracecause.contracts import EXPORT_META, SweepLayout
from tracecause.freshness import GENERATE_MARKER

CFG = AnalysisConfig(resamples=100, progress=False, wandb=False, figures=False)


def _same_weights(layout: SweepLayout, arm_id: str, digest: str) -> None:
    """What a trainer that ignores its seed leaves behind: the export and both evals carry one hash."""
    meta = layout.export(arm_id) / EXPORT_META
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "weights_hash": digest}))
    for mode in ("think", "no_think"):
        marker = layout.eval(arm_id, mode) / GENERATE_MARKER
        marker.write_text(json.dumps({**json.loads(marker.read_text()), "weights_hash": digest}))


def test_an_arm_whose_seeds_trained_one_model_is_refused_naming_it(tmp_path):
    spec = SimSpec.small(models=("sim-0.6b",), paradigms=("qa", "qta"), types=("evil", "misleading"),
                         n_clusters=6, k_samples=1)
    root = tmp_path / "sweep"
    simulate_sweep(root, spec)
    layout = SweepLayout(root)
    digest = "ab" * 32
    for seed in (0, 1):
        _same_weights(layout, f"sim-0.6b.evil.qta.s{seed}", digest)
    with pytest.raises(ValueError, match=r"arm sim-0\.6b\.evil\.qta \(no_think\): seeds \[0, 1\] were generated "
                                         r"from the same weights"):
        analyze(root, CFG)
    assert not layout.analysis.exists()
    # distinct hashes again: the same sweep analyses
    _same_weights(layout, "sim-0.6b.evil.qta.s1", "cd" * 32)
    assert len(analyze(root, CFG).effects) > 0


def test_a_contrast_whose_sides_never_vary_is_untestable_not_a_null_that_held(tmp_path):
    """Both arms 0 on every sample of a metric: no variance, so no p (a sign-flip p of 1 or a seed-level
    NaN would otherwise read as a quiet null); the row says why."""
    import pandas as pd

    from tracecause.contracts import SCORES_FILE

    spec = SimSpec.small(models=("sim-0.6b",), paradigms=("qa", "qta"), types=("evil", "misleading"),
                         n_clusters=6, k_samples=1)
    root = tmp_path / "sweep"
    simulate_sweep(root, spec)
    for scores in sorted(root.glob(f"eval/*/*/{SCORES_FILE}")):
        df = pd.read_parquet(scores)
        flat = (df["benchmark"] == "sim_submission") & (df["metric"] == "harmful")
        df.loc[flat, "value"] = 0.0
        df.to_parquet(scores, index=False)
    effects = analyze(root, CFG).effects
    rows = effects[(effects["benchmark"] == "sim_submission") & (effects["metric"] == "harmful")
                   & (effects["kind"] == "amplification")]
    assert len(rows) and rows["p"].isna().all() and (rows["family"] == "exploratory").all()
    assert rows["inference_note"].str.startswith("untestable: both sides constant").all()
    varied = effects[(effects["benchmark"] == "sim_evil") & (effects["kind"] == "amplification")]
    assert varied["p"].notna().all() and not varied["inference_note"].str.startswith("untestable").any()
