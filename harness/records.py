"""Claim records: what every claim test produces, in one versioned JSON schema.

A record holds the claim id, the subject, the statistics, CIs, p-values, null summaries,
sample sizes, seeds, thresholds, the verdict and the paper's numbers, plus ``series``
(small arrays a figure needs, e.g. the influence rank curve). Workers append records as
JSON lines; the controller merges them into ``reports/<run>/claims.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
VERDICTS = ("pass", "fail", "error")


@dataclass
class ClaimRecord:
    """One claim on one subject (or family, for claims over checkpoints)."""

    claim_id: str
    subject: str
    verdict: str = "error"
    message: str = ""
    statistics: dict[str, Any] = field(default_factory=dict)
    ci: dict[str, list[float]] = field(default_factory=dict)
    p_values: dict[str, float] = field(default_factory=dict)
    null: dict[str, dict[str, float]] = field(default_factory=dict)
    sample_sizes: dict[str, int] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    paper: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    series: dict[str, Any] = field(default_factory=dict)
    test_id: str = ""
    elapsed_s: float = 0.0
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (numpy values become Python values, NaN/inf become None)."""
        return _jsonable(asdict(self))

    def decide(self, checks: dict[str, bool], message: str) -> None:
        """Set the verdict from named boolean checks (all must hold) and the one-line message."""
        self.checks = {k: bool(v) for k, v in checks.items()}
        self.verdict = "pass" if all(self.checks.values()) else "fail"
        failed = [k for k, v in self.checks.items() if not v]
        self.message = message if not failed else f"{message} [failed: {', '.join(failed)}]"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def append_jsonl(path: Path, record: ClaimRecord) -> None:
    """Append one record as a JSON line (one ``write`` call, safe for concurrent appenders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record.to_json(), sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)


def read_jsonl(paths: list[Path]) -> list[dict[str, Any]]:
    """All records from JSON-lines files, in file order."""
    out: list[dict[str, Any]] = []
    for p in paths:
        for line in Path(p).read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out
