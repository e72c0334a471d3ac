"""Self-contained HTML rendering of the report's blocks (``claims.html``).

Figures are embedded as base64 PNG data URIs and the style is inline: the page opens from
disk with no network and runs no script.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Sequence

from harness.report.document import VERDICT_LABELS, Block, Bullets, Heading, Image, Paragraph, Table

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 75em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.PASS { background: #d8f0d8; font-weight: bold; }
td.FAIL { background: #f6d5d5; font-weight: bold; }
td.ERROR { background: #f3e0b5; font-weight: bold; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
"""
_VERDICT_CLASSES = set(VERDICT_LABELS.values())


def _td(text: str) -> str:
    cls = f' class="{text}"' if text in _VERDICT_CLASSES else ""
    return f"<td{cls}>{escape(text)}</td>"


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(image: Image, run_dir: Path) -> str:
    data = base64.b64encode((run_dir / image.path).read_bytes()).decode("ascii")
    caption = escape(image.caption)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _block(block: Block, run_dir: Path) -> str:
    if isinstance(block, Heading):
        anchor = f' id="{escape(block.anchor)}"' if block.anchor else ""
        return f"<h{block.level}{anchor}>{escape(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        label = f"<strong>{escape(block.label)}</strong> " if block.label else ""
        return f"<p>{label}{escape(block.text)}</p>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Image):
        return _image(block, run_dir)
    raise TypeError(f"unknown report block {block!r}")


def to_html(blocks: Sequence[Block], run_dir: Path, title: str) -> str:
    """One HTML page of the blocks; image paths are read relative to ``run_dir`` and embedded."""
    body = "\n".join(_block(b, run_dir) for b in blocks)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n")
