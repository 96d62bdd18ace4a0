"""``tracecause benchmarks fetch`` against a loopback HTTP server serving copies of the shipped schema
fixtures: pinned URLs, resume after dropped connections (HTTP Range) and after a killed fetch, a
corrupted file refused, the lock written on first fetch, loaders refusing an unlocked file."""
from __future__ import annotations

import hashlib
from http.server import BaseHTTPRequestHandler

import pytest
import yaml

from faults.loopback import LoopbackHTTPServer
from launch.cli import main
from tracecause.benchmarks import (FIXTURES_DIR, SOURCES_FILE, battery_files, fetch_command, fixture_path,
                                   missing_files, read_lock)

COMMIT = "c0ffee" + "0" * 34


class Mirror(LoopbackHTTPServer):
    """Serves ``/<repo>/<commit>/<path>``; ``drops[path] = n`` cuts the first n answers of a path
    after ``cut`` bytes; ``corrupt`` paths get one byte changed. Records (path, Range) per GET."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.drops, self.corrupt, self.cut = files, {}, set(), 100
        self.requests: list[tuple[str, str]] = []
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range", "")
                mirror.requests.append((self.path, rng))
                data = mirror.files.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path in mirror.corrupt:
                    data = data[:-2] + b"X\n"
                start = int(rng[len("bytes="):].split("-")[0]) if rng else 0
                body = data[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if mirror.drops.get(self.path, 0) > 0:
                    mirror.drops[self.path] -= 1
                    self.wfile.write(body[:mirror.cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # mid-file, Content-Length not reached
                    return
                self.wfile.write(body)

        super().__init__(Handler)

    def gets(self, path_end: str) -> list[str]:
        return [r for p, r in self.requests if p.endswith(path_end)]


@pytest.fixture
def setup(tmp_path):
    """A sources.yaml pinning every source of the default battery to COMMIT, a lock copy, a mirror."""
    src = yaml.safe_load(SOURCES_FILE.read_text())
    files = {}
    for name, s in src["sources"].items():
        s["commit"] = COMMIT
        for f in s["files"]:
            files[f"/{s['repo']}/{COMMIT}/{f}"] = (FIXTURES_DIR / name / f).read_bytes()
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump(src))
    xs = "xstest/xstest_prompts.csv"
    lock = tmp_path / "sha256.lock"  # xstest locked to the fixture's hash, the rest unset
    lock.write_text(f"# test lock\n{hashlib.sha256((FIXTURES_DIR / xs).read_bytes()).hexdigest()}  {xs}\n")
    with Mirror(files) as mirror:
        yield sources, lock, mirror, tmp_path / "bench"


def _fetch(sources, lock, mirror, dest, *extra) -> int:
    return main(["benchmarks", "fetch", "--battery", "default", "--dest", str(dest), "--mirror", mirror.base_url,
                 "--sources", str(sources), "--lock", str(lock), *extra])


def test_fetch_resumes_locks_and_is_idempotent(setup, capsys):
    sources, lock, mirror, dest = setup
    mirror.drops = {p: 2 for p in mirror.files if p.endswith("psychopathy.jsonl")}
    # A fetch killed earlier left half of one file: it continues from there.
    are_you_sure = "sycophancy-eval/datasets/are_you_sure.jsonl"
    whole = (FIXTURES_DIR / are_you_sure).read_bytes()
    (dest / are_you_sure).parent.mkdir(parents=True)
    (dest / (are_you_sure + ".part")).write_bytes(whole[:150])

    assert _fetch(sources, lock, mirror, dest, "--update-lock") == 0, capsys.readouterr()
    rels = [f.relpath for f in battery_files("default", sources, lock)]
    assert len(rels) == 9
    for rel in rels:
        assert (dest / rel).read_bytes() == (FIXTURES_DIR / rel).read_bytes(), rel
        assert not (dest / (rel + ".part")).exists()
    assert mirror.gets("/persona/psychopathy.jsonl") == ["", "bytes=100-", "bytes=200-"]  # two drops, resumed where each ended
    assert mirror.gets("/datasets/are_you_sure.jsonl") == ["bytes=150-"]
    locked = read_lock(lock)
    assert all(locked[r] == hashlib.sha256((FIXTURES_DIR / r).read_bytes()).hexdigest() for r in rels)
    assert lock.read_text().startswith("# test lock\n")
    out = capsys.readouterr().out
    assert "9 fetched" in out and "8 newly locked" in out

    mirror.requests.clear()
    assert _fetch(sources, lock, mirror, dest) == 0
    assert mirror.requests == [] and "9 already present" in capsys.readouterr().out


def test_corrupt_file_is_refused_and_nothing_kept(setup, capsys):
    sources, lock, mirror, dest = setup
    xs = "xstest/xstest_prompts.csv"
    mirror.corrupt = {p for p in mirror.files if p.endswith("/xstest_prompts.csv")}
    assert _fetch(sources, lock, mirror, dest) == 1
    err = capsys.readouterr().err
    locked = read_lock(lock)[xs]
    assert f"{xs}: sha256 " in err and f"is not the locked {locked}" in err and mirror.base_url in err
    assert not (dest / xs).exists() and not (dest / (xs + ".part")).exists()
    assert (dest / "truthfulqa/TruthfulQA.csv").is_file()  # the other files were still fetched
    mirror.corrupt = set()
    assert _fetch(sources, lock, mirror, dest) == 0  # a clean second try completes it
    assert (dest / xs).read_bytes() == (FIXTURES_DIR / xs).read_bytes()


def test_unpinned_source_and_http_errors_are_named(tmp_path, setup, capsys):
    sources, lock, mirror, dest = setup
    src = yaml.safe_load(sources.read_text())
    src["sources"]["truthfulqa"]["commit"] = ""
    sources.write_text(yaml.safe_dump(src))
    del mirror.files[next(p for p in mirror.files if p.endswith("first_plot_questions.yaml"))]  # a 404
    assert _fetch(sources, lock, mirror, dest) == 1
    err = capsys.readouterr().err
    assert "truthfulqa/TruthfulQA.csv: source 'truthfulqa' (sylinrl/TruthfulQA) has no pinned commit" in err
    assert "sources.truthfulqa.commit" in err
    assert "first_plot_questions.yaml:" in err and "answered 404" in err
    src["sources"]["xstest"]["commit"] = "main"
    sources.write_text(yaml.safe_dump(src))
    with pytest.raises(Exception, match="source 'xstest'.*commit.*'main' is not a 40-hex commit"):
        battery_files("default", sources, lock)


def test_plan_helpers_and_loader_lock_check(tmp_path, monkeypatch):
    """What plan prints (missing files + the one fetch command), fixtures for rehearsal, and the loader's
    refusal of a file under $TRACECAUSE_BENCHMARKS whose sha256 is not the repository's lock."""
    from evalsuite.battery import load_battery
    from evalsuite.loaders import LoaderError, load_items

    monkeypatch.delenv("TRACECAUSE_BENCHMARKS", raising=False)
    missing = missing_files("default")
    assert len(missing) == 9 and "--dest <DIR> (then export TRACECAUSE_BENCHMARKS=<DIR>)" in fetch_command("default")
    assert all(fixture_path(f.relpath) is not None for f in missing)  # a rehearsal can stand in for each
    root = tmp_path / "bench"
    for f in missing:  # the schema fixtures where the upstream files belong
        (root / f.relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / f.relpath).write_bytes(fixture_path(f.relpath).read_bytes())
    monkeypatch.setenv("TRACECAUSE_BENCHMARKS", str(root))
    assert fetch_command("default") == f"tracecause benchmarks fetch --battery default --dest {root}"
    # The repository's lock holds upstream hashes (xstest's at least): a fixture is not that file.
    locked = [f.relpath for f in battery_files("default") if f.sha256]
    assert "xstest/xstest_prompts.csv" in locked
    assert [f.relpath for f in missing_files("default")] == locked
    with pytest.raises(LoaderError, match=r"benchmark '.*': .*: sha256 .* is not the locked "
                                          r".*tracecause benchmarks fetch --dest " + str(root)):
        load_items(load_battery("default"))

