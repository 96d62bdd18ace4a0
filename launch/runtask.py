"""``python -m launch.runtask TASK.json``: one process of a task (local executor; torchrun sets ranks)."""
from __future__ import annotations

import json
import os
import sys

from tracecause.contracts import EXIT_REQUEUE


def main(argv: list[str] | None = None) -> int:
    from launch.task import StageTask

    argv = sys.argv[1:] if argv is None else argv
    task = StageTask.from_json(json.loads(open(argv[0]).read()))
    try:
        outcome = task()
        if os.environ.get("RANK", "0") == "0":  # one line per task, not one per torchrun process
            print(f"[launch] {task.task.uid}: {outcome}", flush=True)
    except SystemExit as exit_:
        return int(exit_.code or 0) if isinstance(exit_.code, int) else EXIT_REQUEUE
    except RuntimeError as err:
        print(f"[launch] {err}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
