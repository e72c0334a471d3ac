"""The report's content as a list of blocks, rendered alike to Markdown and HTML.

``build_document`` lays out a run: metadata, the verdict matrix (claims × subjects), then one
section per claim (statement, decision rule, the paper's numbers, a table of statistic / CI /
null / p raw and Holm / verdict per subject, notes per subject, figures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

from harness.records import DEFAULT_CI_LEVEL, ClaimRecord, RunMetadata
from harness.report.figures import FigureRef

VERDICT_LABELS = {"supported": "SUPPORTED", "contradicted": "CONTRADICTED", "inconclusive": "INCONCLUSIVE", "error": "ERROR"}
MISSING = "—"
# A cell holding several verdicts shows the worst one.
_SEVERITY = {"supported": 0, "inconclusive": 1, "contradicted": 2, "error": 3}


@dataclass(frozen=True)
class Heading:
    text: str
    level: int
    anchor: str = ""


@dataclass(frozen=True)
class Paragraph:
    text: str
    label: str = ""


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Image:
    path: str  # relative to the run directory
    caption: str


Block = Union[Heading, Paragraph, Table, Bullets, Image]


def fmt(value: Any) -> str:
    """A statistic for a table: 4 significant digits, ``—`` for missing, yes/no for bools."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fmt_ci(ci: Sequence[Any] | None, level: float) -> str:
    if not ci:
        return MISSING
    suffix = "" if level == DEFAULT_CI_LEVEL else f" ({level:.0%})"
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]{suffix}"


def fmt_null(summary: dict[str, Any] | None) -> str:
    if not summary or "q50" not in summary:
        return MISSING
    return f"{fmt(summary['q50'])} [{fmt(summary.get('q05'))}, {fmt(summary.get('q95'))}]"


def claim_order(claim_id: str) -> tuple[int, str]:
    """Sort key putting C2 before C10."""
    digits = "".join(ch for ch in claim_id if ch.isdigit())
    return (int(digits) if digits else 10**9, claim_id)


def claim_title(claim_id: str, claims: dict[str, dict[str, Any]] | None = None) -> str:
    claim = (claims or {}).get(claim_id)
    return f"{claim_id} {claim['name']}" if claim else claim_id


def ordered_claims(records: Sequence[ClaimRecord]) -> list[str]:
    """Claim ids present in the records: registry order, then unknown ids sorted."""
    present = {r.claim_id for r in records}
    return sorted(present, key=claim_order)


def ordered_subjects(records: Sequence[ClaimRecord], requested: Sequence[str] = ()) -> list[str]:
    """Subjects present in the records: the requested order first, then first appearance."""
    present = list(dict.fromkeys(r.subject for r in records))
    return [s for s in requested if s in present] + [s for s in present if s not in requested]


def worst_verdict(records: Sequence[ClaimRecord]) -> str:
    """The most severe verdict of the records (error > contradicted > inconclusive > supported)."""
    return max((r.verdict for r in records), key=_SEVERITY.__getitem__)


def verdict_counts(records: Sequence[ClaimRecord]) -> str:
    """``"3 supported, 1 contradicted, 0 inconclusive, 1 error (5 records)"``."""
    counts = ", ".join(f"{sum(r.verdict == v for r in records)} {v}" for v in VERDICT_LABELS)
    return f"{counts} ({len(records)} records)"


def verdict_matrix(records: Sequence[ClaimRecord], subjects: Sequence[str],
                   claims: dict[str, dict[str, Any]] | None = None) -> Table:
    """Claims (rows) × subjects (columns): the verdict label, ``—`` where no record exists."""
    rows = []
    for claim_id in ordered_claims(records):
        cells = []
        for subject in subjects:
            hits = [r for r in records if r.claim_id == claim_id and r.subject == subject]
            cells.append(VERDICT_LABELS[worst_verdict(hits)] if hits else MISSING)
        rows.append((claim_title(claim_id, claims), *cells))
    return Table(("Claim", *subjects), tuple(rows))


def _metadata_table(meta: RunMetadata) -> Table:
    def pairs(d: dict[str, Any]) -> str:
        return ", ".join(f"{k}={fmt(v)}" for k, v in sorted(d.items())) or MISSING

    commit = meta.git_commit or "not in git"
    if meta.git_commit and meta.git_dirty:
        commit += " (uncommitted changes)"
    rows = (
        ("date", meta.date),
        ("command", meta.command_line),
        ("harness", f"{meta.harness_version} (record schema v{meta.schema_version})"),
        ("git commit", commit),
        ("subjects", ", ".join(meta.subjects) or MISSING),
        ("device", meta.device or MISSING),
        ("versions", f"python {meta.python_version}, torch {fmt(meta.torch_version)}, "
                     f"transformer-lens {fmt(meta.transformer_lens_version)}"),
        ("platform", meta.platform or MISSING),
        ("seeds", pairs(meta.seeds)),
        ("settings", pairs(meta.settings)),
    )
    return Table(("Run", "Value"), rows)


def _quantities(rec: ClaimRecord) -> list[str]:
    return list(dict.fromkeys([*rec.statistics, *rec.ci, *rec.p_values]))


def _claim_table(records: Sequence[ClaimRecord]) -> Table:
    rows = []
    for rec in records:
        verdict = VERDICT_LABELS[rec.verdict]
        names = _quantities(rec)
        if rec.verdict == "error" or not names:
            rows.append((rec.subject, MISSING, MISSING, MISSING, MISSING, MISSING, MISSING, verdict))
            continue
        for i, name in enumerate(names):
            rows.append((
                rec.subject if i == 0 else "",
                name,
                fmt(rec.statistics.get(name)),
                fmt_ci(rec.ci.get(name), rec.ci_levels.get(name, DEFAULT_CI_LEVEL)),
                fmt_null(rec.null.get(name)),
                fmt(rec.p_values.get(name)),
                fmt(rec.p_values_holm.get(name)),
                verdict if i == 0 else "",
            ))
    header = ("Subject", "Quantity", "Value", "CI", "Null median [5%, 95%]", "p", "p (Holm)", "Verdict")
    return Table(header, tuple(rows))


def _note(rec: ClaimRecord, registry_paper: str) -> str:
    label = VERDICT_LABELS[rec.verdict]
    parts = [f"{rec.subject} — {label}: {rec.message or MISSING}"]
    if rec.reason:
        parts.append(rec.reason)
    checks = {**rec.supported_checks, **{f"against: {k}": v for k, v in rec.contradicted_checks.items()}}
    if checks:
        parts.append("checks: " + ", ".join(f"{k} {'✓' if v else '✗'}" for k, v in checks.items()))
    if rec.sample_sizes:
        parts.append("n: " + ", ".join(f"{k}={v}" for k, v in rec.sample_sizes.items()))
    if rec.seeds:
        parts.append("seeds: " + ", ".join(f"{k}={v}" for k, v in rec.seeds.items()))
    if rec.paper and rec.paper != registry_paper:
        parts.append(f"paper: {rec.paper}")
    if rec.elapsed_s:
        parts.append(f"{rec.elapsed_s:.1f} s")
    return "; ".join(parts)


def build_document(
    meta: RunMetadata,
    records: Sequence[ClaimRecord],
    figures: Sequence[Sequence[FigureRef]],
    run_dir: Path,
) -> list[Block]:
    """The report's blocks; ``figures`` is aligned with ``records`` (paths inside ``run_dir``)."""
    subjects = ordered_subjects(records, meta.subjects)
    blocks: list[Block] = [
        Heading(f"Claims report — {meta.date}", 1),
        Paragraph(verdict_counts(records), label="Verdicts:"),
        Heading("Run", 2, "run"),
        _metadata_table(meta),
        Heading("Verdict matrix", 2, "matrix"),
        verdict_matrix(records, subjects, meta.claims) if records else Paragraph("No records in this run."),
    ]
    for claim_id in ordered_claims(records):
        claim = meta.claims.get(claim_id)
        mine = sorted(
            (i for i, r in enumerate(records) if r.claim_id == claim_id),
            key=lambda i: subjects.index(records[i].subject),
        )
        recs = [records[i] for i in mine]
        blocks.append(Heading(claim_title(claim_id, meta.claims), 2, claim_id))
        if claim:
            blocks += [
                Paragraph(claim["statement"], label="Statement:"),
                Paragraph(claim["rule"], label="Decision rule:"),
                Paragraph(claim["effect"], label="Smallest effect of interest:"),
                Paragraph(claim["paper"], label="Paper's numbers:"),
            ]
        blocks += [_claim_table(recs), Bullets(tuple(_note(r, claim["paper"] if claim else "") for r in recs))]
        for i in mine:
            blocks += [Image(ref.path.relative_to(run_dir).as_posix(), ref.caption) for ref in figures[i]]
    return blocks
