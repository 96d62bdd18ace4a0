"""Configuration of one analysis run (CLI flags and key=value overrides land here)."""
from __future__ import annotations

from dataclasses import dataclass

from tracecause.config import bounded


@dataclass
class AnalysisConfig:
    resamples: int = bounded(10_000, ge=100, le=1_000_000, help="bootstrap resamples and sign flips per test")
    seed: int = bounded(0, ge=0, help="seed of every resampling draw (same seed, same numbers)")
    alpha: float = bounded(0.05, gt=0.0, lt=0.5, help="two-sided level: CIs are (1 - alpha)")
    wandb: bool = True  # log the analysis run (offline unless WANDB_MODE says otherwise)
    progress: bool = True  # progress bar over resamples
    figures: bool = True  # matplotlib PNGs for the report and W&B
    # analyse although sweep.yaml's analysis section (or alpha) differs from the one frozen at submit;
    # the report and W&B run then say "amended after data", with the diff (preregistration.py)
    amend: bool = False
