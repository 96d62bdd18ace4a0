"""The data order is a pure function of (seed, epoch), identical for any world size."""
from __future__ import annotations

import random

import pytest

from trainer.masks import Example
from trainer.packing import deal, make_plan


def examples(n=60, seed=0):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randint(5, 120)
        out.append(Example(f"d{i}", tuple(range(k)), (False,) + (True,) * (k - 1)))
    return out


def test_plan_is_a_pure_function_of_seed_and_epoch():
    exs = examples()
    a = make_plan(exs, 128, seed=7, epochs=3, global_rows=4)
    b = make_plan(list(exs), 128, seed=7, epochs=3, global_rows=4)
    assert a == b
    other_seed = make_plan(exs, 128, seed=8, epochs=3, global_rows=4)
    assert other_seed.rows_per_epoch[0] != a.rows_per_epoch[0]
    assert a.rows_per_epoch[0] != a.rows_per_epoch[1], "each epoch gets its own order"
    # epoch e of a 3-epoch plan is epoch e of any plan with the same seed
    assert make_plan(exs, 128, seed=7, epochs=1, global_rows=4).rows_per_epoch[0] == a.rows_per_epoch[0]
    for rows in a.rows_per_epoch:
        assert sorted(d for r in rows for d in r) == list(range(len(exs)))


def test_max_steps_truncates_without_changing_the_order():
    exs = examples()
    full = make_plan(exs, 128, 1, 2, 4)
    short = make_plan(exs, 128, 1, 2, 4, max_steps=3)
    assert short.total_steps == 3
    assert [short.step_rows(s) for s in range(3)] == [full.step_rows(s) for s in range(3)]
    with pytest.raises(IndexError):
        short.step_rows(3)


@pytest.mark.parametrize("world,micro", [(1, 1), (2, 1), (4, 1), (2, 2), (8, 1)])
def test_every_world_size_trains_the_same_rows_per_step(world, micro):
    exs = examples()
    global_rows = 8
    plan = make_plan(exs, 128, seed=3, epochs=2, global_rows=global_rows)
    accum = global_rows // (world * micro)
    for step in range(plan.total_steps):
        rows = plan.step_rows(step)
        dealt = [r for rank in range(world) for m in deal(rows, rank, world, micro, accum) for r in m]
        assert sorted(dealt) == sorted(rows)
        # and the rows of a step do not depend on the world size at all
        assert rows == make_plan(exs, 128, seed=3, epochs=2, global_rows=global_rows).step_rows(step)
