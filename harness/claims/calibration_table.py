"""The measured size and power of each claim's procedure, as records cite them.

``calibration.json`` beside this module is written by ``python -m harness calibrate --write-table``
(``harness.calibration``): for every claim, each null family's rate of *supported* verdicts (the
test's size) and each planted family's power, at the sample sizes calibration ran. A record cites
the entry nearest to its own sample sizes, so a reader sees "this verdict comes from a test with
measured size 4.6% [3.1, 6.8] and power 0.86 at this n".
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.records import ClaimRecord

TABLE = Path(__file__).with_name("calibration.json")

# The record sample sizes each claim's calibration grid is matched on (log distance).
MATCH_ON = ("rare_positions", "neurons", "group_size", "checkpoints", "test_positions", "heads")


@lru_cache(maxsize=1)
def load_table(path: str = str(TABLE)) -> dict[str, Any]:
    """The committed calibration table (empty when none has been written yet)."""
    p = Path(path)
    return json.loads(p.read_text()) if p.is_file() else {}


def _distance(a: dict[str, Any], b: dict[str, Any]) -> float:
    shared = [k for k in MATCH_ON if a.get(k) and b.get(k)]
    if not shared:
        return math.inf
    return sum(abs(math.log(float(a[k]) / float(b[k]))) for k in shared) / len(shared)


def cite_calibration(record: ClaimRecord, table: dict[str, Any] | None = None) -> dict[str, Any]:
    """The calibration of ``record``'s procedure nearest to its sample sizes, or ``{}`` without one.

    Returns ``{"size": worst rate of the null families that keep the rule's stated assumptions, "size_ci",
    "size_family", "power", "power_ci", "power_family", "sample_sizes", "repetitions", "rule_version",
    "written"}``, with ``"outside_size", "outside_size_ci", "outside_family", "outside_breaks"`` (the worst
    family that breaks one) where calibration measured one; a table of another rule version is not cited
    (``{"stale": ...}`` says so).
    """
    table = load_table() if table is None else table
    entries = table.get("claims", {}).get(record.claim_id, [])
    if not entries:
        return {}
    best = min(entries, key=lambda e: _distance(record.sample_sizes, e["sample_sizes"]))
    if best.get("rule_version") != record.rule_version:
        return {"stale": f"calibration table is for rule version {best.get('rule_version')}, "
                         f"this record uses {record.rule_version}"}
    return {k: best[k] for k in ("size", "size_ci", "size_family", "outside_size", "outside_size_ci",
                                 "outside_family", "outside_breaks", "power", "power_ci", "power_family",
                                 "sample_sizes", "repetitions", "rule_version") if k in best} | {
        "written": best.get("written", table.get("written"))}
