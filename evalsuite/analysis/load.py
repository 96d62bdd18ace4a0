"""Find finished evals in a sweep folder and reduce scores to prompt-level means.

Only an eval whose completion marker exists is used; unfinished or absent ones are listed
as missing and nothing is filled in. Each prompt's value is the mean over its K samples
(and turns) first, so prompts — not samples — are the units the statistics resample.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tracecause.contracts import MODES, SCORES_FILE, Arm, SweepLayout
from tracecause.freshness import eval_weights_hash, stale_eval
from tracecause.io import is_complete, read_json, sha256_file
from tracecause.seal import SealError, verify_seal

from evalsuite.outputs import marker_path

from .spec import SweepSpec

Cond = tuple  # (model, rtype, paradigm): an arm with its training seeds pooled
SeriesKey = tuple  # (cond, mode, metric)
NEEDED_COLUMNS = ("benchmark", "axis", "prompt_id", "cluster_id", "metric", "value", "parsed")


def cond_label(cond: Cond, seeds=()) -> str:
    base = ".".join(cond)
    return f"{base}.{'+'.join(f's{s}' for s in sorted(seeds))}" if seeds else base


@dataclass(frozen=True)
class EvalInput:
    arm: Arm
    mode: str
    path: Path  # the scores file
    sha256: str
    weights_hash: str = ""  # the weights the scores were generated from ("" if not recorded)

    @property
    def key(self) -> str:
        return f"{self.arm.id}/{self.mode}"


@dataclass
class Inventory:
    """What the sweep holds: usable evals and everything expected but not (yet) there."""

    evals: list[EvalInput]
    expected_arms: list[str]
    expected_source: str
    missing_arms: list[str] = field(default_factory=list)     # expected, no finished eval at all
    unfinished_evals: list[str] = field(default_factory=list)  # folder there, no completion marker
    missing_evals: list[str] = field(default_factory=list)     # arm has evals, this mode absent
    missing_cells: list[str] = field(default_factory=list)     # arm/mode/benchmark expected, no scores
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "expected_arms_source": self.expected_source,
            "expected_arms": self.expected_arms,
            "missing_arms": self.missing_arms,
            "unfinished_evals": self.unfinished_evals,
            "missing_evals": self.missing_evals,
            "missing_cells": self.missing_cells,
            "used_evals": [e.key for e in self.evals],
            "weights_hashes": {e.key: e.weights_hash for e in self.evals},
            "notes": self.notes,
        }


def discover(root: str | Path, spec: SweepSpec) -> Inventory:
    layout = SweepLayout(Path(root))
    eval_root = layout.root / "eval"
    found: dict[str, Arm] = {}
    evals, unfinished = [], []
    for arm_dir in sorted(eval_root.iterdir()) if eval_root.is_dir() else []:
        if arm_dir.name.startswith(".") or not arm_dir.is_dir():
            continue  # temporary folders of atomic writes
        try:
            arm = Arm.parse(arm_dir.name)
        except ValueError as err:
            raise ValueError(f"{arm_dir}: {err}; rename the folder or remove it from eval/") from None
        found[arm.id] = arm
        for mode in MODES:
            d = layout.eval(arm.id, mode)
            if not d.exists():
                continue
            scores = d / SCORES_FILE
            if is_complete(d) and scores.is_file():
                evals.append(EvalInput(arm, mode, scores, verified_scores_sha(d, scores), eval_weights_hash(d)))
            else:
                unfinished.append(f"{arm.id}/{mode}")
    stale = [why for e in evals if (why := stale_eval(layout, e.arm.id, e.mode))]
    if stale:
        raise ValueError("scores made from weights the arm no longer has:\n  - " + "\n  - ".join(stale))
    expected = list(spec.arms) if spec.arms else sorted(found)
    source = ("expected.json (written by launch)" if spec.expected else "sweep.yaml") if spec.arms else \
        "eval/ folders (the sweep folder has no expected.json: whatever exists is all that is known)"
    finished_arms = {e.arm.id for e in evals}
    inv = Inventory(evals, expected, source)
    inv.missing_arms = sorted(a for a in expected if a not in finished_arms)
    inv.unfinished_evals = sorted(unfinished)
    have = {e.key for e in evals}
    inv.missing_evals = sorted(f"{a}/{m}" for a in finished_arms for m in spec.modes
                               if f"{a}/{m}" not in have and f"{a}/{m}" not in unfinished)
    extra = sorted(set(found) - set(expected))
    if spec.arms and extra:
        inv.notes.append(f"evals of arms not in sweep.yaml were used too: {extra}")
    return inv


def verified_scores_sha(eval_dir: Path, scores: Path) -> str:
    """scores.parquet re-hashed against the seal the score stage recorded (simulated sweeps record none):
    a mismatch is a refusal naming the file and the expected vs found hash."""
    marker = marker_path(eval_dir, "score")
    if not marker.is_file():
        return sha256_file(scores)
    try:
        return verify_seal(scores, read_json(marker))
    except SealError as err:
        raise SealError(f"{err}; the analysis refuses it. Run this eval again: remove {eval_dir / '_COMPLETE'}, then "
                        f"`tracecause resume` (its score stage redoes the damaged file)") from None


def find_missing_cells(inv: Inventory, means: pd.DataFrame, spec: SweepSpec) -> None:
    """Every expected arm × mode × benchmark without scores (benchmarks from expected.json, else seen)."""
    benches = sorted(spec.expected.get("benchmarks") or set(means["benchmark"]))
    have = set(zip(means["input"], means["benchmark"])) if len(means) else set()
    inv.missing_cells = [f"{a}/{m}/{b}" for a in inv.expected_arms for m in spec.modes for b in benches
                         if (f"{a}/{m}", b) not in have]


def scorers_used(inv: Inventory) -> dict[str, dict[str, list[str]]]:
    """benchmark -> metric -> what produced its values (the scores' ``scorer`` column; [] if absent)."""
    out: dict[str, dict[str, set]] = {}
    for e in inv.evals:
        if "scorer" not in pq.read_schema(e.path).names:
            continue
        t = pq.read_table(e.path, columns=["benchmark", "metric", "scorer"]).to_pandas().drop_duplicates()
        for b, m, sc in t.itertuples(index=False):
            out.setdefault(str(b), {}).setdefault(str(m), set()).add(str(sc))
    return {b: {m: sorted(v) for m, v in ms.items()} for b, ms in out.items()}


def load_prompt_means(inv: Inventory) -> pd.DataFrame:
    """One row per (arm, mode, benchmark, metric, prompt): mean over parsed samples.

    A judge reply that did not parse (parsed=False) is absent, never a value: it is counted
    (n_unparsed, beside n_rows) so every effect can carry its unparsed rates. NaN with
    parsed=True means the metric does not apply to that sample (e.g. syco_flip after a wrong
    first answer): absent, not counted as a failure. A prompt with no value keeps its row (NaN).
    """
    tables = []
    for i, e in enumerate(inv.evals):
        names = pq.read_schema(e.path).names
        missing = [c for c in NEEDED_COLUMNS if c not in names]
        if missing:
            raise ValueError(f"{e.path}: missing columns {missing}; scores files must follow "
                             f"tracecause.contracts SAMPLE_ID_COLUMNS + SCORE_COLUMNS")
        t = pq.read_table(e.path, columns=list(NEEDED_COLUMNS))
        types = {"value": pa.float64(), "parsed": pa.bool_()}
        t = t.cast(pa.schema([pa.field(c, types.get(c, pa.string())) for c in NEEDED_COLUMNS]))
        tables.append(t.append_column("input", pa.array(np.full(t.num_rows, i, dtype=np.int32))))
    if not tables:
        return pd.DataFrame(columns=[*NEEDED_COLUMNS, "n_samples", "n_rows", "n_unparsed", "binary", "model", "rtype",
                                     "paradigm",
                                     "seed", "mode", "input", "sha256"])
    df = pa.concat_tables(tables).to_pandas()
    df["parsed"] = df["parsed"].fillna(True).astype(bool)
    df["value"] = df["value"].where(df["parsed"], np.nan)  # an unparsed reply is absent, never a score
    # NaN rows stay: a series whose values all do not apply (e.g. no turn-1 answer was correct) still
    # exists, so its effects are reported as not estimable instead of the metric looking undeclared.
    df["cluster_id"] = df["cluster_id"].fillna(df["prompt_id"])
    df["binary"] = df["value"].isin((0.0, 1.0)) | df["value"].isna()
    df["unparsed"] = (~df["parsed"]).astype(np.int64)
    keys = ["input", "benchmark", "axis", "metric", "prompt_id"]
    out = df.groupby(keys, sort=False, observed=True).agg(
        value=("value", "mean"), n_samples=("value", "count"), n_unparsed=("unparsed", "sum"),
        cluster_id=("cluster_id", "first"), binary=("binary", "all")).reset_index()
    out["n_rows"] = out["n_samples"] + out["n_unparsed"]  # replies judged: parsed values + failures
    idx = out["input"].to_numpy()
    for col, get in (("model", lambda e: e.arm.model), ("rtype", lambda e: e.arm.rtype),
                     ("paradigm", lambda e: e.arm.paradigm), ("seed", lambda e: e.arm.seed),
                     ("mode", lambda e: e.mode), ("sha256", lambda e: e.sha256)):
        out[col] = np.array([get(e) for e in inv.evals], dtype=object)[idx]
    out["input"] = np.array([e.key for e in inv.evals], dtype=object)[idx]
    return out


@dataclass
class Benchmark:
    """All prompt-level series of one benchmark, aligned on one prompt order."""

    name: str
    axis: str
    prompt_ids: np.ndarray
    clusters: np.ndarray  # cluster code per prompt
    n_clusters: int
    series: dict  # SeriesKey -> {seed: (P,) values, NaN where absent}
    seeds: dict   # Cond -> sorted seeds seen in this benchmark
    is_rate: dict  # metric -> all sample values were 0/1
    inputs: dict  # (cond, mode) -> {input key: sha256}
    judge_counts: dict = field(default_factory=dict)  # SeriesKey -> {seed: (unparsed replies, all replies)}

    @property
    def metrics(self) -> list[str]:
        return sorted(self.is_rate)

    def conds(self, mode: str | None = None, metric: str | None = None) -> list[Cond]:
        return sorted({k[0] for k in self.series if (mode is None or k[1] == mode) and (metric is None or k[2] == metric)})


def build_benchmarks(means: pd.DataFrame) -> dict[str, Benchmark]:
    out = {}
    for name, df in means.groupby("benchmark", sort=True):
        axes = sorted(df["axis"].astype(str).unique())
        if len(axes) > 1:
            raise ValueError(f"benchmark {name!r} has rows on several axes {axes}; one benchmark, one axis")
        clusters_of = df.groupby("prompt_id")["cluster_id"].agg(lambda s: sorted(set(s)))
        bad = clusters_of[clusters_of.map(len) > 1]
        if len(bad):
            raise ValueError(f"benchmark {name!r}: prompt {bad.index[0]!r} has several cluster ids {bad.iloc[0]} "
                             "across evals; the cluster (paraphrase group) of a prompt must be fixed")
        prompt_ids = np.array(sorted(clusters_of.index))
        cluster_names = np.array([clusters_of[p][0] for p in prompt_ids])
        codes, clusters = np.unique(cluster_names, return_inverse=True)
        # numpy gathers per series (a pandas lookup per group is the slow part at thousands of series)
        position = pd.Categorical(df["prompt_id"], categories=prompt_ids).codes
        value, unparsed, n_rows = (df[c].to_numpy(dtype=float) for c in ("value", "n_unparsed", "n_rows"))
        input_key, sha = df["input"].to_numpy(), df["sha256"].to_numpy()
        series, seeds, inputs, counts = {}, {}, {}, {}
        groups = df.groupby(["model", "rtype", "paradigm", "seed", "mode", "metric"], sort=True).indices
        for (model, rtype, paradigm, seed, mode, metric), idx in sorted(groups.items()):
            cond = (model, rtype, paradigm)
            row = np.full(len(prompt_ids), np.nan)
            row[position[idx]] = value[idx]
            series.setdefault((cond, mode, metric), {})[int(seed)] = row
            counts.setdefault((cond, mode, metric), {})[int(seed)] = (int(unparsed[idx].sum()), int(n_rows[idx].sum()))
            seeds.setdefault(cond, set()).add(int(seed))
            inputs.setdefault((cond, mode), {}).update(dict(zip(input_key[idx[:1]], sha[idx[:1]])))
        is_rate = df.groupby("metric")["binary"].all().to_dict()
        out[name] = Benchmark(name, axes[0], prompt_ids, clusters, len(codes), series,
                              {c: sorted(s) for c, s in seeds.items()}, {m: bool(v) for m, v in is_rate.items()}, inputs,
                              counts)
    return out
