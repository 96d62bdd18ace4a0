"""A checkpoint is sealed only with every rank's files: the marker lists each rank's expected files,
sealing a folder that lacks one is refused, and verify checks against the expected list. Rotation
never sweeps a partial save of the same or a newer attempt (fencing token in its name).
Plain files named as DeepSpeed names them: no DeepSpeed start."""
from __future__ import annotations

import json

import pytest

from tracecause.io import completion_info, is_complete, mark_complete

PER_RANK = ["ds/zero_pp_rank_{r}_mp_rank_00_model_states.pt", "ds/zero_pp_rank_{r}_mp_rank_00_optim_states.pt",
            "rng_rank{r}.pt"]


def fake_save(folder, world: int, skip: str = ""):
    for r in range(world):
        for pattern in PER_RANK:
            rel = pattern.format(r=r)
            if rel != skip:
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).write_bytes(f"{rel}".encode() * 10)
    (folder / "ds" / "latest").write_text("ds")
    (folder / "trainer_state.json").write_text(json.dumps({"step": 4, "world_size": world}))


def test_a_save_missing_one_ranks_file_is_refused_and_never_marked(tmp_path):
    from trainer import checkpoint

    folder = tmp_path / ".partial-4.t1"
    fake_save(folder, 2, skip="ds/zero_pp_rank_1_mp_rank_00_optim_states.pt")
    with pytest.raises(checkpoint.IncompleteCheckpoint, match=r"missing files of 2 ranks: ds/zero_pp_rank_1_mp_rank_00_optim"):
        checkpoint.seal(folder, 4, 2)
    assert not is_complete(folder)
    (folder / "rng_rank1.pt").unlink()
    with pytest.raises(checkpoint.IncompleteCheckpoint, match="rng_rank1.pt"):
        checkpoint.seal(folder, 4, 2)


def test_the_marker_lists_every_ranks_expected_files_and_verify_checks_them(tmp_path):
    from trainer import checkpoint

    folder = tmp_path / "4"
    fake_save(folder, 2)
    checkpoint.seal(folder, 4, 2)
    info = completion_info(folder)
    want = {p.format(r=r) for r in range(2) for p in PER_RANK} | {"trainer_state.json"}
    assert set(info["expected"]) == want and info["world_size"] == 2 and want <= set(info["files"])
    assert checkpoint.damage(folder) is None
    # a marker that lists the files present but not one rank's expected file (what the old manifest did)
    del info["files"]["rng_rank1.pt"]
    mark_complete(folder, info)
    assert checkpoint.damage(folder) == "rng_rank1.pt (one rank's file) is not in the marker"


def test_rotation_sweeps_only_partials_of_older_attempts(tmp_path):
    from trainer import checkpoint

    root = tmp_path / "checkpoints"
    for name in (".partial-6", ".partial-6.t2", ".partial-8.t3", ".partial-8.t4"):
        (root / name).mkdir(parents=True)
    for step in (2, 4, 6):
        fake_save(root / str(step), 1)
        checkpoint.seal(root / str(step), step, 1)
    checkpoint._rotate(root, keep_last=2, token=3)
    assert sorted(p.name for p in root.iterdir()) == [".partial-8.t3", ".partial-8.t4", "4", "6"]
