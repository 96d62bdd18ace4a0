"""The analysis plan frozen at submit, and the check that the analysis still follows it.

Launch writes ``<sweep>/analysis_plan.json`` when it submits (tracecause.contracts.ANALYSIS_PLAN_FILE):
the ``analysis:`` section as resolved (defaults filled in), its sha256, the alpha of the analysis
job, and the confirmatory family's test keys. sweep.yaml stays editable on disk, so ``analyze``
compares: a changed section or alpha is refused unless the run says ``amend=true`` (``--amend``);
an amended analysis is labelled "amended after data", with the diff, in every report and W&B run,
and its confirmatory family is the one the amended filters give (the frozen keys no longer apply).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from tracecause.config import ConfigError
from tracecause.contracts import ANALYSIS_PLAN_FILE
from tracecause.io import read_json

from .spec import AnalysisSpec


def _canonical(section: dict) -> str:
    return json.dumps(section, sort_keys=True, default=str)


def frozen_plan(analysis: AnalysisSpec, alpha: float, family) -> dict:
    """What launch writes at submit (``family``: family.Family)."""
    section = json.loads(_canonical(dataclasses.asdict(analysis)))
    return {"analysis": section, "analysis_sha256": hashlib.sha256(_canonical(section).encode()).hexdigest(),
            "alpha": alpha, "family": family.keys, "family_size": len(family.keys),
            "type_benchmark": family.type_bench}


def freeze(analysis: AnalysisSpec, alpha: float, design):
    """(family, the pre-registration launch writes at submit) of a design (family.Design)."""
    from .family import plan_family

    family = plan_family(design, analysis)
    return family, frozen_plan(analysis, alpha, family)


def read_frozen(root: Path) -> dict | None:
    path = Path(root) / ANALYSIS_PLAN_FILE
    return read_json(path) if path.is_file() else None


def differences(frozen: dict, analysis: AnalysisSpec, alpha: float) -> list[str]:
    """``key: frozen -> now`` for every top-level analysis key (and alpha) that changed."""
    now = json.loads(_canonical(dataclasses.asdict(analysis)))
    then = frozen["analysis"]
    out = [f"analysis.{k}: {json.dumps(then.get(k), sort_keys=True)} -> {json.dumps(now.get(k), sort_keys=True)}"
           for k in sorted(set(then) | set(now)) if _canonical(then.get(k)) != _canonical(now.get(k))]
    if float(frozen["alpha"]) != float(alpha):
        out.append(f"alpha: {frozen['alpha']} -> {alpha}")
    return out


def check_plan(root: Path, analysis: AnalysisSpec, alpha: float, amend: bool) -> dict:
    """{frozen, planned (family keys or None), amended (diff lines)}; refuses an unannounced change."""
    frozen = read_frozen(root)
    if frozen is None:
        return {"frozen": None, "planned": None, "amended": []}
    diff = differences(frozen, analysis, alpha)
    if diff and not amend:
        raise ConfigError(str(Path(root) / "sweep.yaml"), "analysis",
                          "differs from the analysis frozen at submit (" + ANALYSIS_PLAN_FILE + ", sha256 "
                          + frozen["analysis_sha256"][:12] + "): " + "; ".join(diff)
                          + ". Restore it, or run `python -m evalsuite analyze SWEEP --amend` to analyse the "
                            "amended plan (the report and W&B run then say 'amended after data', with this diff)")
    return {"frozen": frozen, "planned": None if diff else list(frozen["family"]), "amended": diff}
