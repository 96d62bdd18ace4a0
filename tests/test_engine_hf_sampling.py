"""The transformers engine's batched sampler: right distribution, filters respected, rows independent."""
import math

import pytest
import torch

from evalsuite.engine_hf import sample_rows

LOGITS = torch.log(torch.tensor([0.40, 0.25, 0.15, 0.10, 0.06, 0.04]))


def _draw(s: dict, n: int = 6000, start: int = 0) -> torch.Tensor:
    logits = LOGITS.repeat(n, 1)
    gens = [torch.Generator().manual_seed(start + i) for i in range(n)]
    return torch.bincount(torch.tensor(sample_rows(logits, s, gens, [False] * n, pad_id=-1)), minlength=6) / n


@pytest.mark.parametrize("s, expected", [
    ({"temperature": 1.0}, [0.40, 0.25, 0.15, 0.10, 0.06, 0.04]),
    # nucleus 0.7: the smallest prefix reaching 0.7 is {0.40, 0.25, 0.15}, renormalised
    ({"temperature": 1.0, "top_p": 0.7}, [0.40 / 0.8, 0.25 / 0.8, 0.15 / 0.8, 0, 0, 0]),
    ({"temperature": 1.0, "top_k": 2}, [0.40 / 0.65, 0.25 / 0.65, 0, 0, 0, 0]),
    # min_p 0.3 keeps tokens with p >= 0.12
    ({"temperature": 1.0, "min_p": 0.3}, [0.40 / 0.8, 0.25 / 0.8, 0.15 / 0.8, 0, 0, 0]),
])
def test_frequencies_match_the_filtered_distribution(s, expected):
    freq = _draw(s)
    for f, p in zip(freq.tolist(), expected):
        if p == 0:
            assert f == 0
        else:  # 5 binomial standard errors
            assert abs(f - p) < 5 * math.sqrt(p * (1 - p) / 6000), (freq, expected)


def test_temperature_sharpens_and_zero_is_greedy():
    assert _draw({"temperature": 0.5})[0] > 0.55  # 0.40^2 / sum p^2 = 0.59
    greedy = sample_rows(LOGITS.repeat(3, 1), {"temperature": 0.0}, [None] * 3, [False, True, False], pad_id=-1)
    assert greedy == [0, -1, 0]


def test_a_row_depends_only_on_its_own_seed_and_finished_rows_draw_nothing():
    s = {"temperature": 1.0, "top_p": 0.95}
    other = torch.log(torch.tensor([0.05, 0.05, 0.1, 0.1, 0.3, 0.4]))

    def run(logits, finished):
        gens = [torch.Generator().manual_seed(11 + i) for i in range(len(logits))]
        return [sample_rows(torch.stack(logits), s, gens, finished, pad_id=-1) for _ in range(40)]

    alone = [draws[0] for draws in run([LOGITS], [False])]
    beside = [draws[1] for draws in run([other, LOGITS], [False, False])]
    beside_finished = [draws[1] for draws in run([other, LOGITS], [True, False])]
    # row 1 of the pair uses seed 12, the lone row seed 11: same seed -> same tokens
    seeded_alone = []
    g = torch.Generator().manual_seed(12)
    for _ in range(40):
        seeded_alone.append(sample_rows(LOGITS[None], s, [g], [False], pad_id=-1)[0])
    assert beside == seeded_alone == beside_finished
    assert alone != seeded_alone  # a different seed gives different tokens
