"""What changed between two runs: metadata, verdicts, statistics, CIs and p-values."""

from __future__ import annotations

import math
import os
from typing import Any

from harness.records import ClaimRecord, RunMetadata
from harness.report.document import fmt
from harness.report.rundir import load_run, with_holm

# Relative tolerance under which two numbers count as unchanged (JSON round-trips are exact;
# this only absorbs float noise between platforms).
REL_TOL = 1e-9
COMPARED_FIELDS = ("statistics", "ci", "p_values", "p_values_holm", "sample_sizes")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return fmt(value)


def _metadata_changes(a: RunMetadata, b: RunMetadata) -> list[str]:
    da, db = a.to_json(), b.to_json()
    skip = {"date", "command_line"}
    out = []
    for key in da:
        if key in skip:
            continue
        va, vb = da[key], db[key]
        if isinstance(va, dict) and isinstance(vb, dict):
            out += [f"  {key}.{k}: {_show(va.get(k))} -> {_show(vb.get(k))}"
                    for k in sorted(set(va) | set(vb)) if not _same(va.get(k), vb.get(k))]
        elif not _same(va, vb):
            out.append(f"  {key}: {_show(va)} -> {_show(vb)}")
    return out


def _record_changes(a: ClaimRecord, b: ClaimRecord) -> list[str]:
    out = []
    for name in COMPARED_FIELDS:
        fa, fb = getattr(a, name), getattr(b, name)
        for key in sorted(set(fa) | set(fb)):
            va, vb = fa.get(key), fb.get(key)
            if not _same(va, vb):
                delta = ""
                if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and not isinstance(va, bool):
                    delta = f" (Δ {fmt(float(vb - va))})"
                out.append(f"  {a.claim_id}[{a.subject}] {name}.{key}: {_show(va)} -> {_show(vb)}{delta}")
    return out


def compare(run_a: str | os.PathLike, run_b: str | os.PathLike) -> str:
    """A plain-text account of what changed from run A to run B (records paired by claim and subject)."""
    meta_a, recs_a = load_run(run_a)
    meta_b, recs_b = load_run(run_b)
    by_a = {(r.claim_id, r.subject): r for r in with_holm(recs_a)}
    by_b = {(r.claim_id, r.subject): r for r in with_holm(recs_b)}
    both = [k for k in by_a if k in by_b]

    lines = [f"A: {run_a} ({meta_a.date}, commit {meta_a.git_commit or 'none'})",
             f"B: {run_b} ({meta_b.date}, commit {meta_b.git_commit or 'none'})"]
    sections = [
        ("Metadata changes", _metadata_changes(meta_a, meta_b)),
        ("Verdict changes", [f"  {a}[{s}]: {by_a[(a, s)].verdict} -> {by_b[(a, s)].verdict}"
                             for a, s in both if by_a[(a, s)].verdict != by_b[(a, s)].verdict]),
        ("Only in A", [f"  {a}[{s}]: {by_a[(a, s)].verdict}" for a, s in by_a if (a, s) not in by_b]),
        ("Only in B", [f"  {a}[{s}]: {by_b[(a, s)].verdict}" for a, s in by_b if (a, s) not in by_a]),
        ("Statistic changes", [line for k in both for line in _record_changes(by_a[k], by_b[k])]),
    ]
    for title, items in sections:
        lines.append(f"{title} ({len(items)}):" if items else f"{title}: none")
        lines += items
    unchanged = sum(1 for k in both if by_a[k].verdict == by_b[k].verdict and not _record_changes(by_a[k], by_b[k]))
    lines.append(f"Unchanged: {unchanged} of {len(both)} records present in both runs.")
    return "\n".join(lines)
