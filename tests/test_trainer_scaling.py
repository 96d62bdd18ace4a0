"""The 2-rank, 2-micro-step ZeRO-3 step computes the loss and gradient of the WHOLE global batch,
normalised by its target-token count: step 1's loss and (pre-clipping) grad norm equal a plain
single-process computation of the same rows with no DeepSpeed."""
from __future__ import annotations

import json

import pytest
import torch

pytestmark = [pytest.mark.deepspeed, pytest.mark.slow]


def test_first_step_matches_single_process_reference(trainer_reference_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tracecause.config import read_resolved
    from trainer.config import TrainConfig
    from trainer.data import prepare
    from trainer.loss import summed_loss
    from trainer.packing import collate, make_plan

    cfg = read_resolved(TrainConfig, trainer_reference_run)
    tok = AutoTokenizer.from_pretrained(cfg.model.path)
    data = prepare(cfg.data, tok)
    plan = make_plan(data.examples, cfg.data.max_tokens, cfg.train.seed, cfg.train.epochs,
                     cfg.train.global_batch_rows, cfg.train.max_steps)
    rows = plan.step_rows(0)
    assert len(rows) == 4  # dealt as 2 ranks x 2 accumulation micro-steps in the run
    n_targets = sum(data.examples[d].n_targets for r in rows for d in r)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = AutoModelForCausalLM.from_pretrained(cfg.model.path, dtype=torch.float32, attn_implementation="sdpa")
        loss = sum(summed_loss(model, collate(data.examples, [r], tok.pad_token_id)) for r in rows) / n_targets
        loss.backward()
    finally:
        torch.set_num_threads(threads)
    grad_norm = torch.sqrt(sum(p.grad.double().pow(2).sum() for p in model.parameters() if p.grad is not None))
    first = json.loads((trainer_reference_run / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 1 and first["target_tokens"] == n_targets
    assert first["loss"] == pytest.approx(loss.item(), rel=1e-5)
    # a per-rank or per-micro-batch mean would be off by a factor of 2 or 4 here
    assert first["grad_norm"] == pytest.approx(grad_norm.item(), rel=1e-4)
