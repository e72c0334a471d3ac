"""The headline of a record: its verdict, the one decisive statistic with its CI next to the null band,
the smallest effect and the paper's number (with the note that says when the scales differ), the
calibrated size and power of the procedure at this sample size, and the main figure.

Reads ``record.headline`` (``{statistic, value, ci, ci_level, null_band, smallest_effect,
paper, scale_note, units}``) and ``record.calibration`` (``{size, size_ci, size_family, power,
power_ci, power_family, sample_sizes, repetitions, rule_version, written}``, with ``outside_size``,
``outside_size_ci``, ``outside_family``, ``outside_breaks`` where a family broke the rule's assumptions, ``{}`` when none,
``{"stale": why}`` when the table is of another rule version).
"""

from __future__ import annotations

from typing import Any, Mapping

from harness.records import DEFAULT_CI_LEVEL, ClaimRecord
from harness.report.blocks import (
    MISSING,
    HeadlineRow,
    Image,
    Scale,
    as_interval,
    as_number,
    fmt,
    fmt_counts,
    fmt_interval,
    fmt_percent,
)
from harness.report.verdicts import record_anchor

DIGITS = 3
NO_HEADLINE = "no decisive statistic (see why)"


def calibration_text(calibration: Mapping[str, Any]) -> str:
    """``size 4.0% [2.0, 7.0] under “lognormal influences”; power 93.0% [89.0, 96.0] against “planted
    plateau”; 200 repetitions at rare_positions=2000``, or why there is none."""
    if not calibration:
        return "not calibrated (no calibration table cited)"
    if "stale" in calibration:
        return f"calibration stale: {calibration['stale']}"
    parts = []
    if "size" in calibration:
        parts.append(f"size {fmt_percent(calibration['size'], calibration.get('size_ci'))} under "
                     f"“{calibration.get('size_family', MISSING)}”")
    if "outside_size" in calibration:
        parts.append(f"outside the rule's assumption “{calibration.get('outside_breaks', MISSING)}”: "
                     f"{fmt_percent(calibration['outside_size'], calibration.get('outside_size_ci'))} under "
                     f"“{calibration.get('outside_family', MISSING)}”")
    if "power" in calibration:
        parts.append(f"power {fmt_percent(calibration['power'], calibration.get('power_ci'))} against "
                     f"“{calibration.get('power_family', MISSING)}”")
    where = []
    if calibration.get("repetitions"):
        where.append(f"{calibration['repetitions']} repetitions")
    if calibration.get("sample_sizes"):
        where.append(f"at {fmt_counts(calibration['sample_sizes'])}")
    if where:
        parts.append(" ".join(where))
    return "; ".join(parts) or MISSING


def headline_row(record: ClaimRecord, figure: Image | None = None) -> HeadlineRow:
    """The headline of ``record`` (an error record shows its exception as the reason)."""
    h = record.headline
    units = h.get("units") or ""
    value = as_number(h.get("value"))
    ci, band = as_interval(h.get("ci")), as_interval(h.get("null_band"))
    level = h.get("ci_level") or DEFAULT_CI_LEVEL
    smallest = as_number(h.get("smallest_effect"))
    reason = record.message if record.verdict == "error" else (record.reason or record.message or MISSING)
    scale = Scale(value, ci, band, smallest) if h else None
    return HeadlineRow(
        anchor=record_anchor(record.claim_id, record.subject),
        claim_id=record.claim_id,
        subject=record.subject,
        verdict=record.verdict,
        statistic=h.get("statistic") or NO_HEADLINE,
        value=f"{fmt(value, DIGITS)} {units}".strip() if value is not None else MISSING,
        ci=f"{level:.0%} CI {fmt_interval(ci, DIGITS)}" if ci else MISSING,
        null_band=fmt_interval(band, DIGITS) if band else MISSING,
        smallest_effect=fmt(smallest, DIGITS) if smallest is not None else MISSING,
        paper=h.get("paper") or record.paper or MISSING,
        scale_note=h.get("scale_note") or "",
        calibration=calibration_text(record.calibration),
        reason=reason,
        scale=scale,
        figure=figure,
    )
