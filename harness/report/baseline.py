"""Verdict baselines: the expected verdict of every claim on every subject, to compare a run with.

A baseline is a small JSON file ``{"kind": "verdict-baseline", "command": ..., "rule_versions":
{claim: version}, "verdicts": {"C1[zoo:neox-4l@step1000]": "contradicted", ...}}`` written from a
run (``python -m harness check … --write-baseline FILE``), or any run directory's ``claims.json``.
``compare_verdicts`` says which verdicts changed; a baseline made with another rule version of a
claim cannot be compared (``BaselineError``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from harness.records import ClaimRecord
from harness.report.rundir import CLAIMS_JSON, load_run


class BaselineError(ValueError):
    """A baseline that cannot be read or compared (missing, malformed, other rule versions)."""


def record_key(record: ClaimRecord) -> str:
    return f"{record.claim_id}[{record.subject}]"


def baseline_of(records: Sequence[ClaimRecord], command: str) -> dict[str, Any]:
    """The baseline document of a run's records."""
    return {"kind": "verdict-baseline", "command": command,
            "rule_versions": {r.claim_id: r.rule_version for r in records},
            "verdicts": {record_key(r): r.verdict for r in sorted(records, key=record_key)}}


def write_baseline(path: str | os.PathLike, records: Sequence[ClaimRecord], command: str) -> None:
    Path(path).write_text(json.dumps(baseline_of(records, command), indent=1, sort_keys=True) + "\n")


def load_baseline(path: str | os.PathLike) -> dict[str, Any]:
    """A baseline file, or the baseline of a run directory (its ``claims.json``)."""
    p = Path(path)
    if p.is_dir() or p.name == CLAIMS_JSON:
        _, records = load_run(p if p.is_dir() else p.parent)
        return baseline_of(records, f"run {p}")
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as err:
        raise BaselineError(f"cannot read the baseline {path}: {err}") from None
    if data.get("kind") != "verdict-baseline":
        raise BaselineError(f"{path} is neither a verdict baseline nor a run directory")
    return data


def compare_verdicts(records: Sequence[ClaimRecord], baseline: dict[str, Any]) -> list[str]:
    """One line per verdict that differs from the baseline (or is missing from either side)."""
    versions = baseline.get("rule_versions", {})
    stale = sorted({f"{r.claim_id} (run v{r.rule_version}, baseline v{versions[r.claim_id]})" for r in records
                    if r.claim_id in versions and versions[r.claim_id] != r.rule_version})
    if stale:
        raise BaselineError("the baseline was made with other decision-rule versions: " + ", ".join(stale)
                            + "; regenerate it with --write-baseline")
    expected = baseline["verdicts"]
    got = {record_key(r): r.verdict for r in records}
    lines = [f"{k}: baseline {expected[k]}, now {got[k]}" for k in sorted(got) if k in expected and expected[k] != got[k]]
    lines += [f"{k}: not in the baseline (now {got[k]})" for k in sorted(set(got) - set(expected))]
    lines += [f"{k}: in the baseline ({expected[k]}) but not run" for k in sorted(set(expected) - set(got))
              if k.split("[", 1)[0] in versions and k.split("[", 1)[0] in {r.claim_id for r in records}]
    return lines
