"""The comparison page of two runs (``python -m harness report --compare A B``): verdict changes first,
each with both runs' headlines and main figures side by side, then the statistics that moved beyond
their CIs, records present in one run only, and, folded, every other difference and the metadata.

Written as one self-contained HTML page (figures embedded) into run B's directory by default.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from harness.records import ClaimRecord
from harness.report.blocks import Block, Details, Heading, Headlines, Image, Nav, Paragraph, Table, fmt
from harness.report.claim_figures import planned_figures
from harness.report.compare import Comparison, comparison, delta, rule_changes, rule_versions, show
from harness.report.headline import headline_row
from harness.report.html import to_html
from harness.report.rundir import FIGURES_DIR, write_text
from harness.report.verdicts import verdict_text


def main_figures(run_dir: Path, records: Sequence[ClaimRecord]) -> dict[tuple[str, str], Image]:
    """The main figure already drawn in ``run_dir/figures`` of each record that has one (absolute paths)."""
    out = {}
    for rec, plan in zip(records, planned_figures(records, run_dir / FIGURES_DIR)):
        if plan and plan[0][1].is_file():
            out[(rec.claim_id, rec.subject)] = Image(str(plan[0][1].resolve()),
                                                     f"{rec.claim_id} {rec.subject}: main figure of run {run_dir.name}")
    return out


def _run_line(name: str, path: Path, c: Comparison, which: str) -> Paragraph:
    meta = c.meta_a if which == "a" else c.meta_b
    return Paragraph(f"{path} — {meta.date}, commit {(meta.git_commit or 'none')[:12]}, command: {meta.command_line}",
                     label=f"{name}:")


def _verdict_blocks(c: Comparison) -> list[Block]:
    rows = tuple((k[0], k[1], verdict_text(c.a[k].verdict), verdict_text(c.b[k].verdict), rule_versions(c, k),
                  c.b[k].reason or c.b[k].message) for k in c.verdicts)
    blocks: list[Block] = [Heading(f"Verdict changes ({len(rows)})", 2, "verdicts")]
    if not rows:
        return blocks + [Paragraph("No verdict changed.")]
    blocks.append(Table(("Claim", "Subject", "A", "B", "Rule", "Why (B)"), rows))
    figures_a = main_figures(c.run_a, list(c.a.values()))
    figures_b = main_figures(c.run_b, list(c.b.values()))
    for k in c.verdicts:
        a = headline_row(c.a[k], figures_a.get(k))
        b = headline_row(c.b[k], figures_b.get(k))
        blocks.append(Headlines((replace(a, anchor=f"A-{a.anchor}", subject=f"A · {k[0]} · {a.subject}"),
                                 replace(b, anchor=f"B-{b.anchor}", subject=f"B · {k[0]} · {b.subject}")), columns=2))
    return blocks


def comparison_blocks(c: Comparison) -> list[Block]:
    """The comparison page's blocks."""
    moved = tuple((m.claim_id, m.subject, m.name, f"{fmt(m.a)} {show(m.ci_a)}", f"{fmt(m.b)} {show(m.ci_b)}",
                   delta(m.a, m.b)) for m in c.moved)
    only = tuple(("A only", k[0], k[1], verdict_text(c.a[k].verdict)) for k in c.only_a) + \
        tuple(("B only", k[0], k[1], verdict_text(c.b[k].verdict)) for k in c.only_b)
    others = tuple((x.claim_id, x.subject, f"{x.field}.{x.key}", show(x.a), show(x.b), delta(x.a, x.b))
                   for x in c.changes)
    metadata = tuple((k, show(va), show(vb)) for k, va, vb in c.metadata)
    rules = tuple((cid, f"v{va}", f"v{vb}", str(n)) for cid, va, vb, n in rule_changes(c))
    summary = (f"{len(c.verdicts)} verdict changes, {len(rules)} claims with another rule version, "
               f"{len(c.moved)} statistics moved beyond their CIs, "
               f"{len(c.only_a)} records only in A, {len(c.only_b)} only in B; {c.unchanged} of {len(c.both)} "
               f"records present in both runs unchanged.")
    blocks: list[Block] = [
        Heading(f"Comparison: {c.run_a.name} → {c.run_b.name}", 1),
        _run_line("A", c.run_a, c, "a"), _run_line("B", c.run_b, c, "b"), Paragraph(summary, label="Summary:"),
        Nav((("Verdict changes", "verdicts"), ("Rule versions", "rules"), ("Moved beyond CIs", "moved"),
             ("One run only", "only"))),
        *_verdict_blocks(c),
        Heading(f"Rule version changes ({len(rules)})", 2, "rules"),
        Table(("Claim", "A", "B", "Records"), rules) if rules
        else Paragraph("Every record was decided by the same rule version in both runs."),
        Heading(f"Statistics that moved beyond their CIs ({len(moved)})", 2, "moved"),
        Table(("Claim", "Subject", "Quantity", "A [CI]", "B [CI]", "Δ (B − A)"), moved) if moved
        else Paragraph("No statistic lies outside the other run's CI."),
        Heading(f"Records in one run only ({len(only)})", 2, "only"),
        Table(("Run", "Claim", "Subject", "Verdict"), only) if only else Paragraph("Both runs hold the same records."),
        Details(f"Every other difference ({len(others)}): statistics, CIs, p-values and sample sizes",
                (Table(("Claim", "Subject", "Field", "A", "B", "Δ (B − A)"), others),) if others
                else (Paragraph("None."),)),
        Details(f"Metadata changes ({len(metadata)})",
                (Table(("Field", "A", "B"), metadata),) if metadata else (Paragraph("None."),)),
    ]
    return blocks


def write_compare(run_a: str | os.PathLike, run_b: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the comparison page (default ``<run_b>/compare-<run_a name>.html``); returns its path."""
    a, b = Path(run_a).resolve(), Path(run_b).resolve()
    path = Path(out) if out else b / f"compare-{a.name}.html"
    c = comparison(a, b)
    write_text(path, to_html(comparison_blocks(c), b, f"Comparison {a.name} → {b.name}"))
    return path
