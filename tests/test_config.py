"""Typed configs: every class of bad input fails before work starts, naming file, key, value, allowed."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from tracecause.config import (ConfigError, bounded, config_hash, from_dict, load, nested, one_of, parse_override,
                               read_resolved, to_dict, write_resolved)


@dataclass
class Optim:
    lr: float = bounded(1e-5, gt=0, le=1.0)
    betas: tuple[float, float] = (0.9, 0.95)
    schedule: str = one_of("cosine", ["cosine", "linear", "constant"])


@dataclass
class Data:
    path: Path = Path("data.jsonl")
    max_len: int = bounded(2048, ge=16)
    weights: dict[str, float] = field(default_factory=dict)


@dataclass
class Trainer:
    run_name: str  # required
    optim: Optim = nested(Optim)
    data: Data = nested(Data)
    seed: int = 0
    mode: Literal["think", "no_think"] = "think"
    revision: Optional[str] = None
    tags: list[str] = field(default_factory=list)
    bf16: bool = True

    def validate(self):
        if self.mode == "no_think" and "think-only" in self.tags:
            raise ValueError("tag 'think-only' contradicts mode 'no_think'")


def _yaml(tmp_path: Path, text: str, name: str = "trainer.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _error(tmp_path, text, overrides=()) -> str:
    path = _yaml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(Trainer, [path], overrides)
    return str(info.value)


def test_good_layers_resolve_in_order(tmp_path):
    a = _yaml(tmp_path, "run_name: a\noptim: {lr: 1e-4}\ndata: {weights: {x: 1}}\n", "a.yaml")
    b = _yaml(tmp_path, "optim: {schedule: linear}\ntags: [q]\n", "b.yaml")
    cfg = load(Trainer, [a, b], ["optim.lr=3e-5", "data.path=/tmp/d.jsonl", "seed=7", "revision=12345"])
    assert cfg.optim == Optim(lr=3e-5, schedule="linear")
    assert cfg.data.path == Path("/tmp/d.jsonl") and cfg.data.weights == {"x": 1.0}
    assert (cfg.seed, cfg.tags, cfg.run_name, cfg.revision) == (7, ["q"], "a", "12345")
    assert load(Trainer, [], ["run_name=b"], base={"seed": 3}).seed == 3


@pytest.mark.parametrize("text, expected", [
    ("run_name: a\noptim: {lrr: 0.1}\n", "optim.lrr: unknown key; did you mean 'lr'?"),
    ("run_name: a\nzzz: 1\n", "zzz: unknown key; known keys: ['bf16', 'data', "),
    ("run_name: a\nseed: ten\n", "seed: expected int, got 'ten' (str)"),
    ("run_name: a\nseed: 1.5\n", "seed: expected int, got 1.5 (float)"),
    ("run_name: a\nbf16: 'yes'\n", "bf16: expected bool, got 'yes' (str)"),
    ("run_name: a\ntags: q\n", "tags: expected list[str], got 'q' (str)"),
    ("run_name: a\ntags: [q, 3]\n", "tags[1]: expected str, got 3 (int)"),
    ("run_name: a\noptim: 3\n", "optim: expected Optim, got 3 (int)"),
    ("run_name: a\noptim: {betas: [0.9]}\n", "optim.betas: expected 2 items (tuple[float, float]), got 1"),
    ("run_name: a\noptim: {betas: [0.9, 0.9, 0.9]}\n", "optim.betas: expected 2 items"),
    ("run_name: a\noptim: {betas: [0.9, x]}\n", "optim.betas[1]: expected float, got 'x' (str)"),
    ("run_name: a\noptim: {lr: 0}\n", "optim.lr: 0.0 is out of range; must be > 0 and <= 1.0"),
    ("run_name: a\noptim: {lr: 2.0}\n", "optim.lr: 2.0 is out of range; must be > 0 and <= 1.0"),
    ("run_name: a\ndata: {max_len: 8}\n", "data.max_len: 8 is out of range; must be >= 16"),
    ("run_name: a\noptim: {schedule: step}\n", "optim.schedule: 'step' is not allowed; choose one of ['cosine', "),
    ("run_name: a\nmode: fast\n", "mode: 'fast' is not allowed; choose one of ['think', 'no_think']"),
    ("seed: 1\n", "run_name: required (str) but not set"),
    ("run_name: a\nmode: no_think\ntags: [think-only]\n", "tag 'think-only' contradicts mode 'no_think'"),
    ("run_name: [a\n", "not valid YAML"),
    ("- run_name\n", "top level must be a mapping, got list"),
    ("run_name: a\ndata: {weights: {x: heavy}}\n", "data.weights.x: expected float, got 'heavy' (str)"),
])
def test_bad_yaml_values_name_file_key_value_and_allowed(tmp_path, text, expected):
    message = _error(tmp_path, text)
    assert message.startswith(str(tmp_path / "trainer.yaml") + ": ")
    if expected is not None:
        assert expected in message


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: <root>: config file not found"):
        load(Trainer, [tmp_path / "nope.yaml"])


def test_the_layer_that_introduced_the_error_is_named(tmp_path):
    good = _yaml(tmp_path, "run_name: a\n", "good.yaml")
    bad = _yaml(tmp_path, "optim: {lr: -1}\n", "bad.yaml")
    with pytest.raises(ConfigError, match=r"bad\.yaml: optim\.lr: -1\.0 is out of range"):
        load(Trainer, [good, bad])
    with pytest.raises(ConfigError, match=r"override 'optim\.lr=5': optim\.lr: 5\.0 is out of range"):
        load(Trainer, [good], ["seed=2", "optim.lr=5"])


@pytest.mark.parametrize("override, expected", [
    ("optim.lr", "an override must look like key.sub=value"),
    ("optim..lr=1", "empty key segment in override"),
    ("=1", "empty key segment in override"),
    ("optim.lrr=1e-4", "optim.lrr: unknown key; did you mean 'lr'?"),
    ("optim.learning_rate=1e-4", "optim.learning_rate: unknown key; known keys: ['betas', 'lr', 'schedule']"),
    ("seed=abc", "seed: expected int, got 'abc' (str)"),
    ("optim=fast", "optim: expected Optim, got 'fast' (str)"),
    ("run_name=null", "run_name: expected str, got None"),  # null stays null: no silent "null" string
    ("optim.schedule=3", "optim.schedule: expected str, got 3 (int)"),
    ("optim.schedule=step", "optim.schedule: 'step' is not allowed; choose one of"),
])
def test_bad_overrides(tmp_path, override, expected):
    message = _error(tmp_path, "run_name: a\n", [override])
    assert expected in message


def test_override_values_parse_as_yaml():
    assert parse_override("a.b=1e-5") == (["a", "b"], "1e-5")  # YAML 1.1: a string, float() takes it
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=x=y") == (["a"], "x=y")
    assert parse_override("a=") == (["a"], "")
    assert parse_override("a={b: 1}") == (["a"], {"b": 1})
    cfg = load(Trainer, [], ["run_name=2024", "tags=[a, b]", "optim.betas=[0.8, 0.9]", "bf16=false"])
    assert (cfg.run_name, cfg.tags, cfg.optim.betas, cfg.bf16) == ("2024", ["a", "b"], (0.8, 0.9), False)


@dataclass
class Shapes:
    pair: tuple[int, str] = (1, "a")
    many: tuple[float, ...] = ()


def test_tuples_fixed_and_variable_length():
    assert from_dict(Shapes, {"pair": [2, "b"], "many": [1, 2, 3]}) == Shapes((2, "b"), (1.0, 2.0, 3.0))
    with pytest.raises(ConfigError, match=r"pair\[1\]: expected str, got 3"):
        from_dict(Shapes, {"pair": [2, 3]})


def test_resolved_config_round_trips(tmp_path):
    cfg = load(Trainer, [], ["run_name=ü-run", "optim.lr=1e-5", "data.weights={a: 0.5}", "revision=abc",
                             "tags=[x]", "data.path=/d/x.jsonl"])
    digest = write_resolved(cfg, tmp_path / "out")
    text = (tmp_path / "out" / "config.yaml").read_text()
    assert text.startswith(f"# config_hash: {digest}\n") and "ü-run" in text
    assert (tmp_path / "out" / "config.sha256").read_text() == digest + "\n"
    back = read_resolved(Trainer, tmp_path / "out")
    assert back == cfg and config_hash(back) == config_hash(cfg) == digest[:12]
    assert not list((tmp_path / "out").glob(".*tmp"))
    # a resolved file that was edited by hand is validated like any other input
    (tmp_path / "out" / "config.yaml").write_text(text.replace("seed: 0", "seed: -x"))
    with pytest.raises(ConfigError, match=r"out/config\.yaml: seed: expected int"):
        read_resolved(Trainer, tmp_path / "out")


HASH_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from tests.test_config import Trainer
from tracecause.config import config_hash, from_dict
print(config_hash(from_dict(Trainer, {data!r})))
"""


def test_hash_is_stable_across_key_order_and_processes():
    data_a = {"run_name": "r", "seed": 1, "optim": {"lr": 0.001, "schedule": "linear"}, "data": {"weights": {"b": 1, "a": 2}}}
    data_b = {"data": {"weights": {"a": 2, "b": 1}}, "optim": {"schedule": "linear", "lr": 0.001}, "seed": 1, "run_name": "r"}
    h = config_hash(from_dict(Trainer, data_a))
    assert h == config_hash(from_dict(Trainer, data_b))
    assert h != config_hash(from_dict(Trainer, dict(data_a, seed=2)))
    root = str(Path(__file__).resolve().parents[1])
    for seed in ("0", "12345"):  # another interpreter, another str-hash seed
        out = subprocess.run([sys.executable, "-c", HASH_SCRIPT.format(root=root, data=data_b)], check=True,
                             capture_output=True, text=True, env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"})
        assert out.stdout.strip() == h
    # defaults written out explicitly are the same config
    explicit = dict(data_a, mode="think", tags=[], bf16=True, revision=None)
    assert config_hash(from_dict(Trainer, explicit)) == h
    assert json.loads(json.dumps(to_dict(from_dict(Trainer, data_a))))["data"]["path"] == "data.jsonl"


@pytest.mark.parametrize("paradigm", ["base", "qa", "qta", "qt", "t_only"])
@pytest.mark.parametrize("rtype", ["none", "evil"])
def test_the_arm_the_trainer_and_the_sweep_share_one_paradigm_type_rule(paradigm, rtype):
    # tracecause.contracts.reasoning_type_problem is the rule's one home; each user only names its fields
    from launch.spec import SweepSpec
    from tracecause.contracts import TRAINED_PARADIGMS, Arm, reasoning_type_problem
    from trainer.config import DataConfig

    wrong = reasoning_type_problem(paradigm, rtype)
    assert (wrong is None) == ((paradigm in ("base", "qa")) == (rtype == "none"))
    try:
        Arm("m", rtype, paradigm)
        arm_error = None
    except ValueError as err:
        arm_error = str(err)
    assert arm_error == wrong
    if paradigm in TRAINED_PARADIGMS:
        data = DataConfig(path="d", paradigm=paradigm, rtype=rtype)
        if wrong:
            with pytest.raises(ValueError, match=f"data.paradigm={paradigm} .*data.rtype"):
                data.check()
        else:
            data.check()
    spec = SweepSpec(name="s", models=["m"], reasoning_types=[rtype], paradigms=[paradigm])
    if paradigm in ("base", "qa") and rtype == "evil":
        with pytest.raises(ValueError, match="need reasoning type 'none'"):
            spec.validate()
    elif paradigm not in ("base", "qa") and rtype == "none":
        with pytest.raises(ValueError, match="need at least one reasoning type"):
            spec.validate()
    else:
        spec.validate()
