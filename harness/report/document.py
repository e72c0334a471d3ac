"""The layout of a run's report as blocks (rendered alike to Markdown and HTML).

Order: title and counts; the verdict grid (families × claims, ``harness.report.frontpage``) and
the recovery of planted specialists where a subject has them;
one section per claim — its statement, the headline of each subject (decisive statistic, CI,
null band, paper, calibrated size and power, main figure; ``harness.report.headline``), then,
folded, the decision rule, every quantity (statistic / CI / null / p raw and Holm), one note per
subject and the other figures; the calibration section when the run has one; the run's metadata.
Claim names, statements and rules come from the run metadata (``metadata.claims``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.records import DEFAULT_CI_LEVEL, ClaimRecord, RunMetadata
from harness.report.blocks import (
    MISSING,
    Block,
    Bullets,
    Details,
    Heading,
    Headlines,
    Nav,
    Paragraph,
    Table,
    fmt,
    fmt_ci,
    fmt_counts,
    fmt_null,
)
from harness.report.figures import FigureRef
from harness.report.frontpage import positive_controls, verdict_grid
from harness.report.headline import headline_row
from harness.report.verdicts import (
    VERDICT_LABELS,
    earlier_checkpoints,
    family_of,
    is_trajectory,
    ordered_claims,
    ordered_subjects,
    verdict_counts,
)


def claim_title(claim_id: str, claims: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """``C1 rare_three_regimes`` (the id alone for a claim the metadata does not describe)."""
    claim = (claims or {}).get(claim_id)
    return f"{claim_id} {claim['name']}" if claim and claim.get("name") else claim_id


def metadata_table(meta: RunMetadata) -> Table:
    """The run: date, command, code, subjects, device, versions, seeds and settings."""
    commit = meta.git_commit or "not in git"
    if meta.git_commit and meta.git_dirty:
        commit += " (uncommitted changes)"
    rows = (
        ("date", meta.date),
        ("command", meta.command_line),
        ("harness", f"{meta.harness_version} (record schema v{meta.schema_version})"),
        ("git commit", commit),
        ("shard", meta.shard or MISSING),
        ("subjects", f"{len(meta.subjects)}: " + ", ".join(meta.subjects) if meta.subjects else MISSING),
        ("device", meta.device or MISSING),
        ("versions", f"python {meta.python_version}, torch {fmt(meta.torch_version)}, "
                     f"transformer-lens {fmt(meta.transformer_lens_version)}"),
        ("platform", meta.platform or MISSING),
        ("seeds", fmt_counts(dict(sorted(meta.seeds.items())))),
        ("settings", fmt_counts(dict(sorted(meta.settings.items())))),
    )
    return Table(("Run", "Value"), rows)


def _quantities(rec: ClaimRecord) -> list[str]:
    return list(dict.fromkeys([*rec.statistics, *rec.ci, *rec.p_values]))


def quantities_table(records: Sequence[ClaimRecord]) -> Table:
    """Every quantity of the records: value, CI, null median [5%, 95%], p raw and Holm, verdict."""
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


def _checks(rec: ClaimRecord) -> str:
    marks = [f"{k} {'✓' if v else '✗'}" for k, v in rec.supported_checks.items()]
    marks += [f"against: {k} {'✓' if v else '✗'}" for k, v in rec.contradicted_checks.items()]
    return ", ".join(marks)


def _provenance(rec: ClaimRecord) -> str:
    hashes = rec.provenance.get("weights_sha256", {})
    digests = rec.provenance.get("measurements", {})
    parts = [f"weights {k}={str(v)[:12]}" for k, v in hashes.items()]
    if digests:
        parts.append(f"{len(digests)} cached measurements")
    return ", ".join(parts)


def record_note(rec: ClaimRecord, claim_paper: str = "") -> str:
    """One line per record: verdict and message, reason, checks, sample sizes, seeds, provenance."""
    parts = [f"{rec.subject} — {VERDICT_LABELS[rec.verdict]}: {rec.message or MISSING}"]
    extras = (("", rec.reason), ("checks: ", _checks(rec)),
              ("n: ", fmt_counts(rec.sample_sizes) if rec.sample_sizes else ""),
              ("seeds: ", fmt_counts(rec.seeds) if rec.seeds else ""), ("provenance: ", _provenance(rec)),
              ("rule version ", str(rec.rule_version) if rec.rule_version else ""))
    parts += [label + text for label, text in extras if text]
    if rec.paper and rec.paper != claim_paper:
        parts.append(f"paper: {rec.paper}")
    if rec.elapsed_s:
        parts.append(f"{rec.elapsed_s:.1f} s")
    return "; ".join(parts)


def claim_section(claim_id: str, records: Sequence[ClaimRecord], figures: Sequence[Sequence[FigureRef]],
                  claims: Mapping[str, Mapping[str, Any]], base: Path) -> list[Block]:
    """One claim: statement, the headline of each record (main figure beside it), then the details folded.

    A family measured at several checkpoints shows its last checkpoint's headline; the earlier
    checkpoints' headlines fold beneath, one block per family.
    """
    claim = claims.get(claim_id, {})
    rows = [headline_row(r, refs[0].image(base) if refs else None) for r, refs in zip(records, figures)]
    earlier = earlier_checkpoints([r.subject for r in records])
    blocks: list[Block] = [Heading(claim_title(claim_id, claims), 2, claim_id)]
    if claim.get("statement"):
        blocks.append(Paragraph(claim["statement"], label="Claim:"))
    blocks.append(Headlines(tuple(row for row in rows if row.subject not in earlier)))
    for family in dict.fromkeys(family_of(s) for s in earlier):
        mine = tuple(row for row in rows if row.subject in earlier and family_of(row.subject) == family)
        blocks.append(Details(f"{claim_id} at {len(mine)} earlier checkpoints of {family}", (Headlines(mine),)))
    folded: list[Block] = [Paragraph(claim[k], label=label) for k, label in (
        ("rule", "Decision rule:"), ("effect", "Smallest effect of interest:"), ("paper", "Paper's numbers:"))
        if claim.get(k)]
    if claim.get("assumptions"):
        folded.append(Paragraph(" ".join(f"“{name}”: {text}." for name, text in claim["assumptions"].items()),
                                label="Assumptions the rule states:"))
    if claim.get("rule_version") is not None:
        folded.append(Paragraph(str(claim["rule_version"]), label="Rule version:"))
    folded += [quantities_table(records), Bullets(tuple(record_note(r, claim.get("paper", "")) for r in records))]
    folded += [ref.image(base) for refs in figures for ref in refs[1:]]
    blocks.append(Details(f"Details of {claim_id}: decision rule, every quantity, notes and further figures",
                          tuple(folded)))
    return blocks


def build_document(meta: RunMetadata, records: Sequence[ClaimRecord], figures: Sequence[Sequence[FigureRef]],
                   base: Path, calibration: Sequence[Block] = ()) -> list[Block]:
    """The report's blocks; ``figures`` is aligned with ``records`` (paths inside ``base``)."""
    subjects = ordered_subjects(records, meta.subjects)
    claim_ids = ordered_claims(records)
    nav = [("Verdicts", "verdicts"), *((c, c) for c in claim_ids)]
    nav += [("Calibration", "calibration")] if calibration else []
    blocks: list[Block] = [
        Heading(f"Claims report — {meta.date}", 1),
        Paragraph(f"{verdict_counts(records)} on {sum(not is_trajectory(s) for s in subjects)} subjects in "
                  f"{len({family_of(s) for s in subjects})} families; commit "
                  f"{(meta.git_commit or 'not in git')[:12]}; command: {meta.command_line}", label="Verdicts:"),
        Nav((*nav, ("Run", "run"))),
        Heading("Verdicts by family", 2, "verdicts"),
        verdict_grid(records, meta.subjects, meta.claims) if records else Paragraph("No records in this run."),
    ]
    controls = positive_controls(records, meta.subjects)
    if controls is not None:
        blocks += [Paragraph("the specialists the group claims (C5–C9) selected, against the neurons planted "
                             "in the subject (its planted_neurons.json).", label="Positive controls:"), controls]
    for claim_id in claim_ids:
        mine = sorted((i for i, r in enumerate(records) if r.claim_id == claim_id),
                      key=lambda i: subjects.index(records[i].subject))
        blocks += claim_section(claim_id, [records[i] for i in mine], [figures[i] for i in mine], meta.claims, base)
    blocks += list(calibration)
    blocks += [Heading("Run", 2, "run"), metadata_table(meta)]
    return blocks
