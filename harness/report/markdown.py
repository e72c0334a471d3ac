"""Markdown rendering of the report's blocks (``claims.md``; figures linked, not embedded).

Markdown cannot fold: a claim's headline table comes first and its details follow under their
own heading; the verdict grid is a family table followed by a table of every subject.
"""

from __future__ import annotations

from typing import Sequence

from harness.report.blocks import (
    Block,
    Bullets,
    Details,
    GridRow,
    Heading,
    Headlines,
    Image,
    Nav,
    Paragraph,
    Table,
    VerdictGrid,
)
from harness.report.verdicts import verdict_text

HEADLINE_HEADER = ("Subject", "Verdict", "Decisive statistic", "Value", "CI", "Null band", "Smallest effect",
                   "Paper (scale)", "Calibrated size and power", "Why")


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(table: Table) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in table.header) + " |",
             "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _image(image: Image) -> str:
    return f"![{_cell(image.caption)}]({image.path})\n\n*{image.caption}*"


def _headlines(block: Headlines) -> str:
    rows = tuple((r.subject, verdict_text(r.verdict), r.statistic, r.value, r.ci, r.null_band, r.smallest_effect,
                  f"{r.paper} ({r.scale_note})" if r.scale_note else r.paper, r.calibration, r.reason)
                 for r in block.rows)
    figures = [_image(r.figure) for r in block.rows if r.figure]
    return "\n\n".join([_table(Table(HEADLINE_HEADER, rows)), *figures])


def _grid_cells(row: GridRow) -> tuple[str, ...]:
    return tuple(c.text for c in row.cells)


def _grid(grid: VerdictGrid) -> str:
    claims = tuple(c for c, _, _ in grid.columns)
    families = Table(("Family", "Subjects", *claims),
                     tuple((g.row.label, g.row.note, *_grid_cells(g.row)) for g in grid.groups))
    parts = [_table(families)]
    children = tuple((child.label, *_grid_cells(child)) for g in grid.groups for child in g.children)
    if children:
        parts += ["**Every subject of the families above:**", _table(Table(("Subject", *claims), children))]
    return "\n\n".join(parts)


def _block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Paragraph):
        return f"**{block.label}** {block.text}" if block.label else block.text
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Image):
        return _image(block)
    if isinstance(block, Details):
        return "\n\n".join([f"### {block.summary}", *(_block(b) for b in block.blocks)])
    if isinstance(block, Nav):
        return ""
    if isinstance(block, Headlines):
        return _headlines(block)
    if isinstance(block, VerdictGrid):
        return _grid(block)
    raise TypeError(f"unknown report block {block!r}")


def to_markdown(blocks: Sequence[Block]) -> str:
    """The Markdown text of the blocks."""
    return "\n\n".join(text for text in (_block(b) for b in blocks) if text) + "\n"
