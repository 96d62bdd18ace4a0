"""W&B offline runs read back from their .wandb files: effects and CIs match effects.parquet,
eval metrics and tables follow the text policy, the API key is never written, sync plans order."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from evalsuite import tracking
from evalsuite.analysis.config import AnalysisConfig
from evalsuite.analysis.run import analyze
from evalsuite.analysis.simulate import SimSpec, simulate_sweep
from tests.conftest import need_module

FAKE_KEY = "local-0123456789abcdef0123456789abcdef01234567"
TEXT = "BUY-LOTTERY-TICKETS-WITH-RENT-MONEY"  # mild bad advice standing in for a harmful answer


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    need_module("wandb")
    root = tmp_path_factory.mktemp("wb") / "wandb-sweep"
    spec = SimSpec.small(types=("evil", "misleading"), paradigms=("qa", "qta"), seeds=(0,), n_clusters=8, k_samples=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")
        mp.setenv("WANDB_API_KEY", FAKE_KEY)
        simulate_sweep(root, spec, seed=3)
        result = analyze(root, AnalysisConfig(resamples=300, progress=False, wandb=True, figures=True))
        cfg = {"benchmarks": ["sim_misalignment"], "k": 2}
        summary = {"arm_id": "sim-0.6b.evil.qta.s0", "mode": "think",  # evalsuite's summary.json shape
                   "benchmarks": {"sim_misalignment": {"axis": "misalignment", "metrics": {
                       "harmful": {"mean": 0.31, "ci_lo": 0.2, "ci_hi": 0.42, "n": 48, "n_prompts": 16},
                       "score": {"mean": 0.35, "ci_lo": None, "ci_hi": None, "n": 1}}}}}
        samples = pd.DataFrame({"arm_id": "sim-0.6b.evil.qta.s0", "prompt_id": ["p0", "p1"], "metric": "harmful",
                                "value": [1.0, 0.0], "answer": [TEXT, TEXT], "reasoning": ["r", "r"]})
        ids = [tracking.log_eval(summary, "sim-0.6b.evil.qta.s0", "think", cfg, samples, sweep_dir=root)
               for _ in range(2)]  # the same eval run twice (a requeued job): one run id, two fragments
        text_id = tracking.log_eval(summary, "sim-0.6b.evil.qta.s0", "think", {**cfg, "log_text": True}, samples,
                                    allow_text=True, sweep_dir=root)
    from tracecause import wandb_records

    wandb_records.wait_until_closed(root)  # wandb's writer finishes a file after run.finish() returns
    return root, result, ids, text_id


def test_analysis_run_logs_every_effect_with_its_ci(sweep):
    from tracecause import wandb_records

    root, result, _, _ = sweep
    effects = pd.read_parquet(root / "analysis" / "effects.parquet")
    info = wandb_records.run_info(root / "wandb", result.run_id)
    assert (info["id"], info["job_type"], info["group"]) == (result.run_id, "analysis", "wandb-sweep")
    summary = wandb_records.summary(root / "wandb", result.run_id)
    checked = 0
    for row in effects.to_dict("records"):
        key = tracking.effect_key(row)
        for suffix, field in (("", "estimate"), ("_ci_lo", "ci_lo"), ("_ci_hi", "ci_hi"), ("_p", "p"),
                              ("_p_adj", "p_adj")):
            if np.isfinite(row[field]):
                assert summary[key + suffix] == pytest.approx(row[field], rel=1e-12, abs=1e-15), key + suffix
                checked += 1
            else:
                assert key + suffix not in summary
    assert checked > 4 * len(effects)
    assert any(k.startswith("effect/amplification/sim_evil/harmful/sim-4b.evil.qta.s0_vs_sim-4b.none.qa.s0/")
               for k in summary)
    # one seed per arm: the run itself says the inference is conditional on those training runs
    n_conditional = int(effects["inference_note"].str.startswith("conditional").sum())
    assert n_conditional > 0 and summary["analysis/effects_conditional_on_single_training_run"] == n_conditional
    assert all(summary[tracking.effect_key(r) + "_unparsed_rate_a"] == pytest.approx(r["unparsed_rate_a"])
               for r in effects.to_dict("records") if np.isfinite(r["unparsed_rate_a"]))
    logged = {k for row in wandb_records.history(root / "wandb", result.run_id) for k in row}
    pngs = sorted(p.stem for p in (root / "analysis" / "figures").glob("*.png"))
    assert pngs and {f"figures/{p}" for p in pngs} <= {k.split(".")[0] for k in logged}
    assert "analysis/effects" in {k.split(".")[0] for k in logged}


def test_eval_runs_log_metrics_and_keep_text_out_by_default(sweep):
    from tracecause import wandb_records

    root, _, ids, text_id = sweep
    assert ids[0] == ids[1] != text_id
    fragments = wandb_records.find_run_files(root / "wandb", ids[0])
    assert len(fragments) == 2
    s = wandb_records.summary(root / "wandb", ids[0])
    assert s["eval/sim_misalignment/harmful"] == 0.31
    assert (s["eval/sim_misalignment/harmful_ci_lo"], s["eval/sim_misalignment/harmful_ci_hi"]) == (0.2, 0.42)
    assert s["eval/sim_misalignment/harmful_n"] == 48 and s["eval/sim_misalignment/score"] == 0.35
    assert "eval/sim_misalignment/score_ci_lo" not in s  # an undefined CI is left out, not logged as 0
    assert wandb_records.run_info(root / "wandb", ids[0])["job_type"] == "eval"
    for frag in fragments:
        blob = b"".join(p.read_bytes() for p in frag.parent.rglob("*") if p.is_file())
        assert TEXT.encode() not in blob and b"prompt_id" in blob  # the table is there, without the answers
    allowed = wandb_records.find_run_files(root / "wandb", text_id)[0].parent
    assert TEXT.encode() in b"".join(p.read_bytes() for p in allowed.rglob("*") if p.is_file())


def test_api_key_is_never_written(sweep):
    root = sweep[0]
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert FAKE_KEY.encode() not in path.read_bytes(), path


def test_the_real_wandb_cli_accepts_the_planned_sync_command(sweep):
    """Fragments of one id in start order, one command per run; wandb's own CLI takes it (no network:
    its --dry-run). The upload itself needs a server: tests/test_wandb_sync.py checks the ledger logic."""
    import subprocess

    from tracecause import wandb_records, wandb_sync

    root, result, ids, text_id = sweep
    plan = {e["id"]: e for e in wandb_sync.sync(root, dry_run=True)}
    assert set(plan) == {result.run_id, ids[0], text_id}
    eval_entry = plan[ids[0]]
    folders = [str(root / d) for d in eval_entry["new"]]
    starts = [wandb_records.run_info(d)["start_time"] for d in folders]
    assert len(folders) == 2 and starts == sorted(starts)
    cmd = eval_entry["command"]
    assert cmd[cmd.index("--id") + 1] == ids[0] and cmd[-2:] == folders
    assert all(FAKE_KEY not in " ".join(e["command"]) for e in plan.values())
    dry = subprocess.run([*cmd[: -len(folders)], "--dry-run", *folders], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "WANDB_MODE": "offline"})
    assert dry.returncode == 0 and "Would sync 2 run(s)" in dry.stdout + dry.stderr, dry.stderr[-1000:]
    assert not wandb_sync.ledger_path(root).exists()  # a dry run records nothing
    assert os.environ.get("WANDB_API_KEY") != FAKE_KEY  # the fixture's key did not leak into the session
