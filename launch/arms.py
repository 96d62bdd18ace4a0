"""Sweep spec -> arms: base per model, QA per seed, traced paradigms x types x seeds.

Each arm carries its fully resolved stage inputs (YAML layers + overrides) and the hash of
them, so a changed training knob is a different arm folder hash, never a silent reuse.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tracecause.config import config_hash
from tracecause.contracts import NO_REASONING, TRACED_PARADIGMS, Arm, SweepLayout

from launch.spec import SweepSpec


@dataclass(frozen=True)
class ResolvedArm:
    arm: Arm
    train_yaml: tuple[str, ...] = ()      # trainer config layers (empty for base arms)
    train_overrides: tuple[str, ...] = ()
    model_path: str = ""                  # what eval loads: the export folder, or the base model
    config_hash: str = ""
    # The hub revision eval must pass with model_path (base arms of a hub model); trained arms load
    # their own export folder, whose base revision reached the trainer as model.revision.
    model_revision: str = ""

    @property
    def id(self) -> str:
        return self.arm.id


def expand_arms(spec: SweepSpec) -> list[Arm]:
    """Every arm of the sweep in a stable order (model, then base, qa, traced)."""
    arms: list[Arm] = []
    for model in spec.models:
        if "base" in spec.paradigms:
            arms.append(Arm(model, NO_REASONING, "base", 0))
        if "qa" in spec.paradigms:
            arms.extend(Arm(model, NO_REASONING, "qa", s) for s in spec.seeds)
        for paradigm in spec.paradigms:
            if paradigm not in TRACED_PARADIGMS:
                continue
            for rtype in spec.types_of(paradigm):
                arms.extend(Arm(model, rtype, paradigm, s) for s in spec.seeds)
    return arms


def fill(text: str, sweep_dir: Path) -> str:
    return text.replace("{sweep}", str(sweep_dir))


def resolve_arms(spec: SweepSpec, sweep_dir: Path, dataset_dir: Path, model_paths: dict[str, str],
                 trainer_yaml: Path, wandb_group: str, revisions: dict[str, str] | None = None,
                 sweep_hash: str = "") -> list[ResolvedArm]:
    """Attach each arm's trainer layers/overrides. ``model_paths``: model name -> base weights;
    ``revisions``: model name -> pinned hub revision, passed with the weights to every stage."""
    revisions = revisions or {}
    train_root = str(SweepLayout(Path(sweep_dir)).root / "train")  # strings: pathlib is slow x thousands
    out = []
    for arm in expand_arms(spec):
        if not arm.trained:
            rev = revisions.get(arm.model, "")
            payload = {"arm": arm.id, "model": model_paths[arm.model], **({"revision": rev} if rev else {})}
            out.append(ResolvedArm(arm, model_path=model_paths[arm.model], config_hash=config_hash(payload),
                                   model_revision=rev))
            continue
        overrides = [
            f"arm_id={arm.id}",
            f"model.path={model_paths[arm.model]}",
            *([f"model.revision={revisions[arm.model]}"] if revisions.get(arm.model) else []),
            f"data.path={dataset_dir}",
            f"data.rtype={arm.rtype}",
            f"data.paradigm={arm.paradigm}",
            f"train.seed={arm.seed}",
            f"output.dir={train_root}/{arm.id}",
            f"wandb.enabled={'true' if spec.wandb.enabled and spec.wandb.mode != 'disabled' else 'false'}",
            f"wandb.project={spec.wandb.project}",
            f"wandb.group={wandb_group}",
            *([f"wandb.sweep_hash={sweep_hash}"] if sweep_hash else []),
            f"wandb.mode={spec.wandb.mode}",
            *(fill(o, sweep_dir) for o in spec.train.overrides),
            *(fill(o, sweep_dir) for o in spec.train.per_model.get(arm.model, [])),
        ]
        payload = {"yaml": str(trainer_yaml), "overrides": overrides}
        out.append(ResolvedArm(arm, (str(trainer_yaml),), tuple(overrides),
                               model_path=f"{train_root}/{arm.id}/export", config_hash=config_hash(payload)))
    return out


def count_arms(spec: SweepSpec) -> dict[str, int]:
    """Arms per paradigm (the paper.yaml test checks the sweep's shape with it)."""
    counts: dict[str, int] = {}
    for arm in expand_arms(spec):
        counts[arm.paradigm] = counts.get(arm.paradigm, 0) + 1
    return counts
