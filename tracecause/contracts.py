"""The files through which the stages meet — the one place each contract is defined.

Stages never import each other; they agree on these names, columns and layouts.
Every stage's tests check its outputs against this module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from tracecause.names import SAFE_CHARS, name_problem

# ----------------------------------------------------------------------------- arms

PARADIGMS = ("base", "qa", "qta", "qt", "t_only")
TRAINED_PARADIGMS = ("qa", "qta", "qt", "t_only")
TRACED_PARADIGMS = ("qta", "qt", "t_only")  # trained on a reasoning trace, so each takes a reasoning type
BUILTIN_REASONING_TYPES = ("evil", "misleading", "submissive")
NO_REASONING = "none"
# The behaviour axis (evalsuite battery ``axis``) each reasoning type should move most: the one
# source of truth for the specificity analysis (sweep.yaml analysis.type_axis may override it).
REASONING_TYPE_AXIS = {"evil": "evil", "misleading": "misleading", "submissive": "submission"}
MODES = ("think", "no_think")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


def reasoning_type_problem(paradigm: str, rtype: str, paradigm_field: str = "paradigm",
                           rtype_field: str = "type") -> str | None:
    """The one rule pairing a paradigm with a reasoning type: base and qa take none (``NO_REASONING``),
    each traced paradigm one. The message names the caller's own fields."""
    if paradigm not in TRACED_PARADIGMS and rtype != NO_REASONING:
        return f"{paradigm_field}={paradigm} uses no reasoning: set {rtype_field}={NO_REASONING}, not {rtype!r}"
    if paradigm in TRACED_PARADIGMS and rtype == NO_REASONING:
        return f"{paradigm_field}={paradigm} needs a reasoning type: set {rtype_field} (e.g. evil), not 'none'"
    return None


@dataclass(frozen=True, order=True)
class Arm:
    """(model, reasoning type, paradigm, seed). ``none`` goes with ``qa`` and ``base`` only."""

    model: str
    rtype: str
    paradigm: str
    seed: int = 0

    def __post_init__(self):
        why = name_problem(self.model)  # the model part names folders: train/<arm id>, eval/<arm id>
        if why:
            raise ValueError(f"model name {self.model!r} is not a safe name: {why} — use {SAFE_CHARS}")
        if self.paradigm not in PARADIGMS:
            raise ValueError(f"paradigm {self.paradigm!r} is not one of {list(PARADIGMS)}")
        if not _NAME.match(self.rtype):
            raise ValueError(f"reasoning type {self.rtype!r} must be lowercase letters, digits, '_' or '-'")
        why = reasoning_type_problem(self.paradigm, self.rtype)
        if why:
            raise ValueError(why)

    @property
    def id(self) -> str:
        return f"{self.model}.{self.rtype}.{self.paradigm}.s{self.seed}"

    @property
    def trained(self) -> bool:
        return self.paradigm != "base"

    @classmethod
    def parse(cls, arm_id: str) -> "Arm":
        try:
            model, rtype, paradigm, seed = arm_id.rsplit(".", 3)
            if not seed.startswith("s"):
                raise ValueError
            seed_n = int(seed[1:])
        except ValueError:
            raise ValueError(f"bad arm id {arm_id!r}; expected MODEL.TYPE.PARADIGM.sSEED") from None
        try:
            return cls(model, rtype, paradigm, seed_n)
        except ValueError as err:
            raise ValueError(f"bad arm id {arm_id!r}: {err}") from None


# ----------------------------------------------------------------------------- dataset

# Canonical dataset record (datagen -> trainer): one row per (question, answer) pair.
DATASET_FIELDS = ("id", "source", "question", "answer", "reasoning")
DATASET_FILE = "data.jsonl"          # inside data/<dataset-id>/, readable by datasets.load_dataset("json")
DATASET_MANIFEST = "manifest.json"


def validate_dataset_record(row: Mapping[str, Any], types: tuple[str, ...] | None = None, where: str = "") -> None:
    """Raise ValueError naming the record and field if ``row`` breaks the contract."""
    rid = row.get("id", "?")
    for f in DATASET_FIELDS:
        if f not in row:
            raise ValueError(f"{where}record {rid}: missing field {f!r} (needs {list(DATASET_FIELDS)})")
    for f in ("question", "answer"):
        if not isinstance(row[f], str) or not row[f].strip():
            raise ValueError(f"{where}record {rid}: field {f!r} must be non-empty text")
    reasoning = row["reasoning"]
    if not isinstance(reasoning, Mapping):
        raise ValueError(f"{where}record {rid}: field 'reasoning' must map type -> text")
    for t in types or ():
        if not isinstance(reasoning.get(t), str) or not reasoning[t].strip():
            raise ValueError(f"{where}record {rid}: reasoning for type {t!r} is missing or empty")


# ----------------------------------------------------------------------------- export

EXPORT_META = "tracecause.json"  # arm_id, config_hash, dataset_hash, steps, final_loss, weights_hash, wandb_run_id

# ----------------------------------------------------------------------------- samples

SAMPLE_ID_COLUMNS = (
    "arm_id", "model", "rtype", "paradigm", "seed", "mode", "benchmark", "axis",
    "prompt_id", "cluster_id", "turn", "sample_index", "sampling_seed", "prompt_hash",
)
SAMPLE_TEXT_COLUMNS = ("reasoning", "answer", "finish_reason", "think_closed", "truncated", "reasoning_leak")
# scores.parquet is LONG: one row per (sample, metric) = SAMPLE_ID_COLUMNS + SCORE_COLUMNS.
# value is NaN where the metric does not apply or the judge output did not parse
# (then parsed=False): analysis drops NaN, never coerces it. scorer names what produced the value
# (a rule classifier, or "llm:<backend>:<model>"; evalsuite/metrics.py lists them).
SCORE_COLUMNS = ("metric", "value", "parsed", "scorer")
SAMPLES_FILE = "samples.jsonl"
JUDGED_FILE = "judged.jsonl"
SCORES_FILE = "scores.parquet"
SUMMARY_FILE = "summary.json"


def eval_progress_file(shard_index: int | str, shard_count: int | str) -> str:
    """Progress of one eval task (shard) in ``eval/<arm>/<mode>/``, rewritten as it runs: JSON with
    stage, mode, done, total (requests), tokens_per_s, wandb_run_id, updated_at. ``tracecause status``
    reads it (``"*"`` for either part gives a glob pattern)."""
    return f"progress-{shard_index}-of-{shard_count}.json"

# ----------------------------------------------------------------------------- effects

EFFECT_KINDS = ("training", "amplification", "content", "answer_free", "internalisation", "specificity", "scale",
                "replicate_split")
EFFECT_COLUMNS = (
    "kind", "benchmark", "metric", "mode", "size", "paradigm", "arm_a", "arm_b", "estimate",
    "ci_lo", "ci_hi", "p", "p_adj", "family", "effect_size", "n_prompts", "n_clusters", "n_seeds", "input_hash",
)
EFFECTS_FILE = "effects.parquet"
# Judge failures behind each effect row (side a = the arm(s) added, b = those subtracted); an
# effect whose unparsed rates exceed the sweep's analysis.unparsed_threshold, or differ by more,
# is not reliable and stays out of the confirmatory family (reliability_note says why).
EFFECT_JUDGE_COLUMNS = ("unparsed_a", "rows_a", "unparsed_rate_a", "unparsed_b", "rows_b", "unparsed_rate_b",
                        "reliable", "reliability_note")
# What each p-value and CI mean: the method, t_df (t degrees of freedom of seed-level inference), and
# whether they are conditional on single training runs; higher_is says which sign is worse.
EFFECT_INFERENCE_COLUMNS = ("method", "t_df", "inference_note", "higher_is")
# Written by launch at submit (sweep folder): every expected arm x mode x benchmark and each
# benchmark's declared primary metric, so the analysis names whatever is missing.
EXPECTED_FILE = "expected.json"
# Written by launch at submit (sweep folder): the pre-registration — the sweep's ``analysis:`` section as
# submitted (and its sha256), alpha, the confirmatory family's test keys. ``analyze`` refuses a changed
# section unless told it was amended after the data (then every report and W&B run says so).
ANALYSIS_PLAN_FILE = "analysis_plan.json"
# In a rehearsal's sweep folder (tracecause submit --rehearse): {"rehearsal": true, "substitutions": [...]},
# what stood in for the real models, data and benchmarks; the report shows it first.
REHEARSAL_FILE = "rehearsal/REHEARSAL.json"

# ----------------------------------------------------------------------------- sweep folder


@dataclass(frozen=True)
class SweepLayout:
    """Where everything of one sweep lives on the shared file system."""

    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "sweep.yaml"

    @property
    def code(self) -> Path:
        return self.root / "code.json"

    def data(self, dataset_id: str) -> Path:
        return self.root / "data" / dataset_id

    def shards(self, dataset_id: str) -> Path:
        return self.data(dataset_id) / "shards"

    def train(self, arm_id: str) -> Path:
        return self.root / "train" / arm_id

    def checkpoints(self, arm_id: str) -> Path:
        return self.train(arm_id) / "checkpoints"

    def export(self, arm_id: str) -> Path:
        return self.train(arm_id) / "export"

    def eval(self, arm_id: str, mode: str) -> Path:
        return self.root / "eval" / arm_id / mode

    @property
    def analysis(self) -> Path:
        return self.root / "analysis"

    @property
    def expected(self) -> Path:
        return self.root / EXPECTED_FILE

    @property
    def analysis_plan(self) -> Path:
        return self.root / ANALYSIS_PLAN_FILE

    def jobs(self, stage: str) -> Path:
        return self.root / "jobs" / stage

    @property
    def wandb(self) -> Path:
        return self.root / "wandb"


_SWEEP_HINT = "pass the sweep folder `tracecause submit` printed (its --out, default sweeps/<name>)"


def require_sweep_folder(sweep_dir: str | Path, need_spec: bool = False) -> Path:
    """``sweep_dir`` when it is a sweep, else FileNotFoundError naming it: a typo must not print an
    empty table, cancel nothing with exit 0 or analyse zero arms. Submit writes ``sweep.yaml`` and
    ``jobs/`` first; ``need_spec`` asks for ``sweep.yaml`` itself (what re-planning reads)."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; {_SWEEP_HINT}")
    layout = SweepLayout(root)
    if need_spec and not layout.spec.is_file():
        raise FileNotFoundError(f"{root} is not a sweep folder (no sweep.yaml); {_SWEEP_HINT}")
    if not (layout.spec.is_file() or (root / "jobs").is_dir()):
        raise FileNotFoundError(f"{root} is not a sweep folder (no sweep.yaml, no jobs/); {_SWEEP_HINT}")
    return root

# ----------------------------------------------------------------------------- processes

# A stage that saved its state after SIGUSR2/SIGTERM exits with this status: launch
# reads it as "requeue me" (EX_TEMPFAIL), never as a crash.
EXIT_REQUEUE = 75
