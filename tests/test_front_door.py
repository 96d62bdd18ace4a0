"""The front door: every command the READMEs and --help texts show parses with the real parser of its
entry point (tests/shown_commands.py), and the cheap ones run for real: --help, `tracecause plan` on
every shipped sweep, the validation errors the README tells the reader to expect, and the refusal of a
folder that is not a sweep by every command that takes one."""
from __future__ import annotations

import argparse
import importlib.util

import pytest

from tests.shown_commands import ROOT, commands_in, entry_point, problem, readmes, run_parser

# every command taking a sweep folder: (how to call it, its arguments before the folder)
SWEEP_COMMANDS = [("tracecause", ["status"]), ("tracecause", ["resume"]), ("tracecause", ["cancel"]),
                  ("tracecause", ["wandb-sync"]), ("tracecause", ["plan", "smoke", "--pilot"]),
                  ("evalsuite", ["analyze"]), ("bench/demo_stages.py", [])]
HELP_PAGES = [["python", "-m", "evalsuite"], ["python", "-m", "evalsuite", "analyze"], ["python", "-m", "datagen"],
              ["python", "-m", "trainer"], ["python", "-m", "faults"], ["python", "bench/demo_stages.py"]]


def _launch_pages() -> list[list[str]]:
    """`tracecause`, each of its commands and each of theirs (benchmarks fetch, ...)."""
    from launch.cli import _subparsers, build_parser

    pages = [["tracecause"]]
    for name, sub in sorted(_subparsers(build_parser()).items()):
        pages.append(["tracecause", name])
        if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
            pages += [["tracecause", name, nested] for nested in sorted(_subparsers(sub))]
    return pages


def _help(argv: list[str]) -> str:
    kind, target, args = entry_point([*argv, "--help"])
    status, out, err = run_parser(kind, target, args, argv[0])
    assert status == 0 and "usage:" in out, f"{' '.join(argv)} --help: exit {status}\n{err}"
    return out


def test_every_command_a_readme_shows_parses():
    shown = {(path.relative_to(ROOT), c) for path in readmes() for c in commands_in(path.read_text())}
    assert len(shown) > 30, "the collector found too few commands: it no longer reads the READMEs"
    bad = [f"{where}: {why}" for where, c in sorted(shown) if (why := problem(c))]
    assert not bad, "commands shown in READMEs that their parser refuses:\n" + "\n".join(bad)


def test_every_help_page_prints_and_every_command_it_shows_parses():
    pages = HELP_PAGES + _launch_pages()
    bad, seen = [], 0
    for argv in pages:
        for command in commands_in(_help(argv)):
            seen += 1
            if why := problem(command):
                bad.append(f"{' '.join(argv)} --help: {why}")
    assert seen > 10, "the help pages show commands: the collector missed them"
    assert not bad, "commands shown in --help texts that their parser refuses:\n" + "\n".join(bad)


def test_a_shown_command_the_parser_rejects_is_reported():
    """The check above can fail: a README showing a command its parser refuses is named."""
    readme = ("# x\n\n```bash\ntracecause plan configs/sweeps/smoke.yaml --no-such-flag   # comment\n"
              "tracecause status sweeps/paper [--watch]\n```\n"
              "Run `python -m evalsuite generate --shard` or `bash dev.sh nope`; "
              "`python -m no_such_module --x`; `python bench/no_such.py`.\n")
    shown = commands_in(readme)
    assert shown == ["tracecause plan configs/sweeps/smoke.yaml --no-such-flag", "tracecause status sweeps/paper [--watch]",
                     "python -m evalsuite generate --shard", "bash dev.sh nope", "python -m no_such_module --x",
                     "python bench/no_such.py --help"]
    verdicts = {c: problem(c) for c in shown}
    assert verdicts.pop("tracecause status sweeps/paper [--watch]") is None
    assert all(verdicts.values()), verdicts
    assert "unrecognized arguments: --no-such-flag" in verdicts[shown[0]]


def test_demo_help_describes_the_demo_and_names_its_default_folder():
    page = _help(["tracecause", "demo"])
    assert "known-answer world" in page and "sweeps/demo-<YYYYmmdd-HHMMSS>" in page
    assert "default: the sweep's cluster" not in page  # the demo runs on the local executor unless told


def test_evalsuite_takes_overrides_after_options():
    from evalsuite.cli import parse

    args = parse(["judge", "arm_id=qwen3-0.6b.evil.qta.s0", "--judge", "openai", "judge.model=m", "--shard", "1"])
    assert args.overrides == ["arm_id=qwen3-0.6b.evil.qta.s0", "judge.model=m"] and args.judge == "openai"
    assert parse(["analyze", "sweeps/x", "--amend", "figures=false"]).overrides == ["figures=false"]


@pytest.mark.parametrize("sweep", sorted(p.name for p in (ROOT / "configs" / "sweeps").glob("*.yaml")))
def test_plan_runs_for_every_shipped_sweep(sweep, tmp_path, monkeypatch, capsys):
    """It plans, or (benchmark files not fetched) stops naming the one command that fetches them."""
    from launch.cli import main

    monkeypatch.delenv("TRACECAUSE_BENCHMARKS", raising=False)
    status = main(["plan", f"configs/sweeps/{sweep}", "--out", str(tmp_path / "s")])
    out, err = capsys.readouterr()
    assert status in (0, 2), err
    if status == 2:
        assert "benchmark files are missing" in err and "tracecause benchmarks fetch" in err, err
    else:
        assert "arms:" in out


def test_the_readme_configuration_examples_stop_where_the_readme_says(capsys):
    from trainer.cli import main

    readme = " ".join((ROOT / "README.md").read_text().split())
    for argv, message in [(["configs/trainer/tiny-cpu.yaml", "optim.lr=1e-5", "train.max_steps=20"],
                           "model.path: required but not set"),
                          (["tiny-cpu", "optim.lrr=1"], "optim.lrr: unknown key; did you mean 'lr'?"),
                          (["tiny-cpu", "optim.lr=-1"], "optim.lr: -1.0 is out of range; must be > 0.0")]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and message in readme, (message, err)
        assert err.count(message) == 1  # said once


def test_datagen_demo_says_to_build_the_tiny_model_first(tmp_path, monkeypatch, capsys):
    from datagen.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "generator.model" in err and "tracecause tiny-model ./runs/tiny-qwen3" in err, err
    assert "pin its commit" not in err


def _run_sweep_command(how: str, args: list[str]) -> int:
    if how == "tracecause":
        from launch.cli import main
        return main(args)
    if how == "evalsuite":
        from evalsuite.cli import main
        return main([*args, "--no-wandb"])
    spec = importlib.util.spec_from_file_location("demo_stages", ROOT / how)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(args)


@pytest.mark.parametrize("how,args", SWEEP_COMMANDS, ids=[" ".join([h, *a]) for h, a in SWEEP_COMMANDS])
def test_every_command_taking_a_sweep_folder_refuses_one_that_is_not(how, args, tmp_path, capsys):
    for folder, says in [(tmp_path / "no-such-sweep", "no such folder"), (tmp_path, "is not a sweep folder")]:
        assert _run_sweep_command(how, [*args, str(folder)]) == 2
        err = capsys.readouterr().err
        assert f"{folder}" in err and (says in err or "not a sweep folder" in err), err
    assert not (tmp_path / "analysis").exists()  # nothing written into the folder that was refused


def test_the_list_of_sweep_folder_commands_is_complete():
    """A new tracecause command taking a sweep folder must join SWEEP_COMMANDS (and refuse a non-sweep)."""
    from launch.cli import _subparsers, build_parser

    taking = {name for name, sp in _subparsers(build_parser()).items()
              if any(a.dest == "sweep_dir" for a in sp._actions)}
    assert taking == {a[0] for h, a in SWEEP_COMMANDS if h == "tracecause" and len(a) == 1}
