"""The front page's verdict grid: one row per family (setup), one column per claim.

A family row shows, per claim, the verdict of its one record, or the counts of its records'
verdicts when the family has several checkpoints or seeds measured for that claim (``✓150 ?3
✗1``, coloured by the worst); the claims over training (C4, C9) appear on the family row by
their trajectory record (``family@*``), so 154 Pythia checkpoints stay one row. A family with
several subjects folds one row per subject beneath its row. The grid has as many columns as
claims however many subjects there are. Below it, for subjects with planted specialists (positive
controls), how many of them the selected specialists recover.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

from harness.records import ClaimRecord
from harness.report.blocks import MISSING, GridCell, GridGroup, GridRow, Table, VerdictGrid, fmt
from harness.report.verdicts import (
    SEVERITY,
    VERDICT_GLYPHS,
    family_of,
    is_trajectory,
    ordered_claims,
    ordered_subjects,
    record_anchor,
    step_of,
    worst_verdict,
)


def _cell(records: Sequence[ClaimRecord]) -> GridCell:
    if not records:
        return GridCell(MISSING)
    worst = worst_verdict(records)
    first = next(r for r in records if r.verdict == worst)
    anchor = record_anchor(first.claim_id, first.subject)
    if len(records) == 1:
        return GridCell(f"{VERDICT_GLYPHS[worst]} {worst}", worst, anchor,
                        f"{first.claim_id} on {first.subject}: {first.reason or first.message}")
    counts = Counter(r.verdict for r in records)
    order = sorted(counts, key=SEVERITY.__getitem__)
    text = " ".join(f"{VERDICT_GLYPHS[v]}{counts[v]}" for v in order)
    title = f"{first.claim_id} on {len(records)} subjects: " + ", ".join(f"{counts[v]} {v}" for v in order)
    return GridCell(text, worst, anchor, title)


def _row(label: str, note: str, records: Sequence[ClaimRecord], claim_ids: Sequence[str]) -> GridRow:
    return GridRow(label, note, tuple(_cell([r for r in records if r.claim_id == c]) for c in claim_ids))


def _subject_key(subject: str) -> tuple[int, int, str]:
    step = step_of(subject)
    return (1 if is_trajectory(subject) else 0, -1 if step is None else step, subject)


def _note(subjects: Sequence[str], requested: int) -> str:
    points = [s for s in subjects if not is_trajectory(s)]
    n = max(requested, len(points))
    parts = [f"{n} checkpoints" if n > 1 else ""]
    if any(is_trajectory(s) for s in subjects):
        parts.append("trend claims over training")
    return ", ".join(p for p in parts if p)


def short_name(claim_id: str, claims: Mapping[str, Mapping[str, Any]]) -> str:
    """A claim's registered name in words (``rare three regimes``), or the id alone."""
    return claims.get(claim_id, {}).get("name", "").replace("_", " ")


def verdict_grid(records: Sequence[ClaimRecord], requested: Sequence[str] = (),
                 claims: Mapping[str, Mapping[str, Any]] | None = None) -> VerdictGrid:
    """Families (rows, in the order subjects were requested) × claims (columns) of a run's records."""
    claims = claims or {}
    claim_ids = ordered_claims(records)
    families: dict[str, list[str]] = {}
    for subject in ordered_subjects(records, requested):
        families.setdefault(family_of(subject), []).append(subject)
    n_requested = Counter(family_of(s) for s in requested)
    groups = []
    for family, subjects in families.items():
        mine = [r for r in records if family_of(r.subject) == family]
        subjects = sorted(subjects, key=_subject_key)
        children = tuple(_row(s, "", [r for r in mine if r.subject == s], claim_ids) for s in subjects) \
            if len(subjects) > 1 else ()
        label = family if len(subjects) > 1 else subjects[0]
        groups.append(GridGroup(_row(label, _note(subjects, n_requested[family]), mine, claim_ids), children,
                                worst_verdict(mine)))
    columns = tuple((c, short_name(c, claims), c) for c in claim_ids)
    return VerdictGrid(columns, tuple(groups))


def positive_controls(records: Sequence[ClaimRecord], requested: Sequence[str] = ()) -> Table | None:
    """Subject × recovery of its planted neurons by the specialists its group records selected (the first
    such record per subject: selection is shared by the subject's claims), or None without planted subjects."""
    rows = []
    for subject in ordered_subjects(records, requested):
        found = next((r.details["planted_recovery"] for r in records
                      if r.subject == subject and "planted_recovery" in r.details), None)
        if found is not None:
            rows.append((subject, str(found["planted"]), str(found["selected"]), str(found["recovered"]),
                         fmt(found["precision"], 2), fmt(found["recall"], 2)))
    if not rows:
        return None
    return Table(("Subject", "Planted neurons", "Specialists selected", "Planted among them", "Precision",
                  "Recall"), tuple(rows))
