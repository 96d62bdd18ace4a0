"""Typed configuration: dataclasses own defaults, YAML and the CLI hold overrides.

Every component declares a small dataclass. ``load`` layers YAML files and dotted
``key.sub=value`` overrides on top of the defaults and validates the result, so a
typo, a wrong type or an out-of-range value fails *before* any work starts, with a
message naming the file, the key path, the bad value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence, TypeVar, Union

import yaml

T = TypeVar("T")

_RANGE_KEYS = ("ge", "gt", "le", "lt")


class ConfigError(ValueError):
    """A configuration value is missing, unknown, mistyped or out of range."""

    def __init__(self, source: str, path: str, message: str):
        self.source, self.path = source, path
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path or '<root>'}: {message}")


class FieldError(ValueError):
    """Raised by a config's ``validate()`` about one of its fields: ``from_dict`` turns it into a
    ConfigError naming the file (or override) and the full key path, e.g. ``models[0]``."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def bounded(default: Any, *, ge=None, gt=None, le=None, lt=None, help: str = "") -> Any:
    """A field whose numeric value must lie in a range (checked on load)."""
    meta = {k: v for k, v in dict(ge=ge, gt=gt, le=le, lt=lt).items() if v is not None}
    meta["help"] = help
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def one_of(default: Any, options: Sequence[Any], help: str = "") -> Any:
    """A field whose value must be one of ``options`` (checked on load)."""
    return dataclasses.field(default=default, metadata={"choices": tuple(options), "help": help})


def nested(cls: type) -> Any:
    """A field holding a sub-config with its own defaults."""
    return dataclasses.field(default_factory=cls)


# ----------------------------------------------------------------------------- conversion


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_describe(a) for a in typing.get_args(tp))
    if origin in (list, tuple, dict):
        return f"{origin.__name__}[{', '.join(_describe(a) for a in typing.get_args(tp) if a is not Ellipsis)}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, source: str, path: str) -> Any:
    origin = typing.get_origin(tp)
    bad = lambda: ConfigError(source, path, f"expected {_describe(tp)}, got {value!r} ({type(value).__name__})")
    if tp is Any:
        return value
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(source, path, f"{value!r} is not allowed; choose one of {list(allowed)}")
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, source, path)
            except ConfigError as err:
                errors.append(err)
        raise bad()
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise bad()
        return from_dict(tp, value, source=source, _path=path)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad()
        args = typing.get_args(tp)
        if (origin or tp) is tuple and args and Ellipsis not in args:  # fixed length: tuple[float, float]
            if len(value) != len(args):
                raise ConfigError(source, path, f"expected {len(args)} items ({_describe(tp)}), got {len(value)}: {value!r}")
            item_types = list(args)
        else:
            item_types = [args[0] if args else Any] * len(value)
        items = [_convert(t, v, source, f"{path}[{i}]") for i, (t, v) in enumerate(zip(item_types, value))]
        return tuple(items) if (origin or tp) is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise bad()
        key_t, val_t = (typing.get_args(tp) or (Any, Any))
        return {_convert(key_t, k, source, f"{path}.<key>"): _convert(val_t, v, source, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad()
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                try:  # YAML 1.1 reads "1e-5" as a string
                    return float(value)
                except ValueError:
                    pass
            raise bad()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad()
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise bad()
        return Path(value)
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise bad()


def _check_metadata(f: dataclasses.Field, value: Any, source: str, path: str) -> None:
    meta = f.metadata
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(source, path, f"{value!r} is not allowed; choose one of {list(meta['choices'])}")
    if value is None or not isinstance(value, (int, float)):
        return
    ops = {"ge": (lambda a, b: a >= b, ">="), "gt": (lambda a, b: a > b, ">"),
           "le": (lambda a, b: a <= b, "<="), "lt": (lambda a, b: a < b, "<")}
    for key in _RANGE_KEYS:
        if key in meta and not ops[key][0](value, meta[key]):
            allowed = " and ".join(f"{ops[k][1]} {meta[k]}" for k in _RANGE_KEYS if k in meta)
            raise ConfigError(source, path, f"{value!r} is out of range; must be {allowed}")


@functools.lru_cache(maxsize=None)
def _type_hints(cls: type) -> dict:
    """typing.get_type_hints is slow (it evaluates every annotation): plans load thousands of configs."""
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: Mapping[str, Any] | None, *, source: str = "", _path: str = "") -> T:
    """Build ``cls`` from a mapping, rejecting unknown keys and bad values."""
    data = dict(data or {})
    hints = _type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {sorted(known)}"
            raise ConfigError(source, f"{_path}.{key}".lstrip("."), f"unknown key{hint}")
    kwargs = {}
    for name, f in known.items():
        path = f"{_path}.{name}".lstrip(".")
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], source, path)
            _check_metadata(f, kwargs[name], source, path)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(source, path, f"required ({_describe(hints[name])}) but not set")
    try:
        obj = cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(source, _path, str(err)) from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError:
            raise
        except FieldError as err:
            raise ConfigError(source, f"{_path}.{err.field}".lstrip("."), err.message) from None
        except ValueError as err:
            raise ConfigError(source, _path, str(err)) from None
    return obj


def to_dict(cfg: Any) -> Any:
    """Plain, YAML/JSON-serialisable form of a config (paths as strings)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, Mapping):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


# ----------------------------------------------------------------------------- layering


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], value parsed as a YAML scalar/flow)."""
    if "=" not in text:
        raise ConfigError("command line", text, "an override must look like key.sub=value")
    key, raw = text.split("=", 1)
    keys = key.strip().split(".")
    if not all(keys):
        raise ConfigError("command line", key, "empty key segment in override")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return keys, value


def merge(base: dict, update: Mapping) -> dict:
    """Recursive dict merge; mappings merge, everything else replaces."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "", "config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(str(path), "", f"not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", f"top level must be a mapping, got {type(data).__name__}")
    return data


def load(cls: type[T], yaml_paths: Iterable[str | Path] = (), overrides: Iterable[str] = (),
         base: Mapping | None = None) -> T:
    """Defaults <- base mapping <- each YAML file <- CLI overrides, then validate.

    Errors name the layer that introduced the bad value.
    """
    data: dict = dict(base or {})
    sources: list[str] = []
    for p in yaml_paths:
        layer = read_yaml(p)
        from_dict(cls, merge(data, layer), source=str(p))  # fail early, naming this file
        data = merge(data, layer)
        sources.append(str(p))
    for text in overrides:
        keys, value = parse_override(text)
        source = f"override {text!r}"
        candidate = merge(data, _nest(keys, value))
        try:
            from_dict(cls, candidate, source=source)
        except ConfigError as err:
            # `revision=12345` or `tag=true` for a str field: the shell cannot quote for YAML, so
            # fall back to the raw text when (and only when) that is what makes the value valid.
            raw = text.split("=", 1)[1]
            if value is None or isinstance(value, str):
                raise
            candidate = merge(data, _nest(keys, raw))
            try:
                from_dict(cls, candidate, source=source)
            except ConfigError:
                raise err from None
        data = candidate
    return from_dict(cls, data, source=" + ".join(sources) or "defaults")


def _nest(keys: list[str], value: Any) -> dict:
    layer: Any = value
    for k in reversed(keys):
        layer = {k: layer}
    return layer


# ----------------------------------------------------------------------------- identity


def canonical_json(cfg: Any) -> str:
    return json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def config_hash(cfg: Any, length: int = 12) -> str:
    """Stable identity of a resolved config: run directories and W&B run ids."""
    return hashlib.sha256(canonical_json(cfg).encode()).hexdigest()[:length]


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)


def write_resolved(cfg: Any, out_dir: str | Path, name: str = "config") -> str:
    """Write ``<name>.yaml`` (the fully resolved config) and ``<name>.sha256`` next to outputs."""
    from tracecause.io import atomic_write_text

    out_dir = Path(out_dir)
    digest = config_hash(cfg, length=64)
    atomic_write_text(out_dir / f"{name}.yaml", f"# config_hash: {digest}\n" + dump_yaml(cfg))
    atomic_write_text(out_dir / f"{name}.sha256", digest + "\n")
    return digest


def read_resolved(cls: type[T], out_dir: str | Path, name: str = "config") -> T:
    return from_dict(cls, read_yaml(Path(out_dir) / f"{name}.yaml"), source=str(Path(out_dir) / f"{name}.yaml"))
