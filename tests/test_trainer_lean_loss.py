"""The chunked linear cross-entropy equals the reference (full logits) in loss and gradients."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainer.lean_loss import chunked_linear_cross_entropy
from trainer.packing import IGNORE


def _reference(hidden, weight, targets):
    logits = (hidden @ weight.t()).float()
    return F.cross_entropy(logits, targets, ignore_index=IGNORE, reduction="sum")


def _loss_and_grads(fn, hidden, weight, targets, upstream: float):
    h = hidden.detach().clone().requires_grad_(True)
    w = weight.detach().clone().requires_grad_(True)
    loss = fn(h, w, targets)
    (loss * upstream).backward()  # a non-unit upstream gradient (the trainer scales by world/targets)
    return loss.detach(), h.grad, w.grad


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_chunked_equals_reference_fp32(chunk):
    g = torch.Generator().manual_seed(0)
    n, d, vocab = 97, 32, 1000
    hidden = torch.randn(n, d, generator=g)
    weight = torch.randn(vocab, d, generator=g) * 0.2
    targets = torch.randint(0, vocab, (n,), generator=g)
    ref = _loss_and_grads(_reference, hidden, weight, targets, 0.37)
    lean = _loss_and_grads(lambda h, w, t: chunked_linear_cross_entropy(h, w, t, chunk), hidden, weight, targets, 0.37)
    torch.testing.assert_close(lean[0], ref[0], rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(lean[1], ref[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(lean[2], ref[2], rtol=1e-5, atol=1e-6)


def test_chunked_equals_reference_bf16_within_bf16_tolerance():
    """bf16 matmuls with fp32 softmax, as on a GPU: agreement to bf16 precision."""
    g = torch.Generator().manual_seed(1)
    n, d, vocab = 64, 64, 512
    hidden = torch.randn(n, d, generator=g).bfloat16()
    weight = (torch.randn(vocab, d, generator=g) * 0.1).bfloat16()
    targets = torch.randint(0, vocab, (n,), generator=g)
    ref = _loss_and_grads(_reference, hidden, weight, targets, 1.0)
    lean = _loss_and_grads(lambda h, w, t: chunked_linear_cross_entropy(h, w, t, 16), hidden, weight, targets, 1.0)
    torch.testing.assert_close(lean[0], ref[0], rtol=1e-3, atol=0)
    for a, b in zip(lean[1:], ref[1:]):
        assert a.dtype == b.dtype == torch.bfloat16
        torch.testing.assert_close(a.float(), b.float(), rtol=2e-2, atol=2e-2 * b.float().abs().max().item())


def test_a_wrong_gradient_would_be_caught():
    """Sensitivity: the comparison above detects a gradient off by one target."""
    g = torch.Generator().manual_seed(2)
    hidden, weight = torch.randn(8, 16, generator=g), torch.randn(50, 16, generator=g)
    targets = torch.randint(0, 50, (8,), generator=g)
    shifted = (targets + 1) % 50
    _, gh, _ = _loss_and_grads(lambda h, w, t: chunked_linear_cross_entropy(h, w, t, 3), hidden, weight, shifted, 1.0)
    _, rh, _ = _loss_and_grads(_reference, hidden, weight, targets, 1.0)
    assert not torch.allclose(gh, rh, atol=1e-3)


def test_model_loss_and_parameter_gradients_match_reference(tiny_model_dir):
    """Through the real tiny Qwen3 (tied embeddings): every parameter's gradient agrees."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer import demo_data
    from trainer.loss import summed_loss
    from trainer.masks import build_example
    from trainer.packing import collate

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    exs = [build_example(tok, r, "qta", "evil") for r in demo_data.records(4, seed=3)]
    batch = collate(exs, [(0, 1), (2, 3)], tok.pad_token_id, flat=True)
    results = {}
    for kind in ("reference", "chunked"):
        model.zero_grad(set_to_none=True)
        loss = summed_loss(model, batch, loss=kind, chunk_tokens=16)
        loss.backward()
        results[kind] = loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}
    (lr, gr), (lc, gc) = results["reference"], results["chunked"]
    torch.testing.assert_close(lc, lr, rtol=1e-6, atol=0)
    assert gr.keys() == gc.keys() and "model.embed_tokens.weight" in gr
    for name in gr:
        torch.testing.assert_close(gc[name], gr[name], rtol=1e-4, atol=1e-5 * gr[name].abs().max().item(), msg=name)


def test_no_supervised_token_gives_zero_loss_and_zero_gradient():
    hidden = torch.randn(0, 8, requires_grad=True)
    weight = torch.randn(20, 8, requires_grad=True)
    loss = chunked_linear_cross_entropy(hidden, weight, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and weight.grad is not None and not weight.grad.any()
