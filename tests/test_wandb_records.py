"""Read back real wandb 0.31 offline runs, including a run id reused by two processes."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import need_module
from tracecause import wandb_records as wr

# One process = one offline fragment. Big strings make records span 32 KiB blocks.
FRAGMENT = textwrap.dedent("""
    import sys, wandb
    out, run_id, part = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run = wandb.init(mode="offline", dir=out, id=run_id, project="tracecause-test", group="grp-" + run_id,
                     job_type="train" if part == 0 else "resume", name="arm-" + run_id,
                     config={"lr": 0.1, "model": {"name": "tiny", "layers": 4}, "part": part})
    for i in range(3):
        run.log({"loss": 10 * part + i, "gen": {"tokens": i * 2}, "blob": "ab" * (30000 * (i + 1)) if part == 0 else "",
                 "ok": i % 2 == 0})
    run.config.update({"late_key": part})
    run.summary["best"] = 100 + part
    run.finish()
""")


def _fragment(out, run_id, part, env):
    return subprocess.Popen([sys.executable, "-c", FRAGMENT, str(out), run_id, str(part)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    need_module("wandb")
    out = tmp_path_factory.mktemp("wandb_runs")
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", TMPDIR=str(out))
    procs = [_fragment(out, "run1", 0, env)]
    assert procs[0].wait(120) == 0, procs[0].stdout.read()
    procs = [_fragment(out, "run1", 1, env), _fragment(out, "other", 0, env)]  # same id, new process
    for p in procs:
        assert p.wait(120) == 0, p.stdout.read()
    return out


def test_fragments_of_one_run_are_found_in_start_order(runs_dir):
    files = wr.find_run_files(runs_dir, "run1")
    assert len(files) == 2 and len({f.parent for f in files}) == 2
    assert [wr.config(f)["part"] for f in files] == [0, 1]
    assert len(wr.find_run_files(runs_dir)) == 3
    assert wr.find_run_files(runs_dir / "wandb", "other") == wr.find_run_files(runs_dir, "other")
    with pytest.raises(FileNotFoundError, match="run id 'nope'"):
        wr.history(runs_dir, "nope")


def test_history_concatenates_fragments(runs_dir):
    rows = wr.history(runs_dir, "run1")
    assert [r["loss"] for r in rows] == [0, 1, 2, 10, 11, 12]
    assert [r["gen.tokens"] for r in rows] == [0, 2, 4, 0, 2, 4]
    assert [r["ok"] for r in rows] == [True, False, True] * 2
    assert [len(r["blob"]) for r in rows] == [60000, 120000, 180000, 0, 0, 0]
    assert [r["_step"] for r in rows] == [0, 1, 2, 0, 1, 2]  # offline resume restarts _step
    assert [r["loss"] for r in wr.history(wr.find_run_files(runs_dir, "run1")[1])] == [10, 11, 12]


def test_config_summary_and_identity(runs_dir):
    assert wr.config(runs_dir, "run1") == {"lr": 0.1, "model": {"name": "tiny", "layers": 4}, "part": 1, "late_key": 1}
    assert "_wandb" in wr.config(runs_dir, "run1", keep_internal=True)
    summary = wr.summary(runs_dir, "run1")
    assert summary["best"] == 101 and summary["loss"] == 12 and summary["gen"] == {"tokens": 4}
    assert "_step" in wr.summary(runs_dir, "run1", keep_internal=True)
    info = wr.run_info(runs_dir, "run1")
    assert (info["id"], info["group"], info["job_type"], info["name"], info["project"]) == \
        ("run1", "grp-run1", "train", "arm-run1", "tracecause-test")
    assert info["exited"] == [0, 0] and len(info["files"]) == 2
    with pytest.raises(wr.WandbFileError, match="several run ids"):
        wr.run_info(runs_dir)


def test_large_records_are_split_across_blocks(runs_dir):
    path = wr.find_run_files(runs_dir, "run1")[0]
    kinds = {kind for _, kind, _ in wr._chunks(path.read_bytes(), path)}
    assert {wr.FIRST, wr.MIDDLE, wr.LAST} <= kinds
    assert path.stat().st_size > 4 * wr.BLOCK_SIZE


def test_torn_tail_reads_as_a_prefix(runs_dir, tmp_path):
    """A writer killed mid-record leaves a torn last chunk: everything before it still reads."""
    src = wr.find_run_files(runs_dir, "run1")[0]
    full = [r.num for r in wr.read_records(src)]
    data = src.read_bytes()
    offsets = [pos for pos, _, _ in wr._chunks(data, src)]
    torn = tmp_path / "torn.wandb"
    for cut in (offsets[len(offsets) // 2] + wr.CHUNK.size + 3, wr.BLOCK_SIZE + 100):
        torn.write_bytes(data[:cut])
        got = [r.num for r in wr.read_records(torn)]
        assert 0 < len(got) < len(full) and got == full[:len(got)]
    torn.write_bytes(data[:wr.HEADER.size])  # died before its first flush
    assert list(wr.read_records(torn)) == []


def test_corruption_is_reported_with_the_offset(runs_dir, tmp_path):
    src = wr.find_run_files(runs_dir, "other")[0]
    data = bytearray(src.read_bytes())
    pos = [p for p, _, _ in wr._chunks(bytes(data), src)][2]
    data[pos + wr.CHUNK.size + 1] ^= 0xFF
    bad = tmp_path / "bad.wandb"
    bad.write_bytes(bytes(data))
    with pytest.raises(wr.WandbFileError, match=f"CRC mismatch in chunk at byte {pos}"):
        list(wr.read_records(bad))
    bad.write_bytes(b"LEVELDB" + bytes(data[7:]))
    with pytest.raises(wr.WandbFileError, match="bad header"):
        list(wr.read_records(bad))


def test_single_offline_run_folder_is_accepted(runs_dir, tmp_path):
    folder = wr.find_run_files(runs_dir, "other")[0].parent
    copy = shutil.copytree(folder, tmp_path / folder.name)
    assert wr.run_info(copy)["id"] == "other"
    assert [r["loss"] for r in wr.history(copy)] == [0, 1, 2]


def test_nested_layouts_and_a_fragment_that_died_before_flushing(runs_dir, tmp_path):
    """A sweep keeps runs under each stage's folder; a killed process can leave a header-only file."""
    src = wr.find_run_files(runs_dir, "other")[0].parent
    shutil.copytree(src, tmp_path / "sweep" / "arms" / "a1" / "wandb" / src.name)
    dead = tmp_path / "sweep" / "eval" / "wandb" / "offline-run-20990101_000000-dead1"
    dead.mkdir(parents=True)
    (dead / "run-dead1.wandb").write_bytes(wr.HEADER.pack(wr.MAGIC, 0xBEE1, 0))
    files = wr.find_run_files(tmp_path / "sweep")
    assert sorted(f.parent.name for f in files) == sorted([src.name, dead.name])
    info = wr.run_info(tmp_path / "sweep", "dead1")
    assert (info["id"], info["job_type"], info["exited"]) == ("dead1", "", [None])
    assert wr.history(tmp_path / "sweep", "dead1") == []
    assert wr.run_info(tmp_path / "sweep", "other")["exited"] == [0]
