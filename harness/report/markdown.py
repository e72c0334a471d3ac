"""Markdown rendering of the report's blocks (``claims.md``; figures linked, not embedded)."""

from __future__ import annotations

from typing import Sequence

from harness.report.document import Block, Bullets, Heading, Image, Paragraph, Table


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(table: Table) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in table.header) + " |",
             "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


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
        return f"![{_cell(block.caption)}]({block.path})\n\n*{block.caption}*"
    raise TypeError(f"unknown report block {block!r}")


def to_markdown(blocks: Sequence[Block]) -> str:
    """The Markdown text of the blocks."""
    return "\n\n".join(_block(b) for b in blocks) + "\n"
