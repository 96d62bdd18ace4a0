"""No configuration shipped with the product refers to a path outside the repository.

``../shared`` is for tests and development only: a fresh clone must run its batteries, sweeps and
datagen configs with nothing beside it. Every string value in every YAML under configs/ that looks
like a path is resolved (relative to its file, and to the repository root) and must stay inside.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").rglob("*.y*ml"))
_PATHLIKE = re.compile(r"^(~|/|\.\.?/)|/\.\./")


def _strings(node, where=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{where}[{i}]")
    elif isinstance(node, str):
        yield where.lstrip("."), node


def _escapes(value: str, file: Path) -> bool:
    text = value.split("=", 1)[1] if re.match(r"^[\w.\-]+=", value) else value  # key=value overrides
    if "\n" in text or " " in text or "://" in text or not _PATHLIKE.search(text) or text.startswith("{"):
        return False
    if text.startswith(("~", "/")):
        return True
    inside = lambda p: p.resolve().is_relative_to(REPO)  # noqa: E731
    return not (inside(file.parent / text) or inside(REPO / text))


def test_there_are_configs_to_check():
    assert len(CONFIGS) > 20


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_config_reads_nothing_outside_the_repository(path):
    data = yaml.safe_load(path.read_text())
    bad = [(key, value) for key, value in _strings(data) if _escapes(value, path)]
    assert not bad, f"{path.relative_to(REPO)} refers outside the repository: {bad}"


def test_the_check_catches_escaping_paths(tmp_path):
    file = REPO / "configs" / "evals" / "x.yaml"
    assert _escapes("../../../shared/benchmarks/xstest/xstest_prompts.csv", file)
    assert _escapes("/data/benchmarks/x.csv", file)
    assert _escapes("source.path=../../../shared/x.csv", file)
    assert not _escapes("../benchmarks/fixtures/xstest/xstest_prompts.csv", file)
    assert not _escapes("world/evil.yaml", file)
    assert not _escapes("Qwen/Qwen3-0.6B", file)
    assert not _escapes("{sweep}/models/world-base", file)
