"""Reasoning types: one YAML file each, no code.

``configs/datagen/types/<name>.yaml``::

    description: one line; the judge sees it when type-checking
    system: optional system message for the generator
    template: |
      ... {question} ... {answer} ...

Templates may use only ``{question}``, ``{answer}`` and ``{type}`` and must use the
first two (the generator has to see the fixed answer). A misspelt variable fails when
the config is loaded, naming the file and the variable, before any model starts.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

from tracecause.config import ConfigError, canonical_json, from_dict, read_yaml
from tracecause.contracts import NO_REASONING
from tracecause.io import sha256_text

ALLOWED_VARIABLES = ("question", "answer", "type")
REQUIRED_VARIABLES = ("question", "answer")
SHIPPED_TYPES_DIR = Path(__file__).resolve().parents[1] / "configs" / "datagen" / "types"


@dataclass
class TypeSpec:
    template: str
    description: str = ""
    system: str = ""


@dataclass(frozen=True)
class ReasoningType:
    name: str
    spec: TypeSpec
    path: Path

    @property
    def template_hash(self) -> str:
        return sha256_text(canonical_json(self.spec))

    def messages(self, question: str, answer: str) -> list[dict]:
        user = self.spec.template.format(question=question, answer=answer, type=self.name)
        system = self.spec.system.format(question=question, answer=answer, type=self.name)
        msgs = [{"role": "system", "content": system}] if system.strip() else []
        return msgs + [{"role": "user", "content": user}]


def _check_template(text: str, source: str, key: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as err:  # a lone '{' or '}'
        raise ConfigError(source, key, f"bad template syntax: {err} (write literal braces as '{{{{' and '}}}}')") from None
    used = set()
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        if field_name not in ALLOWED_VARIABLES:
            raise ConfigError(source, key, f"unknown template variable {{{field_name}}}; "
                                           f"allowed: {', '.join('{' + v + '}' for v in ALLOWED_VARIABLES)}")
        used.add(field_name)
    return used


def load_type(name: str, types_dir: str | Path = "") -> ReasoningType:
    folder = Path(types_dir) if types_dir else SHIPPED_TYPES_DIR
    if not folder.is_absolute() and not folder.is_dir() and (SHIPPED_TYPES_DIR.parents[2] / folder).is_dir():
        folder = SHIPPED_TYPES_DIR.parents[2] / folder  # relative to the installed package, like source paths
    if not re.match(r"^[a-z0-9][a-z0-9_\-]*$", name):
        raise ConfigError("types", name, "a type name is lowercase letters, digits, '_' or '-' (it becomes part of arm ids)")
    if name == NO_REASONING:
        raise ConfigError("types", name, f"{NO_REASONING!r} is the no-reasoning arm; it needs no dataset type")
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        raise ConfigError("types", name, f"no type file {path}; known types: {known} "
                                         f"(add a type by writing {folder}/{name}.yaml)")
    spec = from_dict(TypeSpec, read_yaml(path), source=str(path))
    used = _check_template(spec.template, str(path), "template")
    missing = [v for v in REQUIRED_VARIABLES if v not in used]
    if missing:
        raise ConfigError(str(path), "template", f"must use {', '.join('{' + v + '}' for v in missing)}")
    _check_template(spec.system, str(path), "system")
    return ReasoningType(name=name, spec=spec, path=path)


def load_types(names: list[str], types_dir: str | Path = "") -> list[ReasoningType]:
    return [load_type(n, types_dir) for n in names]
