"""Names that become folders, and profile values written into job scripts, are checked before anything is written.

A model name, arm id part or dataset id with ``/``, ``..`` or an absolute path would write outside
the sweep folder; a cluster profile's ``env:`` lands in every sbatch script, so a key there leaks.
Each is refused at plan time naming the file and the field, and by each stage's own config loading.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from configs import CONFIG_ROOT
from launch.cli import main as cli
from launch.plan import PlanError, make_plan
from launch.profile_env import secret_problem
from launch.profiles import load_profile
from tracecause.config import ConfigError, load
from tracecause.contracts import Arm
from tracecause.names import name_problem

SAFE_HINT = "use letters, digits, '.', '-', '_'"
# Synthetic, shaped like real credentials (mixed-case base62), so the shape checks must fire.
FAKE_HF = "hf_" + "AbCdEfGhIj" * 3 + "KlMn"
FAKE_WANDB = "0123456789abcdef" * 2 + "01234567"


def _sweep_file(tmp_path: Path, name: str, **changes) -> Path:
    """configs/sweeps/smoke.yaml with top-level keys replaced (``dataset`` merged)."""
    data = yaml.safe_load((CONFIG_ROOT / "sweeps" / "smoke.yaml").read_text())
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _refusal(sweep: Path, tmp_path: Path, **kw) -> str:
    out = tmp_path / "out"
    with pytest.raises((ConfigError, PlanError)) as err:
        make_plan(str(sweep), sweep_dir=out, **kw)
    assert not out.exists()  # refused before anything was written
    return str(err.value)


@pytest.mark.parametrize("model, why", [
    ("../x", "it contains '..'"),
    ("../models/tiny-qwen3", "it contains '..'"),  # resolves to a real model config: only the name check stops it
    ("org/tiny", "it contains a path separator"),
    ("/abs/model", "an absolute path, not a name"),
])
def test_an_unsafe_model_name_is_refused_at_plan_time_with_file_and_field(tmp_path, model, why):
    sweep = _sweep_file(tmp_path, "bad-model", models=["tiny-qwen3", model])
    msg = _refusal(sweep, tmp_path)
    assert msg.startswith(f"{sweep}: models[1]: {model!r} is not a safe name: {why}") and SAFE_HINT in msg


def test_an_arm_id_part_with_a_slash_is_refused_at_plan_time(tmp_path):
    sweep = _sweep_file(tmp_path, "bad-type", reasoning_types=["none", "ev/il"])
    msg = _refusal(sweep, tmp_path)
    assert msg.startswith(f"{sweep}: reasoning_types[1]: 'ev/il'")
    # The model part, given on the command line: the override is named instead of the file.
    assert cli(["plan", "smoke", "models=[tiny/qwen3]", "--out", str(tmp_path / "cli")]) == 2
    assert not (tmp_path / "cli").exists()


def test_the_cli_names_the_file_and_field(tmp_path, capsys):
    sweep = _sweep_file(tmp_path, "bad-cli", models=["../x"])
    assert cli(["plan", str(sweep), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert f"{sweep}: models[0]: '../x' is not a safe name" in err


@pytest.mark.parametrize("dataset_id, why", [("/tmp/elsewhere", "an absolute path"), ("../d", "'..'"),
                                             ("a/b", "path separator")])
def test_an_unsafe_dataset_id_is_refused_at_plan_time(tmp_path, dataset_id, why):
    sweep = _sweep_file(tmp_path, "bad-data", dataset={"id": dataset_id})
    msg = _refusal(sweep, tmp_path)
    assert msg.startswith(f"{sweep}: dataset.id: {dataset_id!r} is not a safe name") and why in msg


def test_good_names_pass_and_land_inside_the_sweep(tmp_path):
    sweep = _sweep_file(tmp_path, "good-names", dataset={"id": "pairs_v1.2-demo"})
    plan = make_plan(str(sweep), sweep_dir=tmp_path / "s")
    assert plan.dataset_id == "pairs_v1.2-demo"
    assert {a.id for a in plan.arms} == {"tiny-qwen3.none.base.s0", "tiny-qwen3.none.qa.s0",
                                         "tiny-qwen3.evil.qta.s0", "tiny-qwen3.evil.qt.s0"}
    root = str(tmp_path / "s")
    assert all(t.done_dir.startswith(root + "/") for j in plan.jobs for t in j.tasks)


# ----------------------------------------------------------------------------- cluster profile env


def _profile_file(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((CONFIG_ROOT / "clusters" / "local.yaml").read_text())
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "leaky.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("changes, field", [
    ({"env": {"WANDB_API_KEY": FAKE_WANDB}}, "env.WANDB_API_KEY"),
    ({"env": {"HF_TOKEN": "not-even-shaped-like-a-key"}}, "env.HF_TOKEN"),   # by name: a literal value
    ({"env": {"MY_SETTING": FAKE_HF}}, "env.MY_SETTING"),                    # by shape, whatever the name
    ({"setup": ["module load cuda", f"export HUGGING_FACE_HUB_TOKEN={FAKE_HF}"]}, "setup[1]"),
    ({"stages": {"train": {"setup": [f"export WANDB_KEY={FAKE_WANDB}"]}}}, "stages.train.setup[0]"),
])
def test_a_secret_in_a_cluster_profile_is_refused_at_plan_time_without_echoing_it(tmp_path, changes, field):
    profile = _profile_file(tmp_path, **changes)
    msg = _refusal(CONFIG_ROOT / "sweeps" / "smoke.yaml", tmp_path, cluster=str(profile))
    assert msg.startswith(f"{profile}: {field}: ")
    assert "written into every job script" in msg and "tracecause submit" in msg  # the why and the fix
    assert FAKE_HF not in msg and FAKE_WANDB not in msg and "not-even-shaped" not in msg


def test_paths_and_switches_in_profile_env_pass():
    for shipped in sorted((CONFIG_ROOT / "clusters").glob("*.yaml")):
        load_profile(str(shipped))
    fine = {"HF_HOME": "/scratch/hf", "SSL_KEY": "/etc/ssl/private/node.pem", "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
            "TOKENIZERS_PARALLELISM": "false", "REVISION": FAKE_WANDB,  # a bare 40-hex is a git sha
            "OUT": "/data/sk-learn-experiments-2024-folder", "API_KEY_FILE": "/home/u/.key"}
    for name, value in fine.items():
        assert secret_problem(name, value) == "", name
    profile = load_profile("local", [f"env.{k}={v}" for k, v in fine.items()] + ['setup=["export HF_TOKEN=$(cat ~/.hf)"]'])
    assert profile.env["SSL_KEY"] == "/etc/ssl/private/node.pem"


def test_an_env_name_the_shell_would_misread_is_refused():
    with pytest.raises(ConfigError, match=r"env\.<key>: 'A; rm x' is not an environment variable name"):
        load_profile("local", ['env={"A; rm x": "1"}'])


# ----------------------------------------------------------------------------- each stage's own loading


def test_each_stage_refuses_an_unsafe_name_in_its_own_config(tmp_path):
    from datagen.plan import load_config
    from evalsuite.config import EvalConfig
    from trainer.config import TrainConfig

    with pytest.raises(ConfigError, match=r"arm_id: '\.\./x' is not a safe name"):
        load(TrainConfig, [CONFIG_ROOT / "trainer" / "tiny-cpu.yaml"], ["arm_id=../x"])
    with pytest.raises(ConfigError, match=r"override 'output\.dir=/runs/\.\./etc': output\.dir: .* contains '\.\.'"):
        load(TrainConfig, [], ["output.dir=/runs/../etc"])
    with pytest.raises(ConfigError, match=r"output\.dataset_id: '/tmp/x' is not a safe name: an absolute path"):
        load_config("demo", ["output.dataset_id=/tmp/x"])
    with pytest.raises(ConfigError, match=r"arm_id.*model name '\.\./x' is not a safe name"):
        load(EvalConfig, [], ["arm_id=../x.none.base.s0", f"sweep_dir={tmp_path}"])
    assert load(TrainConfig, [], ["arm_id=tiny.evil.qta.s0", f"output.dir={tmp_path}/o"]).arm_id == "tiny.evil.qta.s0"
    good = load_config("demo", ["output.dataset_id=dg-mine", "generator.model=/models/tiny"])
    assert good.output.dataset_id == "dg-mine"


@pytest.mark.parametrize("name, ok", [("qwen3-0.6b", True), ("Qwen3_8B.v2", True), ("", False), (".hidden", False),
                                      ("-rf", False), ("a..b", False), ("a b", False), ("a\\b", False),
                                      ("~user", False), ("x" * 129, False)])
def test_name_rules(name, ok):
    assert (name_problem(name) == "") is ok
    if ok:
        assert Arm(name, "none", "qa", 0).model == name
    else:
        with pytest.raises(ValueError, match="is not a safe name"):
            Arm(name or "", "none", "qa", 0)
