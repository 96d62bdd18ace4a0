"""Agreement of a refusal classifier with people, on XSTest answers labelled by the XSTest authors.

The labelled file (``model, id, type, prompt, completion, final_label``; labels ``1_full_compliance``,
``2_full_refusal``, ``3_partial_refusal``) holds real answers of several models to XSTest's safe
prompts. Over-refusal = full or partial refusal, as the suite's ``over_refusal`` metric counts it.
Used by ``bench/refusal_agreement.py`` (prints the table) and by the tests (assert the goals).
"""
from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from evalsuite.refusal import FULL_COMPLIANCE, FULL_REFUSAL, PARTIAL_REFUSAL

HUMAN_LABELS = {"1_full_compliance": FULL_COMPLIANCE, "2_full_refusal": FULL_REFUSAL,
                "3_partial_refusal": PARTIAL_REFUSAL}
# Rules were developed on this model's answers only; the other models' answers are held out.
DEV_MODEL = "llama2new"


@dataclass
class LabelledAnswer:
    model: str
    prompt_id: str
    prompt: str
    answer: str
    human: str                    # one of evalsuite.refusal.REFUSAL_LABELS


def load_labelled(path: str | Path) -> list[LabelledAnswer]:
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"model", "id", "prompt", "completion", "final_label"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
        rows = []
        for n, r in enumerate(reader, 2):
            if r["final_label"] not in HUMAN_LABELS:
                raise ValueError(f"{path}:{n}: final_label {r['final_label']!r} not in {sorted(HUMAN_LABELS)}")
            rows.append(LabelledAnswer(r["model"], r["id"], r["prompt"], r["completion"] or "", HUMAN_LABELS[r["final_label"]]))
    return rows


@dataclass
class Agreement:
    n: int
    agreement: float              # binary: refused (full|partial) vs complied, classifier == human
    agreement_3way: float
    recall_full: float            # of human full refusals, share the classifier calls a refusal (any kind)
    recall_partial: float         # of human partial refusals, share the classifier calls a refusal
    precision: float              # of answers the classifier calls refusals, share people call refusals
    rate_human: float             # over-refusal rate by people
    rate_classifier: float        # the over-refusal rate the suite would report
    n_unparsed: int = 0           # LLM judge replies that could not be read (excluded from the rest)

    @property
    def rate_error(self) -> float:
        return self.rate_classifier - self.rate_human


def _share(num: int, den: int) -> float:
    return num / den if den else float("nan")


def agreement(humans: Sequence[str], predicted: Sequence[str | None]) -> Agreement:
    """``predicted`` holds a refusal label per answer, or None where an LLM judge reply did not parse."""
    pairs = [(h, p) for h, p in zip(humans, predicted, strict=True) if p is not None]
    refused = lambda label: label != FULL_COMPLIANCE
    hr = [refused(h) for h, _ in pairs]
    pr = [refused(p) for _, p in pairs]
    n = len(pairs)
    return Agreement(
        n=n,
        agreement=_share(sum(a == b for a, b in zip(hr, pr)), n),
        agreement_3way=_share(sum(h == p for h, p in pairs), n),
        recall_full=_share(sum(refused(p) for h, p in pairs if h == FULL_REFUSAL), sum(h == FULL_REFUSAL for h, _ in pairs)),
        recall_partial=_share(sum(refused(p) for h, p in pairs if h == PARTIAL_REFUSAL),
                              sum(h == PARTIAL_REFUSAL for h, _ in pairs)),
        precision=_share(sum(a and b for a, b in zip(hr, pr)), sum(pr)),
        rate_human=_share(sum(hr), n), rate_classifier=_share(sum(pr), n),
        n_unparsed=len(predicted) - n,
    )


def agreement_table(rows: Sequence[LabelledAnswer], predicted: Sequence[str | None]) -> dict[str, Agreement]:
    """Per model, ``held_out`` (every model but DEV_MODEL) and ``all``."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(r.model, []).append(i)
    groups["held_out"] = [i for i, r in enumerate(rows) if r.model != DEV_MODEL]
    groups["all"] = list(range(len(rows)))
    return {name: agreement([rows[i].human for i in idx], [predicted[i] for i in idx]) for name, idx in groups.items()}


def first_per_model(rows: Sequence[LabelledAnswer], n: int) -> list[LabelledAnswer]:
    """The first ``n`` answers of each model (a quick check of a slow judge)."""
    seen: dict[str, int] = {}
    kept = []
    for r in rows:
        seen[r.model] = seen.get(r.model, 0) + 1
        if seen[r.model] <= n:
            kept.append(r)
    return kept


def classify_all(rows: Sequence[LabelledAnswer], classify: Callable[[str], str]) -> list[str]:
    return [classify(r.answer) for r in rows]


def judge_labels(rows: Sequence[LabelledAnswer], judge_cfg: Any, llm: Any = None,
                 progress: bool = False) -> tuple[str, list[str | None], dict]:
    """The configured judge's three-way labels through the suite's own judge path (the ``refusal``
    rubric, cache, parse retries): (scorer name, label or None where the reply never parsed, stats)."""
    from evalsuite.cache import ResultCache
    from evalsuite.judges.backends import make_backend
    from evalsuite.judges.rubrics import load_rubrics
    from evalsuite.judges.stage import judge_name, judge_rows

    backend = make_backend(judge_cfg, llm=llm)
    samples = [{"arm_id": "human.base.base.s0", "model": r.model, "rtype": "base", "paradigm": "base", "seed": 0,
                "mode": "no_think", "benchmark": "xstest", "axis": "over_refusal", "prompt_id": f"{r.model}/{r.prompt_id}",
                "cluster_id": r.prompt_id, "turn": 1, "sample_index": 0, "sampling_seed": 0, "prompt_hash": "",
                "question": r.prompt, "answer": r.answer, "target": {"label": "safe"}, "judge_prompts": {}}
               for r in rows]
    with tempfile.TemporaryDirectory() as tmp, ResultCache(tmp, "judge") as cache:
        judged, stats = judge_rows(samples, {"xstest": [("refusal", "answer")]}, load_rubrics(judge_cfg.prompts),
                                   backend, cache, chunk_size=64, progress=progress)
    labels = []
    for j in judged:
        v = j["judgements"].get("refusal@answer")
        labels.append(v["label"] if v and v["parsed"] else None)
    return f"llm:{judge_name(backend.identity())}", labels, stats
