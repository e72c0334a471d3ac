"""What changed between two runs: verdicts first, then the claims whose decision rule changed (rule
version), then statistics that moved beyond their CIs, then every other difference (statistics, CIs,
p-values, sample sizes) and the metadata.

``comparison(a, b)`` computes it once (``Comparison``); ``compare`` writes it as text (the CLI
prints it) and ``harness.report.compare_html`` as a page. Records pair by claim and subject.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.records import ClaimRecord, RunMetadata
from harness.report.blocks import as_interval, as_number, fmt
from harness.report.rundir import load_run, with_holm
from harness.report.verdicts import claim_order

# Relative tolerance under which two numbers count as unchanged (JSON round-trips are exact;
# this only absorbs float noise between platforms).
REL_TOL = 1e-9
COMPARED_FIELDS = ("statistics", "ci", "p_values", "p_values_holm", "sample_sizes")
HEADLINE = "headline"


@dataclass(frozen=True)
class Moved:
    """A statistic whose value in one run lies outside the other run's CI for it."""

    claim_id: str
    subject: str
    name: str
    a: float
    ci_a: tuple[float, float] | None
    b: float
    ci_b: tuple[float, float] | None


@dataclass(frozen=True)
class FieldChange:
    """Any other difference of one record field entry (``statistics.plateau_score``, ``ci.…``, …)."""

    claim_id: str
    subject: str
    field: str
    key: str
    a: Any
    b: Any


@dataclass
class Comparison:
    """Run A against run B, paired by (claim, subject)."""

    run_a: Path
    run_b: Path
    meta_a: RunMetadata
    meta_b: RunMetadata
    a: dict[tuple[str, str], ClaimRecord]
    b: dict[tuple[str, str], ClaimRecord]
    metadata: list[tuple[str, Any, Any]] = field(default_factory=list)
    verdicts: list[tuple[str, str]] = field(default_factory=list)
    rules: list[tuple[str, str]] = field(default_factory=list)
    only_a: list[tuple[str, str]] = field(default_factory=list)
    only_b: list[tuple[str, str]] = field(default_factory=list)
    moved: list[Moved] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)
    unchanged: int = 0

    @property
    def both(self) -> list[tuple[str, str]]:
        return [k for k in self.a if k in self.b]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return all(_same(x, y) for x, y in zip(a, b))
    return a == b


def show(value: Any) -> str:
    """A value of either run for a line or a cell (intervals as ``[lo, hi]``)."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return fmt(value)


def delta(a: Any, b: Any) -> str:
    """``b − a`` when both are numbers, else ``""``."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return fmt(float(b - a))
    return ""


def _outside(value: float, ci: tuple[float, float] | None) -> bool:
    return ci is not None and not ci[0] <= value <= ci[1]


def _with_ci(rec: ClaimRecord) -> dict[str, tuple[Any, Any]]:
    """The record's quantities that have a CI: name → (value, ci), the headline's included."""
    out = {name: (rec.statistics.get(name), ci) for name, ci in rec.ci.items()}
    if rec.headline.get("statistic"):
        out[f"{HEADLINE}: {rec.headline['statistic']}"] = (rec.headline.get("value"), rec.headline.get("ci"))
    return out


def moved_statistics(a: ClaimRecord, b: ClaimRecord) -> list[Moved]:
    """Quantities whose value in one run lies outside the other run's CI (both values finite)."""
    qa, qb = _with_ci(a), _with_ci(b)
    out = []
    for name in [k for k in qa if k in qb]:
        va, vb = as_number(qa[name][0]), as_number(qb[name][0])
        ci_a, ci_b = as_interval(qa[name][1]), as_interval(qb[name][1])
        if va is not None and vb is not None and (_outside(vb, ci_a) or _outside(va, ci_b)):
            out.append(Moved(a.claim_id, a.subject, name, va, ci_a, vb, ci_b))
    return out


def field_changes(a: ClaimRecord, b: ClaimRecord) -> list[FieldChange]:
    """Every entry of the compared fields that differs between the two records."""
    out = []
    for name in COMPARED_FIELDS:
        fa, fb = getattr(a, name), getattr(b, name)
        for key in sorted(set(fa) | set(fb)):
            if not _same(fa.get(key), fb.get(key)):
                out.append(FieldChange(a.claim_id, a.subject, name, key, fa.get(key), fb.get(key)))
    return out


def _metadata_changes(a: RunMetadata, b: RunMetadata) -> list[tuple[str, Any, Any]]:
    da, db = a.to_json(), b.to_json()
    out = []
    for key in da:
        if key in ("date", "command_line", "claims"):
            continue
        va, vb = da[key], db[key]
        if isinstance(va, dict) and isinstance(vb, dict):
            out += [(f"{key}.{k}", va.get(k), vb.get(k)) for k in sorted(set(va) | set(vb))
                    if not _same(va.get(k), vb.get(k))]
        elif not _same(va, vb):
            out.append((key, va, vb))
    return out


def _key(k: tuple[str, str]) -> tuple[tuple[int, str], str]:
    return claim_order(k[0]), k[1]


def comparison(run_a: str | os.PathLike, run_b: str | os.PathLike) -> Comparison:
    """What changed from run A to run B (both read from their ``claims.json``)."""
    meta_a, recs_a = load_run(run_a)
    meta_b, recs_b = load_run(run_b)
    c = Comparison(Path(run_a), Path(run_b), meta_a, meta_b,
                   {(r.claim_id, r.subject): r for r in with_holm(recs_a)},
                   {(r.claim_id, r.subject): r for r in with_holm(recs_b)})
    c.metadata = _metadata_changes(meta_a, meta_b)
    both = sorted(c.both, key=_key)
    c.verdicts = [k for k in both if c.a[k].verdict != c.b[k].verdict]
    c.rules = [k for k in both if c.a[k].rule_version != c.b[k].rule_version]
    c.only_a = sorted((k for k in c.a if k not in c.b), key=_key)
    c.only_b = sorted((k for k in c.b if k not in c.a), key=_key)
    for k in both:
        moved, changes = moved_statistics(c.a[k], c.b[k]), field_changes(c.a[k], c.b[k])
        c.moved += moved
        c.changes += changes
        c.unchanged += not (changes or moved or k in c.verdicts or k in c.rules)
    return c


def rule_changes(c: Comparison) -> list[tuple[str, int, int, int]]:
    """(claim, version in A, version in B, records) for every claim whose rule version differs between the runs."""
    counts = Counter((k[0], c.a[k].rule_version, c.b[k].rule_version) for k in c.rules)
    return [(cid, va, vb, n) for (cid, va, vb), n in sorted(counts.items(), key=lambda kv: claim_order(kv[0][0]))]


def rule_versions(c: Comparison, key: tuple[str, str]) -> str:
    """``"v2"``, or ``"v1 → v2"`` when the decision rule changed between the runs."""
    va, vb = c.a[key].rule_version, c.b[key].rule_version
    return f"v{va}" if va == vb else f"v{va} → v{vb}"


def compare(run_a: str | os.PathLike, run_b: str | os.PathLike) -> str:
    """A plain-text account of what changed from run A to run B (records paired by claim and subject)."""
    c = comparison(run_a, run_b)
    lines = [f"A: {run_a} ({c.meta_a.date}, commit {c.meta_a.git_commit or 'none'})",
             f"B: {run_b} ({c.meta_b.date}, commit {c.meta_b.git_commit or 'none'})"]
    sections = [
        ("Verdict changes", [f"  {a}[{s}]: {c.a[(a, s)].verdict} -> {c.b[(a, s)].verdict} "
                             f"(rule {rule_versions(c, (a, s))})" for a, s in c.verdicts]),
        ("Rule version changes", [f"  {cid}: v{va} -> v{vb} ({n} records)" for cid, va, vb, n in rule_changes(c)]),
        ("Moved beyond their CIs", [f"  {m.claim_id}[{m.subject}] {m.name}: {fmt(m.a)} {show(m.ci_a)} -> "
                                    f"{fmt(m.b)} {show(m.ci_b)} (Δ {delta(m.a, m.b)})" for m in c.moved]),
        ("Only in A", [f"  {a}[{s}]: {c.a[(a, s)].verdict}" for a, s in c.only_a]),
        ("Only in B", [f"  {a}[{s}]: {c.b[(a, s)].verdict}" for a, s in c.only_b]),
        ("Statistic changes", [f"  {x.claim_id}[{x.subject}] {x.field}.{x.key}: {show(x.a)} -> {show(x.b)}"
                               + (f" (Δ {delta(x.a, x.b)})" if delta(x.a, x.b) else "") for x in c.changes]),
        ("Metadata changes", [f"  {k}: {show(va)} -> {show(vb)}" for k, va, vb in c.metadata]),
    ]
    for title, items in sections:
        lines.append(f"{title} ({len(items)}):" if items else f"{title}: none")
        lines += items
    lines.append(f"Unchanged: {c.unchanged} of {len(c.both)} records present in both runs.")
    return "\n".join(lines)
