"""Benchmark files: where each comes from (pinned), its locked sha256, what a battery still lacks.

A battery names its data as ``${TRACECAUSE_BENCHMARKS}/<source>/<upstream path>``. This module maps
such a path to its upstream (``configs/benchmarks/sources.yaml``: repo + commit) and to its sha256
(``configs/benchmarks/sha256.lock``), without importing any stage: launch uses it for ``plan`` and
``tracecause benchmarks fetch``, evalsuite's loaders to refuse a file that is not the locked one.
The download itself is ``tracecause.benchmark_fetch``. Schema fixtures (mild, written for the
repository) mirror the same layout under ``configs/benchmarks/fixtures``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from configs import CONFIG_ROOT, config_path
from tracecause.config import ConfigError, read_yaml
from tracecause.io import atomic_write_text, sha256_file

ROOT_VAR = "TRACECAUSE_BENCHMARKS"
SOURCES_FILE = CONFIG_ROOT / "benchmarks" / "sources.yaml"
LOCK_FILE = CONFIG_ROOT / "benchmarks" / "sha256.lock"
FIXTURES_DIR = CONFIG_ROOT / "benchmarks" / "fixtures"
UNSET = "-"
_PREFIXES = ("${" + ROOT_VAR + "}/", "$" + ROOT_VAR + "/")
_URLS = {"github": "https://raw.githubusercontent.com/{repo}/{commit}/{path}",
         "hub": "https://huggingface.co/datasets/{repo}/resolve/{commit}/{path}"}


class BenchmarkFileError(ValueError):
    """A benchmark file that is not the one locked (or cannot be mapped to its upstream)."""


@dataclass(frozen=True)
class BenchmarkFile:
    relpath: str          # <source>/<upstream path>: where it lives under the benchmarks root
    source: str
    repo: str
    commit: str           # "" = the source is not pinned yet (fetch refuses it)
    upstream_path: str
    kind: str = "github"
    sha256: str = ""      # "" = lock unset (the first fetch with --update-lock records it)
    benchmarks: tuple[str, ...] = ()  # battery benchmarks that read it

    def url(self, mirror: str = "") -> str:
        """The pinned upstream URL; a mirror (tests, an internal cache) replaces the host part."""
        if mirror:
            return f"{mirror.rstrip('/')}/{self.repo}/{self.commit}/{self.upstream_path}"
        return _URLS[self.kind].format(repo=self.repo, commit=self.commit, path=self.upstream_path)


def benchmark_relpath(path: str) -> str | None:
    """``${TRACECAUSE_BENCHMARKS}/xstest/x.csv`` -> ``xstest/x.csv``; None for any other path."""
    for prefix in _PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix):]
    return None


def benchmarks_root(dest: str | Path | None = None) -> Path | None:
    """``dest``, else ``$TRACECAUSE_BENCHMARKS``, else None (nowhere to look)."""
    if dest:
        return Path(dest).expanduser().resolve()
    env = os.environ.get(ROOT_VAR)
    return Path(env).expanduser().resolve() if env else None


# ----------------------------------------------------------------------------- registry and lock


def read_lock(lock: str | Path = LOCK_FILE) -> dict[str, str]:
    """relpath -> sha256 ("" where the lock is unset)."""
    out: dict[str, str] = {}
    path = Path(lock)
    if not path.is_file():
        return out
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        digest = parts[0].lower()
        if len(parts) != 2 or not (digest == UNSET or (len(digest) == 64 and all(c in "0123456789abcdef" for c in digest))):
            raise ConfigError(f"{path}:{n}", "line", "expected '<sha256 or ->  <source>/<path>'")
        out[parts[1].strip()] = "" if digest == UNSET else digest
    return out


def write_lock(entries: dict[str, str], lock: str | Path = LOCK_FILE) -> None:
    """Rewrite the lock (header comments kept, entries sorted), atomically."""
    path = Path(lock)
    header = [line for line in path.read_text().splitlines() if line.lstrip().startswith("#")] if path.is_file() else []
    body = [f"{digest or UNSET}  {rel}" for rel, digest in sorted(entries.items())]
    atomic_write_text(path, "\n".join(header + body) + "\n")


def read_sources(sources: str | Path = SOURCES_FILE, lock: str | Path = LOCK_FILE) -> dict[str, BenchmarkFile]:
    """Every known benchmark file by relpath, with its pin and its locked sha256."""
    data = read_yaml(sources)
    entries = data.get("sources")
    if not isinstance(entries, dict):
        raise ConfigError(str(sources), "sources", "must map a source name to {kind, repo, commit, files}")
    locked = read_lock(lock)
    out: dict[str, BenchmarkFile] = {}
    for name, src in entries.items():
        where = f"{sources}: source {name!r}"
        if not isinstance(src, dict) or not src.get("repo") or not isinstance(src.get("files"), list):
            raise ConfigError(where, "repo/files", "each source needs repo and a list of files")
        kind = src.get("kind", "github")
        if kind not in _URLS:
            raise ConfigError(where, "kind", f"{kind!r} is not one of {sorted(_URLS)}")
        commit = str(src.get("commit") or "")
        if commit and not (len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)):
            raise ConfigError(where, "commit", f"{commit!r} is not a 40-hex commit sha (branches move; pin a commit)")
        for f in src["files"]:
            rel = f"{name}/{f}"
            out[rel] = BenchmarkFile(rel, name, src["repo"], commit, str(f), kind, locked.get(rel, ""))
    return out


# ----------------------------------------------------------------------------- batteries


def battery_files(battery: str | Path, sources: str | Path = SOURCES_FILE,
                  lock: str | Path = LOCK_FILE) -> list[BenchmarkFile]:
    """The upstream files a battery reads from the benchmarks root, each once, in battery order.

    Paths elsewhere (the smoke battery's fixtures, a hub dataset at a pinned revision) are not
    fetched here. A root-relative path with no upstream in sources.yaml is an error.
    """
    path = config_path("evals", str(battery))
    known = read_sources(sources, lock)
    found: dict[str, list[str]] = {}
    for i, entry in enumerate(read_yaml(path).get("benchmarks") or []):
        src = (entry or {}).get("source") or {}
        rel = benchmark_relpath(str(src.get("path") or ""))
        if rel is None:
            continue
        name = entry.get("name", f"#{i}")
        if rel not in known:
            raise ConfigError(f"{path}: benchmark {name!r}", "source.path",
                              f"{rel!r} has no upstream in {sources}; add its source (repo, commit, file) there")
        found.setdefault(rel, []).append(name)
    return [BenchmarkFile(**{**known[rel].__dict__, "benchmarks": tuple(names)}) for rel, names in found.items()]


def file_state(f: BenchmarkFile, root: Path | None) -> str:
    """ok | missing | corrupt (sha256 differs from the lock) | unverified (present, lock unset)."""
    if root is None or not (root / f.relpath).is_file():
        return "missing"
    if not f.sha256:
        return "unverified"
    return "ok" if sha256_file(root / f.relpath) == f.sha256 else "corrupt"


def missing_files(battery: str | Path, dest: str | Path | None = None) -> list[BenchmarkFile]:
    """The battery's files that are absent or corrupt under ``dest`` (default $TRACECAUSE_BENCHMARKS)."""
    root = benchmarks_root(dest)
    return [f for f in battery_files(battery) if file_state(f, root) in ("missing", "corrupt")]


def fetch_command(battery: str | Path, dest: str | Path | None = None) -> str:
    """The one command that fetches what ``missing_files`` lists."""
    root = benchmarks_root(dest)
    where = str(root) if root else f"<DIR> (then export {ROOT_VAR}=<DIR>)"
    return f"tracecause benchmarks fetch --battery {battery} --dest {where}"


def fixture_path(relpath: str) -> Path | None:
    """The repository's schema fixture for a benchmark file (mild content), if there is one."""
    path = FIXTURES_DIR / relpath
    return path if path.is_file() else None


# ----------------------------------------------------------------------------- loaders


def check_benchmark_file(declared: str, local: Path, lock: str | Path = LOCK_FILE) -> str:
    """Before a loader reads ``local`` (declared in a battery as ``declared``): refuse a file whose
    sha256 is not the locked one. Returns "ok", "lock unset", or "not locked" (not a root file)."""
    rel = benchmark_relpath(declared)
    if rel is None:
        return "not locked"
    expected = read_lock(lock).get(rel, "")
    if not expected:
        return "lock unset"
    got = sha256_file(local)
    if got != expected:
        raise BenchmarkFileError(
            f"{local}: sha256 {got} is not the locked {expected} for {rel} ({lock}); the file is truncated, "
            f"edited or from another commit. Fix: tracecause benchmarks fetch --dest {local.parents[len(Path(rel).parts) - 1]}")
    return "ok"
