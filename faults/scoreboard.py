"""The faults suite's scoreboard: one row per injected fault, a table, and the last line CI reads."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Outcome:
    fault: str
    stage: str
    survived: bool = False
    lost: int = 0                 # completed work lost (steps, requests, records: ``unit`` says which)
    unit: str = "steps"
    detail: str = ""              # the evidence: what was checked, or why it did not survive


@dataclass
class Scoreboard:
    rows: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> Outcome:
        self.rows.append(outcome)
        mark = "survived" if outcome.survived else "NOT SURVIVED"
        print(f"[faults] {outcome.stage}: {outcome.fault}: {mark}, lost {outcome.lost} {outcome.unit} "
              f"({outcome.detail})", flush=True)
        return outcome

    @property
    def survived(self) -> int:
        return sum(r.survived for r in self.rows)

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rows)

    def last_line(self) -> str:
        return f"faults survived: {self.survived} of {len(self.rows)}; completed work lost: {self.lost}"

    def table(self) -> str:
        head = ("fault", "stage", "survived", "completed work lost")
        body = [(r.fault, r.stage, "yes" if r.survived else "no", f"{r.lost} {r.unit}") for r in self.rows]
        widths = [max(len(x) for x in col) for col in zip(head, *body)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*row) for row in body]
        return "\n".join(lines + ["", self.last_line()])

    def write(self, path: Path) -> None:
        from tracecause.io import atomic_write_json

        atomic_write_json(path, {"rows": [asdict(r) for r in self.rows], "survived": self.survived,
                                 "total": len(self.rows), "lost": self.lost, "last_line": self.last_line()})

    @staticmethod
    def read(path: Path) -> dict:
        return json.loads(Path(path).read_text())
