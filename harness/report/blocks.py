"""The report's vocabulary: blocks that the Markdown and HTML renderers both understand, and the
formatting of numbers in them.

A page is a list of blocks. Generic ones (``Heading``, ``Paragraph``, ``Table``, ``Bullets``,
``Image``, ``Details``, ``Nav``) render alike; two carry the report's own layouts:
``Headlines`` (one decisive statistic per claim × subject, with its figure) and ``VerdictGrid``
(the front page's families × claims). Blocks hold formatted text and the few numbers a renderer
draws (``Scale``); they never hold records, so renderers know nothing of the schema.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence, Union

from harness.records import DEFAULT_CI_LEVEL

MISSING = "—"


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
    """A PNG figure: ``path`` relative to the page's base directory (or absolute), a one-line caption."""

    path: str
    caption: str


@dataclass(frozen=True)
class Details:
    """Content folded under a one-line summary (HTML ``<details>``; in Markdown it simply follows)."""

    summary: str
    blocks: tuple[Any, ...]


@dataclass(frozen=True)
class Nav:
    """Links to anchors of the page (HTML only: Markdown viewers name anchors their own way)."""

    links: tuple[tuple[str, str], ...]  # (text, anchor)


@dataclass(frozen=True)
class Scale:
    """The numbers of one headline on its own axis: value, CI, null band and smallest effect (same units)."""

    value: float | None
    ci: tuple[float, float] | None
    null_band: tuple[float, float] | None
    smallest_effect: float | None


@dataclass(frozen=True)
class HeadlineRow:
    """One claim on one subject as the headline shows it (texts formatted, ``MISSING`` where absent)."""

    anchor: str
    claim_id: str
    subject: str
    verdict: str  # supported / contradicted / inconclusive / error
    statistic: str
    value: str  # with units
    ci: str
    null_band: str
    smallest_effect: str
    paper: str
    scale_note: str
    calibration: str
    reason: str
    scale: Scale | None = None
    figure: Image | None = None


@dataclass(frozen=True)
class Headlines:
    """Headline cards (HTML) or a headline table (Markdown); ``columns`` = 2 puts cards side by side."""

    rows: tuple[HeadlineRow, ...]
    columns: int = 1


@dataclass(frozen=True)
class GridCell:
    """One cell of the verdict grid: its text, the verdict class it shows, a link target and a tooltip."""

    text: str
    verdict: str = ""  # "" where no record exists
    anchor: str = ""
    title: str = ""


@dataclass(frozen=True)
class GridRow:
    label: str
    note: str
    cells: tuple[GridCell, ...]


@dataclass(frozen=True)
class GridGroup:
    """A family: its summary row and, when it has several subjects, one row per subject (folded)."""

    row: GridRow
    children: tuple[GridRow, ...]
    verdict: str  # the worst verdict of the group, for filtering


@dataclass(frozen=True)
class VerdictGrid:
    columns: tuple[tuple[str, str, str], ...]  # (claim id, short name, link anchor)
    groups: tuple[GridGroup, ...]


Block = Union[Heading, Paragraph, Table, Bullets, Image, Details, Nav, Headlines, VerdictGrid]


def as_number(value: Any) -> float | None:
    """A finite JSON number as a float, else None (bools, strings, null, NaN, infinities)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def as_interval(value: Any) -> tuple[float, float] | None:
    """A JSON ``[lo, hi]`` of finite numbers as a pair, else None."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(as_number(v) is not None for v in value):
        return float(value[0]), float(value[1])
    return None


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a table: ``digits`` significant digits, ``—`` for missing, yes/no for bools."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def fmt_interval(interval: Sequence[Any] | None, digits: int = 4) -> str:
    """``[lo, hi]``, or ``—`` when there is none."""
    if not interval:
        return MISSING
    return f"[{fmt(interval[0], digits)}, {fmt(interval[1], digits)}]"


def fmt_ci(ci: Sequence[Any] | None, level: float) -> str:
    """A CI with its level named when it is not the default 95%."""
    if not ci:
        return MISSING
    suffix = "" if level == DEFAULT_CI_LEVEL else f" ({level:.0%})"
    return fmt_interval(ci) + suffix


def fmt_null(summary: dict[str, Any] | None) -> str:
    """A null summary as ``median [5%, 95%]``."""
    if not summary or "q50" not in summary:
        return MISSING
    return f"{fmt(summary['q50'])} [{fmt(summary.get('q05'))}, {fmt(summary.get('q95'))}]"


def fmt_percent(rate: float | None, interval: Sequence[Any] | None = None) -> str:
    """A proportion in percent, ``4.0% [2.0, 7.0]``."""
    if rate is None:
        return MISSING
    text = f"{100 * rate:.1f}%"
    if interval and None not in interval:
        text += f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"
    return text


def fmt_counts(counts: dict[str, Any]) -> str:
    """``name=value, …`` or ``—``."""
    return ", ".join(f"{k}={fmt(v)}" for k, v in counts.items()) or MISSING
