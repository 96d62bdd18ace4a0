"""Crash-safe output: atomic files and directories, completion markers."""
from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from tracecause.io import (MARKER, atomic_dir, atomic_write_bytes, atomic_write_json, atomic_write_text,
                           completion_info, is_complete, mark_complete, read_json, sha256_file, sha256_text, swap_dir)


@pytest.fixture
def work(tmp_path) -> Path:
    """An empty folder (tmp_path itself holds conftest's per-test TMPDIR)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_file_writes_replace_whole_files(work):
    path = work / "sub" / "a.txt"
    atomic_write_text(path, "one ü\n")
    atomic_write_text(path, "two\n")
    assert path.read_text() == "two\n"
    atomic_write_json(work / "b.json", {"z": 1, "a": Path("/x")})
    assert (work / "b.json").read_text() == '{\n  "a": "/x",\n  "z": 1\n}\n'
    assert read_json(work / "b.json") == {"a": "/x", "z": 1}
    assert _siblings(work) == ["b.json", "sub"] and _siblings(work / "sub") == ["a.txt"]
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o666 & ~_umask()  # readable by the group like any other output, not mkstemp's 0600


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_failed_file_write_leaves_the_old_file_and_no_temp(work):
    path = work / "keep.txt"
    atomic_write_text(path, "original")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # fails mid-write
    assert path.read_text() == "original"
    assert _siblings(work) == ["keep.txt"]


def test_atomic_dir_publishes_complete_folders_only(work):
    final = work / "out"
    with atomic_dir(final, info={"rows": 3}) as tmp:
        assert tmp.parent == work and tmp.name.startswith(".out.") and not final.exists()
        (tmp / "data.jsonl").write_text("{}\n")
        assert not is_complete(tmp)
    assert is_complete(final) and (final / "data.jsonl").read_text() == "{}\n"
    info = completion_info(final)
    assert info["rows"] == 3 and isinstance(info["completed_at"], float)
    assert _siblings(work) == ["out"]
    assert stat.S_IMODE(final.stat().st_mode) == 0o777 & ~_umask()


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_dir_leaves_nothing_on_exception(work, error):
    with pytest.raises(error):
        with atomic_dir(work / "out") as tmp:
            (tmp / "half.jsonl").write_text("partial")
            raise error("crash")
    assert _siblings(work) == []


def test_atomic_dir_refuses_to_overwrite_before_the_body_runs(work):
    final = work / "out"
    with atomic_dir(final) as tmp:
        (tmp / "v").write_text("1")
    ran = []
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        with atomic_dir(final) as tmp:
            ran.append(tmp)
    assert ran == [] and (final / "v").read_text() == "1" and _siblings(work) == ["out"]


def test_atomic_dir_overwrite_replaces_the_old_folder(work):
    final = work / "out"
    with atomic_dir(final, info={"v": 1}) as tmp:
        (tmp / "old-only").write_text("x")
    with atomic_dir(final, info={"v": 2}, overwrite=True) as tmp:
        (tmp / "new").write_text("y")
        assert (final / "old-only").exists()  # the old output stays readable until the swap
    assert _siblings(final) == [MARKER, "new"] and completion_info(final)["v"] == 2
    assert _siblings(work) == ["out"]
    with pytest.raises(ValueError):
        with atomic_dir(final, overwrite=True):
            raise ValueError("failed rebuild")
    assert completion_info(final)["v"] == 2 and _siblings(work) == ["out"]  # old one untouched


def test_swap_dir_sets_the_old_folder_aside_under_the_callers_name_and_removes_it(work):
    # checkpoints name the set-aside folder so their rotation sweeps it after a crash mid-swap
    for version in ("1", "2"):
        tmp = work / f".tmp{version}"
        tmp.mkdir()
        (tmp / "v").write_text(version)
        swap_dir(tmp, work / "3", trash=work / ".partial-old-3.t7")
    assert (work / "3" / "v").read_text() == "2" and _siblings(work) == ["3"]


def test_marker_semantics(work):
    folder = work / "stage"
    folder.mkdir()
    (folder / "data.jsonl").write_text("{}\n")
    assert not is_complete(folder) and completion_info(folder) is None  # data without marker: not done
    mark_complete(folder, {"n": 1})
    assert is_complete(folder) and completion_info(folder)["n"] == 1
    (folder / MARKER).unlink()
    (folder / MARKER).mkdir()  # a directory named like the marker is not a marker
    assert not is_complete(folder)
    assert not is_complete(work / "missing")


def test_hashes(work):
    path = work / "blob"
    data = os.urandom(3 << 20)  # spans several read chunks
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(path, chunk=7) == hashlib.sha256(data).hexdigest()
    assert sha256_text("ü") == hashlib.sha256("ü".encode()).hexdigest()
    assert json.loads(json.dumps({"h": sha256_text("")}))["h"].startswith("e3b0c442")
