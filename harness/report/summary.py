"""The compact verdict table printed at the end of ``pytest claims/``."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from harness.records import ClaimRecord, coerce_records
from harness.report.verdicts import VERDICT_LABELS, ordered_claims, ordered_subjects, verdict_counts, worst_verdict

MESSAGE_WIDTH = 110
MISSING = "-"  # ASCII: terminals and CI logs


def terminal_summary(
    records: Sequence[ClaimRecord | Mapping[str, Any]],
    report_path: str | os.PathLike | None = None,
) -> str:
    """Subjects (rows) × claims (columns) verdict table, one line per failure or error, the report path.

    ``records`` are ``ClaimRecord`` objects or their JSON dicts; invalid ones raise ``RecordError``.
    """
    recs = coerce_records(records)
    if not recs:
        lines = ["claims: no records"]
    else:
        claims = ordered_claims(recs)
        subjects = ordered_subjects(recs)
        width = max(len("subject"), *(len(s) for s in subjects))
        col = max(len(label) for label in VERDICT_LABELS.values()) + 1
        lines = [f"claims: {verdict_counts(recs)}",
                 "subject".ljust(width) + " " + "".join(c.ljust(col) for c in claims).rstrip()]
        for subject in subjects:
            cells = []
            for claim in claims:
                hits = [r for r in recs if r.claim_id == claim and r.subject == subject]
                cells.append((VERDICT_LABELS[worst_verdict(hits)] if hits else MISSING).ljust(col))
            lines.append(subject.ljust(width) + " " + "".join(cells).rstrip())
        for r in recs:
            if r.verdict != "supported":
                line = f"  {VERDICT_LABELS[r.verdict]} {r.claim_id}[{r.subject}]: {r.message}"
                lines.append(line if len(line) <= MESSAGE_WIDTH else line[: MESSAGE_WIDTH - 3] + "...")
    if report_path is not None:
        lines.append(f"report: {report_path}")
    return "\n".join(lines)
