"""The benchmark table: one line per ``Result`` (value, target, ratio, pass/miss), and its JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from benchmarks.measure import Result


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def format_table(rows: Sequence[Result]) -> str:
    """A fixed-width table; each row's note on the line below it."""
    head = f"{'benchmark':64} {'value':>10} {'unit':12} {'target':>8} {'ratio':>7} {'time s':>8} {'peak MB':>8}  status"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.name[:64]:64} {_num(r.value):>10} {r.unit[:12]:12} {r.target:>8} {_num(r.ratio):>7} "
                     f"{_num(r.seconds):>8} {_num(r.peak_mb):>8}  {r.status}")
        if r.note:
            lines.append(f"    {r.note}")
    return "\n".join(lines)


def print_table(rows: Sequence[Result]) -> None:
    print(format_table(rows), flush=True)


def write_json(path: str | Path, rows: Sequence[Result], context: dict[str, Any]) -> None:
    """``{"context": …, "results": [row, …]}`` (each row with its target, ratio and status)."""
    Path(path).write_text(json.dumps({"context": context, "results": [r.to_json() for r in rows]}, indent=1) + "\n")
