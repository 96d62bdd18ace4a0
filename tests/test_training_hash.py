"""The training hash (resume guard, W&B run id) covers what changes the trained weights, and only that."""
from __future__ import annotations

import dataclasses

import pytest

from tracecause.config import from_dict, to_dict
from trainer.config import LOCATION_FIELDS, NOT_IN_TRAINING_HASH, TrainConfig, training_hash

BASE = {"arm_id": "tiny.evil.qta.s0", "model": {"path": "/scratch/a/sweep/models/tiny-qwen3"},
        "data": {"path": "/scratch/a/sweep/data/dg-1a2b3c", "paradigm": "qta", "rtype": "evil"},
        "output": {"dir": "/scratch/a/sweep/train/tiny.evil.qta.s0"}}


def cfg_with(changes: dict) -> TrainConfig:
    data = to_dict(from_dict(TrainConfig, BASE))
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    return from_dict(TrainConfig, data)


def _leaves(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _choices(field: str) -> tuple:
    cls = TrainConfig
    *parents, last = field.split(".")
    for key in parents:
        cls = {f.name: f for f in dataclasses.fields(cls)}[key].default_factory
    return {f.name: f for f in dataclasses.fields(cls)}[last].metadata.get("choices", ())


def _other(field: str, value):
    """A different value of the same type that the config accepts."""
    choices = [c for c in _choices(field) if c != value]
    if choices:
        return choices[-1]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.5
    if isinstance(value, list):
        return [x / 2 for x in value]
    if isinstance(value, dict):
        return {"extra": "x.txt"}
    return value + "x"


def _excluded(field: str) -> bool:
    return any(field == e or field.startswith(e + ".") for e in NOT_IN_TRAINING_HASH)


def test_every_field_either_changes_the_hash_or_is_excluded_with_a_reason():
    base = training_hash(cfg_with({}))
    for field, value in _leaves(to_dict(cfg_with({}))):
        if field in ("data.paradigm", "data.rtype", "train.micro_batch_rows", "train.global_batch_rows"):
            continue  # cross-checked fields: covered below with valid pairs
        changed = training_hash(cfg_with({field: _other(field, value)}))
        if _excluded(field):
            assert changed == base, f"{field} is excluded from the training hash but changed it"
        else:
            assert changed != base, f"{field} changes the trained weights but not the training hash"
    assert training_hash(cfg_with({"data.paradigm": "qt"})) != base
    assert training_hash(cfg_with({"data.rtype": "misleading"})) != base
    assert training_hash(cfg_with({"train.global_batch_rows": 16})) != base


def test_threads_attention_backend_and_output_places_are_excluded():
    base = training_hash(cfg_with({}))
    same = cfg_with({"train.threads": 7, "train.attention": "eager", "output.dir": "/elsewhere/run",
                     "checkpoint.dir": "/fast/ckpt", "checkpoint.every_steps": 17, "wandb.dir": "/tmp/w",
                     "wandb.sweep_hash": "abc", "arm_id": "renamed.evil.qta.s0"})
    assert training_hash(same) == base
    assert set(NOT_IN_TRAINING_HASH) >= {"train.threads", "train.attention", "output", "checkpoint"}
    assert all(reason.strip() for reason in NOT_IN_TRAINING_HASH.values())


def test_a_moved_sweep_keeps_its_hash_but_a_different_model_or_dataset_does_not():
    base = training_hash(cfg_with({}))
    moved = cfg_with({"model.path": "/other-fs/copy/models/tiny-qwen3", "data.path": "/other-fs/copy/data/dg-1a2b3c"})
    assert training_hash(moved) == base
    assert training_hash(cfg_with({"data.path": "/scratch/a/sweep/data/dg-ffffff"})) != base
    assert training_hash(cfg_with({"model.path": "/scratch/a/sweep/models/other-model"})) != base
    hub = training_hash(cfg_with({"model.path": "Qwen/Qwen3-0.6B"}))
    assert hub != base and hub != training_hash(cfg_with({"model.path": "Qwen/Qwen3-1.7B"}))
    assert set(LOCATION_FIELDS) == {"model.path", "data.path", "data.replay_path"}
    replay = {"data.replay_path": "/scratch/a/sweep/models/world-corpus", "data.replay_fraction": 0.5}
    assert training_hash(cfg_with({**replay, "data.replay_path": "/other-fs/copy/models/world-corpus"})) == \
        training_hash(cfg_with(replay)) != base


def test_relative_and_file_paths_reduce_to_their_names(tmp_path, monkeypatch):
    from tracecause.provenance import location_free

    (tmp_path / "data" / "dg-9").mkdir(parents=True)
    (tmp_path / "data" / "dg-9" / "data.jsonl").write_text("")
    monkeypatch.chdir(tmp_path)
    assert location_free("data/dg-9") == "dg-9" == location_free(str(tmp_path / "data" / "dg-9"))
    assert location_free("data/dg-9/data.jsonl") == "dg-9/data.jsonl"
    assert location_free("Qwen/Qwen3-14B") == "Qwen/Qwen3-14B"


def test_a_renamed_config_field_fails_loudly():
    """NOT_IN_TRAINING_HASH names fields; one that no longer exists must not be silently ignored."""
    import trainer.config as tc

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(tc.NOT_IN_TRAINING_HASH, "train.no_such_field", "gone")
        with pytest.raises(KeyError):
            tc.training_hash(cfg_with({}))
    assert dataclasses.is_dataclass(TrainConfig)
