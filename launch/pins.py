"""Hub pins: every hub model a sweep touches (trained, base, generator, judge) carries a revision.

A hub head moves under a running study; a model named by hub id without its commit would make
two tasks of one sweep load different weights. The plan refuses that here (naming the model, the
key and the fix), and checks that each pinned revision reaches the command line of every task
that loads the model — the bug that once dropped them silently.
"""
from __future__ import annotations

import functools

from tracecause.hub import in_local_cache, is_hub_id  # noqa: F401 (re-exported: launch calls pins.*)


@functools.lru_cache(maxsize=1)
def known_pins() -> dict[str, tuple[str, str]]:
    """hub id -> (model spec name, pinned revision) from configs/models/*.yaml (the fix to suggest)."""
    from configs import CONFIG_ROOT
    from tracecause.config import read_yaml

    out = {}
    for path in sorted((CONFIG_ROOT / "models").glob("*.yaml")):
        data = read_yaml(path) or {}
        if data.get("hub_id") and data.get("revision"):
            out[str(data["hub_id"])] = (path.stem, str(data["revision"]))
    return out


def model_spec_for_hub_id(hub_id: str) -> str:
    """The configs/models name of a hub id ("" when none describes it)."""
    return known_pins().get(hub_id, ("", ""))[0]


def unpinned(who: str, model_key: str, model: str, revision_key: str, revision: str) -> str | None:
    """A problem line when ``model`` is a hub id without ``revision``; None when pinned or local."""
    if not is_hub_id(model) or revision:
        return None
    spec, rev = known_pins().get(model, ("", ""))
    hint = (f" (configs/models/{spec}.yaml pins {rev})" if rev else
            " (the commit sha of the model's hub repo: huggingface-cli download MODEL --revision SHA)")
    return (f"{who}: {model_key}={model!r} is a hub model without a pinned revision: set "
            f"{revision_key}=<commit sha>{hint}")


def misattributed(who: str, model: str, revision_key: str, revision: str) -> str | None:
    """A problem line when ``revision`` is the pin of ANOTHER known hub model (a model overridden while
    its old revision stayed behind, e.g. generator.model changed on the command line)."""
    for hub, (spec, rev) in known_pins().items():
        if rev == revision and hub != model:
            mine = known_pins().get(model)
            fix = f"{revision_key}={mine[1]} (configs/models/{mine[0]}.yaml)" if mine else f"{revision_key}=<its commit sha>"
            return (f"{who}: {revision_key}={revision} is the pin of {hub}, not of {model!r}; set {fix}")
    return None


def argv_value(argv: tuple[str, ...] | list[str], key: str) -> str | None:
    """The value of ``key=...`` in a stage command line (the last one wins, as in the stages' CLIs)."""
    prefix, found = key + "=", None
    for arg in argv:
        if arg.startswith(prefix):
            found = arg[len(prefix):]
    return found


# (model key, revision key) pairs launch itself writes on command lines: the trainer's and evalsuite's.
# The generator's and judge's come from their configs and are checked on the resolved configs.
MODEL_KEYS = (("model.path", "model.revision"), ("model", "revision"))


def check_task_pins(jobs, pins: dict[str, str]) -> list[str]:
    """Every task argv naming a pinned hub model (``pins``: hub id -> revision) passes that revision.

    ``pins`` holds the hub ids the plan resolved; a task that names one without ``<rev key>=<sha>``
    on the same command line would load the hub head: reported with the task and the key.
    """
    problems = []
    for job in jobs:
        for task in job.tasks:
            for argv in task.argvs:
                for model_key, rev_key in MODEL_KEYS:
                    model = argv_value(argv, model_key)
                    if model in pins and argv_value(argv, rev_key) != pins[model]:
                        problems.append(f"task {task.uid}: {model_key}={model} reaches its command line without "
                                        f"{rev_key}={pins[model]} (a launch bug: please report it)")
                        break
    return problems
