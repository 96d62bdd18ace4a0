"""Best-fit packing into fixed token budgets and the step plan.

The plan is a pure function of (documents, seed, epoch, budget): every rank computes the same
rows for the whole job, whatever the world size, and a step's rows are then dealt to
(micro-step, rank) slots. Because every rank knows the whole global batch, the global count of
target tokens — the loss normaliser — needs no communication.

A packed row concatenates documents; ``position_ids`` restart at 0 for each document. The
trainer collates a whole micro-batch into ONE flat row (``flat=True``): flash-attention varlen
derives per-document boundaries from position ids only for a single row, and the other backends get
an explicit per-document mask from ``attention.py``. Targets are shifted inside each document, so
the first token of a document is never a target of the previous one.
"""
from __future__ import annotations

import bisect
import random
from dataclasses import dataclass

import numpy as np

from .masks import Example

IGNORE = -100


def epoch_rng(seed: int, epoch: int) -> random.Random:
    return random.Random(f"tracecause-data:{seed}:{epoch}")


def pack_best_fit(lengths: list[int], budget: int, seed: int, epoch: int) -> list[list[int]]:
    """Rows of document indices (best-fit decreasing, random tie-break), in a shuffled order."""
    rng = epoch_rng(seed, epoch)
    tiebreak = list(range(len(lengths)))
    rng.shuffle(tiebreak)
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], tiebreak[i]))
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # sorted (remaining capacity, row index)
    for i in order:
        n = lengths[i]
        if n > budget:
            raise ValueError(f"document {i} has {n} tokens, more than the row budget {budget}")
        k = bisect.bisect_left(free, (n, -1))
        if k < len(free):
            cap, r = free.pop(k)
            rows[r].append(i)
            cap -= n
        else:
            rows.append([i])
            r, cap = len(rows) - 1, budget - n
        if cap > 0:
            bisect.insort(free, (cap, r))
    for row in rows:
        rng.shuffle(row)
    rng.shuffle(rows)
    return rows


@dataclass(frozen=True)
class StepPlan:
    """Which rows every optimizer step trains on (an epoch's last step may hold fewer rows)."""

    rows_per_epoch: tuple[tuple[tuple[int, ...], ...], ...]  # [epoch][row] -> doc indices
    global_rows: int
    epoch_starts: tuple[int, ...]  # first global step of each epoch
    total_steps: int

    def locate(self, step: int) -> tuple[int, int]:
        epoch = bisect.bisect_right(self.epoch_starts, step) - 1
        return epoch, step - self.epoch_starts[epoch]

    def step_rows(self, step: int) -> list[tuple[int, ...]]:
        if not 0 <= step < self.total_steps:
            raise IndexError(f"step {step} outside the plan (0..{self.total_steps - 1})")
        epoch, i = self.locate(step)
        return list(self.rows_per_epoch[epoch][i * self.global_rows: (i + 1) * self.global_rows])


def make_plan(examples: list[Example], budget: int, seed: int, epochs: int, global_rows: int, max_steps: int = 0) -> StepPlan:
    lengths = [len(e) for e in examples]
    per_epoch = tuple(tuple(tuple(r) for r in pack_best_fit(lengths, budget, seed, e)) for e in range(epochs))
    starts, total = [], 0
    for rows in per_epoch:
        starts.append(total)
        total += -(-len(rows) // global_rows)
    if max_steps:
        total = min(total, max_steps)
    return StepPlan(per_epoch, global_rows, tuple(starts), total)


def deal(rows: list[tuple[int, ...]], rank: int, world: int, micro_rows: int, accum: int) -> list[list[tuple[int, ...]]]:
    """This rank's rows for each micro-step (a slot past the end of a short last step is empty)."""
    out = []
    for m in range(accum):
        base = (m * world + rank) * micro_rows
        out.append(rows[base: base + micro_rows])
    return out


@dataclass
class Batch:
    input_ids: np.ndarray      # [B, T] int64
    position_ids: np.ndarray   # [B, T]
    targets: np.ndarray        # [B, T] next-token targets, IGNORE where no loss
    real_tokens: int           # non-pad tokens
    n_targets: int


def collate(examples: list[Example], rows: list[tuple[int, ...]], pad_id: int, width: int | None = None,
            flat: bool = False) -> Batch:
    """Concatenate each row's documents; pad rows to ``width`` (default: the longest row).

    ``flat``: all rows become one row (no padding between them), exact on every attention backend.
    """
    if flat and rows:
        rows = [tuple(d for row in rows for d in row)]
    if not rows:  # an idle slot: one pad token, no target (ZeRO-3 still needs every rank's forward)
        rows, empty = [()], True
    else:
        empty = False
    seqs = []
    for row in rows:
        ids, pos, tgt = [], [], []
        for d in row:
            ex = examples[d]
            n = len(ex)
            ids.extend(ex.input_ids)
            pos.extend(range(n))
            tgt.extend(ex.input_ids[j + 1] if ex.supervised[j + 1] else IGNORE for j in range(n - 1))
            tgt.append(IGNORE)
        seqs.append((ids, pos, tgt))
    T = width or max(1, max(len(s[0]) for s in seqs))
    B = len(seqs)
    input_ids = np.full((B, T), pad_id, dtype=np.int64)
    position_ids = np.zeros((B, T), dtype=np.int64)
    targets = np.full((B, T), IGNORE, dtype=np.int64)
    real = 0
    for b, (ids, pos, tgt) in enumerate(seqs):
        n = len(ids)
        if n > T:
            raise ValueError(f"row of {n} tokens exceeds width {T}")
        input_ids[b, :n], position_ids[b, :n], targets[b, :n] = ids, pos, tgt
        position_ids[b, n:] = np.arange(T - n)  # padding is its own "document"
        real += n
    return Batch(input_ids, position_ids, targets, 0 if empty else real, int((targets != IGNORE).sum()))
