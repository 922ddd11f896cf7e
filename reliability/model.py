"""One scenario's figures, the promise they are judged against, the table and the report."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COLUMNS = ("scenario", "published", "delivered_unique", "lost", "duplicates", "dlq", "seconds")


@dataclass
class Scenario:
    """The figures of one scenario run.

    `published` counts only what the producer was told was acknowledged; `lost` is what was
    published but neither delivered nor dead-lettered; `duplicates` counts extra deliveries
    of an event. `max_duplicates` is the promise for this scenario; `problems` holds every
    other broken expectation (a rebalance, an offset that moved too early, ...).
    """

    scenario: str
    published: int = 0
    delivered_unique: int = 0
    lost: int = 0
    duplicates: int = 0
    dlq: int = 0
    seconds: float = 0.0
    max_duplicates: int = 0
    problems: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.lost == 0 and self.duplicates <= self.max_duplicates and not self.problems

    @classmethod
    def tallied(cls, name: str, published: Collection[str], delivered: Counter[str], *,
                max_duplicates: int = 0) -> Scenario:
        """A row whose delivery figures are the `tally` of the acknowledged keys."""
        result = cls(name, published=len(published), max_duplicates=max_duplicates)
        result.delivered_unique, result.lost, result.duplicates = tally(published, delivered)
        return result

    def check(self, ok: bool, problem: str) -> None:
        """Record `problem` unless `ok`."""
        if not ok:
            self.problems.append(problem)

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {name: getattr(self, name) for name in COLUMNS}
        row["seconds"] = round(self.seconds, 1)
        row.update(max_duplicates=self.max_duplicates, passed=self.passed,
                   problems=list(self.problems), **self.extra)
        return row


def tally(expected: Iterable[str], delivered: Counter[str], dead: Iterable[str] = (),
          ) -> tuple[int, int, int]:
    """(delivered_unique, lost, duplicates) of the `expected` keys.

    A key counts as delivered once it reached the receiver at least once, as lost when it
    reached neither the receiver nor the dead-letter topic; every further delivery of an
    expected key is a duplicate.
    """
    wanted = set(expected)
    dead_set = set(dead)
    delivered_unique = sum(1 for key in wanted if delivered[key] > 0)
    lost = sum(1 for key in wanted if delivered[key] == 0 and key not in dead_set)
    duplicates = sum(delivered[key] - 1 for key in wanted if delivered[key] > 1)
    return delivered_unique, lost, duplicates


def format_table(rows: Sequence[Scenario]) -> str:
    header = [*COLUMNS, "max dup", "ok"]
    body = [[r.scenario, str(r.published), str(r.delivered_unique), str(r.lost),
             str(r.duplicates), str(r.dlq), f"{r.seconds:.1f}", str(r.max_duplicates),
             "yes" if r.passed else "NO"] for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    out = [line(header), line(["-" * w for w in widths]), *(line(b) for b in body)]
    for r in rows:
        out.extend(f"  {r.scenario}: {p}" for p in r.problems)
        if r.extra:
            out.append(f"  {r.scenario}: " + ", ".join(f"{k}={v}" for k, v in r.extra.items()))
    return "\n".join(out)


def write_report(rows: Sequence[Scenario], path: Path, meta: Mapping[str, Any]) -> None:
    document = {**meta, "scenarios": [r.to_json() for r in rows]}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
