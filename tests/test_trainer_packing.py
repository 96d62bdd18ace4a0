"""Packing: best-fit rows within budget, and packed training == unpacked training (loss and grads)."""
from __future__ import annotations

import random

import pytest
import torch

from trainer import demo_data
from trainer.loss import summed_loss
from trainer.masks import Example, build_example
from trainer.packing import IGNORE, collate, pack_best_fit


@pytest.fixture(scope="module")
def model_and_examples(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: intra-op threads fighting other work are 5x slower
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    model.config.use_cache = False
    recs = demo_data.records(10, seed=1)  # mixed paradigms in one row
    exs = [build_example(tok, r, p, "evil") for r, p in zip(recs, ["qta", "qt", "t_only", "qa", "qta"] * 2)]
    yield model, exs, tok.pad_token_id
    torch.set_num_threads(threads)


def test_best_fit_uses_every_document_once_within_budget():
    rng = random.Random(0)
    lengths = [int(rng.lognormvariate(4, 0.8)) + 1 for _ in range(300)]
    budget = max(lengths)
    rows = pack_best_fit(lengths, budget, seed=0, epoch=0)
    flat = sorted(i for r in rows for i in r)
    assert flat == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= budget for r in rows)
    fill = sum(lengths) / (len(rows) * budget)
    assert fill > 0.9, fill  # best-fit decreasing on a skewed mix
    with pytest.raises(ValueError, match="more than the row budget"):
        pack_best_fit([5, 50], 10, 0, 0)


def test_collate_restarts_positions_and_masks_first_label(model_and_examples):
    _, exs, pad = model_and_examples
    batch = collate(exs, [(0, 1, 2)], pad, width=sum(len(exs[i]) for i in (0, 1, 2)) + 5)
    pos, tgt = batch.position_ids[0], batch.targets[0]
    starts = [0, len(exs[0]), len(exs[0]) + len(exs[1])]
    for s, i in zip(starts, (0, 1, 2)):
        assert pos[s] == 0 and list(pos[s:s + len(exs[i])]) == list(range(len(exs[i])))
        # the last position of a document never predicts the next document's first token
        assert tgt[s + len(exs[i]) - 1] == IGNORE
    assert list(tgt[-5:]) == [IGNORE] * 5 and batch.real_tokens == starts[-1] + len(exs[2])
    assert batch.n_targets == sum(exs[i].n_targets for i in (0, 1, 2))


def _loss_and_grads(model, batches, n_targets, attention="sdpa"):
    model.zero_grad(set_to_none=True)
    total = sum(summed_loss(model, b, attention=attention) for b in batches) / n_targets
    total.backward()
    return total.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_packed_equals_unpacked_loss_and_gradients(model_and_examples):
    model, exs, pad = model_and_examples
    n_targets = sum(e.n_targets for e in exs)
    packed = [collate(exs, [(0, 3, 5, 1), (2, 4, 6, 7, 8, 9)], pad)]
    unpacked = [collate(exs, [(i,)], pad) for i in range(len(exs))]
    padded = [collate(exs, [(i,) for i in range(len(exs))], pad)]  # one batch padded to the longest
    lp, gp = _loss_and_grads(model, packed, n_targets)
    lu, gu = _loss_and_grads(model, unpacked, n_targets)
    lb, gb = _loss_and_grads(model, padded, n_targets)
    torch.testing.assert_close(lp, lu, rtol=1e-6, atol=0)
    torch.testing.assert_close(lb, lu, rtol=1e-6, atol=0)
    assert gp.keys() == gu.keys() and len(gp) > 0
    for name in gu:  # fp32: summation order differs between layouts
        scale = gu[name].abs().max()
        torch.testing.assert_close(gp[name], gu[name], rtol=1e-4, atol=1e-5 * scale, msg=name)
        torch.testing.assert_close(gb[name], gu[name], rtol=1e-4, atol=1e-5 * scale, msg=name)


@pytest.fixture
def backend(model_and_examples, request):
    """Switch the shared model's attention implementation for one test, then back to sdpa."""
    model = model_and_examples[0]
    model.set_attn_implementation(request.param)
    yield request.param
    model.set_attn_implementation("sdpa")


MICRO_BATCHES = [[(0, 3, 5), (1, 2)], [(4, 6, 7, 8, 9)]]  # micro_batch_rows=2, then a short last one


@pytest.mark.parametrize("backend", ["sdpa", "eager"], indirect=True)
@pytest.mark.parametrize("flat", [True, False], ids=["flattened", "rows"])
def test_multi_row_micro_batches_equal_unpacked_on_every_backend(model_and_examples, backend, flat):
    """micro_batch_rows > 1: one flattened row (what the trainer runs), or rows with per-row masks."""
    model, exs, pad = model_and_examples
    n_targets = sum(e.n_targets for e in exs)
    packed = [collate(exs, rows, pad, flat=flat) for rows in MICRO_BATCHES]
    assert packed[0].input_ids.shape[0] == (1 if flat else 2)
    unpacked = [collate(exs, [(i,)], pad) for i in range(len(exs))]
    lp, gp = _loss_and_grads(model, packed, n_targets, backend)
    lu, gu = _loss_and_grads(model, unpacked, n_targets, backend)
    torch.testing.assert_close(lp, lu, rtol=1e-6, atol=0)
    for name in gu:
        scale = gu[name].abs().max()
        torch.testing.assert_close(gp[name], gu[name], rtol=1e-4, atol=1e-5 * scale, msg=name)


@pytest.mark.parametrize("backend", ["flex_attention"], indirect=True)
def test_flex_attention_document_mask_equals_unpacked(model_and_examples, backend):
    """flex-attention's block document mask (the GPU path without flash-attn). PyTorch has no flex
    backward on CPU, so here the loss is compared; gradients are checked on sdpa/eager above."""
    model, exs, pad = model_and_examples
    rows = MICRO_BATCHES[0]
    with torch.no_grad():  # two shapes only: every new length is a flex-attention compile (~6 s here)
        packed = summed_loss(model, collate(exs, rows, pad, flat=True), attention=backend)
        one_per_row = summed_loss(model, collate(exs, [(d,) for row in rows for d in row], pad), attention=backend)
    torch.testing.assert_close(packed, one_per_row, rtol=1e-5, atol=0)  # each document alone in its row


def test_flattened_rows_without_a_document_mask_leak(model_and_examples):
    """Sensitivity: the flattened row with a plain causal mask (what flash-attention would do with
    several unflattened rows) changes the loss, so the equalities above can fail."""
    from trainer.attention import attention_mask_for

    model, exs, pad = model_and_examples
    batch = collate(exs, MICRO_BATCHES[0], pad, flat=True)
    ids, pos = torch.from_numpy(batch.input_ids), torch.from_numpy(batch.position_ids)
    with torch.no_grad():
        exact = model(input_ids=ids, position_ids=pos, attention_mask=attention_mask_for("sdpa", pos, torch.float32),
                      use_cache=False).logits
        causal_only = torch.ones(1, 1, ids.size(1), ids.size(1), dtype=torch.bool).tril()
        leaky = model(input_ids=ids, position_ids=pos, attention_mask=causal_only, use_cache=False).logits
    first = len(exs[0])
    torch.testing.assert_close(exact[:, :first], leaky[:, :first])  # the first document sees nothing before it
    assert not torch.allclose(exact[:, first:], leaky[:, first:], atol=1e-4)


def test_flash_attention_refuses_unflattened_rows():
    from trainer.attention import attention_mask_for

    pos = torch.tensor([[0, 1, 2, 0, 1], [0, 1, 0, 1, 2]])
    with pytest.raises(ValueError, match="one flattened row"):
        attention_mask_for("flash_attention_2", pos, torch.bfloat16)
    assert attention_mask_for("flash_attention_2", pos[:1], torch.bfloat16) is None


def test_cross_document_attention_would_change_the_loss(model_and_examples):
    """Sensitivity check: the equality above fails if documents could see each other."""
    model, exs, pad = model_and_examples
    batch = collate(exs, [(0, 3, 5, 1)], pad)
    leaky = collate(exs, [(0, 3, 5, 1)], pad)
    leaky.position_ids[0] = range(leaky.position_ids.shape[1])  # one long document
    with torch.no_grad():
        assert not torch.allclose(summed_loss(model, batch), summed_loss(model, leaky))


def test_empty_slot_contributes_nothing(model_and_examples):
    model, exs, pad = model_and_examples
    batch = collate(exs, [], pad)
    assert batch.n_targets == 0 and batch.real_tokens == 0
    with torch.no_grad():
        assert summed_loss(model, batch).item() == 0.0


def test_truncated_example_keeps_mask_alignment():
    ex = Example("x", (1, 2, 3, 4, 5), (False, False, True, True, True))
    short = Example(ex.id, ex.input_ids[:4], ex.supervised[:4])
    assert short.n_targets == 2
