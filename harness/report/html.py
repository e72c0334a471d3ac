"""Self-contained HTML rendering of the report's blocks (``claims.html``, the comparison page).

Figures are embedded as base64 PNG data URIs, the style is inline and there is no script: a
page opens from disk with no network. Colours are Okabe–Ito's, and every verdict also carries a
glyph and a word. Folding uses ``<details>``; the verdict grid's filter is a CSS checkbox.
"""

from __future__ import annotations

import base64
import struct
from html import escape
from pathlib import Path
from typing import Sequence

from harness.report.blocks import (
    MISSING,
    Block,
    Bullets,
    Details,
    GridCell,
    GridRow,
    Heading,
    HeadlineRow,
    Headlines,
    Image,
    Nav,
    Paragraph,
    Scale,
    Table,
    VerdictGrid,
)
from harness.report.verdicts import VERDICT_GLYPHS, VERDICT_LABELS, verdict_text

# Okabe–Ito: bluish green, vermillion, grey/yellow, reddish purple, as tints behind dark text.
_CSS = """
:root { --sup: #009E73; --con: #D55E00; --inc: #8a7f00; --err: #CC79A7; }
body { font-family: system-ui, sans-serif; margin: 1.2em auto; max-width: 82em; padding: 0 1em; color: #1a1a1a;
       line-height: 1.4; }
h1 { font-size: 1.5em; margin: 0.3em 0; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.15em; margin: 1.4em 0 0.4em; font-size: 1.3em; }
nav { font-size: 0.95em; margin: 0.4em 0 0.8em; } nav a { margin-right: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
figure { margin: 0.8em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.88em; color: #444; }
details.more { margin: 0.6em 0 1em; border: 1px solid #ddd; border-radius: 4px; padding: 0.3em 0.7em; }
details.more > summary { cursor: pointer; font-weight: 600; color: #333; }
.v-supported { background: #d5efe6; } .v-contradicted { background: #f8dccb; }
.v-inconclusive { background: #f6f0c2; } .v-error { background: #f2d9e8; }
td.v-supported, td.v-contradicted, td.v-inconclusive, td.v-error { font-weight: 600; }
.badge { display: inline-block; padding: 0.05em 0.5em; border-radius: 3px; font-size: 0.85em; font-weight: 700;
         border: 1px solid #888; white-space: nowrap; }
.headlines { display: grid; gap: 0.8em; grid-template-columns: repeat(var(--hl-cols, 1), minmax(0, 1fr)); }
.headline { display: grid; grid-template-columns: minmax(18em, 1fr) auto; gap: 0.4em 1em; background: #fff;
            border: 1px solid #ccc; border-left: 6px solid #999; border-radius: 4px; padding: 0.5em 0.8em; }
.headlines.cols2 .headline { grid-template-columns: 1fr; }
.headline.v-supported { border-left-color: var(--sup); } .headline.v-contradicted { border-left-color: var(--con); }
.headline.v-inconclusive { border-left-color: var(--inc); } .headline.v-error { border-left-color: var(--err); }
.headline h3 { margin: 0.1em 0 0.3em; font-size: 1.05em; overflow-wrap: anywhere; }
.headline .stat { margin: 0.2em 0; font-size: 1.02em; } .headline .stat strong { font-size: 1.1em; }
.headline dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.15em 0.7em; margin: 0.4em 0 0;
               font-size: 0.88em; } .headline dt { font-weight: 600; color: #444; } .headline dd { margin: 0; }
.headline figure { margin: 0; max-width: 642px; }
.strip { width: 26em; max-width: 100%; height: auto; display: block; }
.strip-key { font-size: 0.78em; color: #444; margin: 0; }
.k-null { color: #777; } .k-eff { color: var(--con); }
.verdicts { margin: 0.5em 0 1em; }
.vgrid { display: grid; gap: 2px; font-size: 0.86em; }
.vrow { display: grid; grid-template-columns: minmax(10em, 1.4fr) repeat(var(--cols), minmax(4.6em, 1fr)); gap: 2px; }
.vhead > * { background: #eee; font-weight: 700; padding: 0.25em 0.4em; }
.vhead small { display: block; font-weight: 400; color: #444; font-size: 0.85em; }
.vlabel, .vcell { padding: 0.2em 0.4em; overflow-wrap: anywhere; }
.vcell { text-decoration: none; color: inherit; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.vcell.none { color: #888; } .vhead .vcell { white-space: normal; }
.vlabel small { color: #555; margin-left: 0.4em; }
.vfamily > summary { list-style: none; cursor: pointer; } .vfamily > summary::-webkit-details-marker { display: none; }
.vfamily > summary .vlabel::before { content: "▸ "; } .vfamily[open] > summary .vlabel::before { content: "▾ "; }
.vfamily .vlabel { background: #f7f7f7; font-weight: 600; }
.vchild .vlabel { padding-left: 1.8em; font-weight: 400; background: #fbfbfb; }
#only-open:checked ~ .vgrid .vfamily.worst-supported { display: none; }
.legend { font-size: 0.85em; margin-left: 1.5em; } .legend span { padding: 0 0.4em; margin-right: 0.3em; }
"""


def _td(text: str) -> str:
    verdict = next((v for v, label in VERDICT_LABELS.items() if text == label), None)
    cls = f' class="v-{verdict}"' if verdict else ""
    return f"<td{cls}>{escape(text)}</td>"


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return struct.unpack(">II", data[16:24])


def _image(image: Image, base: Path) -> str:
    data = (base / image.path).read_bytes()
    size = _png_size(data)
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    caption = escape(image.caption)
    return (f'<figure><img src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}"{dims} '
            f'alt="{caption}"><figcaption>{caption}</figcaption></figure>')


def _strip(scale: Scale) -> str:
    """A one-line axis: the null band (grey), the CI (black bar) with its value, the smallest effect (dashed)."""
    points = [scale.value, *(scale.ci or ()), *(scale.null_band or ()), scale.smallest_effect, 0.0]
    points = [p for p in points if p is not None]
    if scale.value is None or len(points) < 2:
        return ""
    lo, hi = min(points), max(points)
    pad = (hi - lo) * 0.06 or 1.0
    lo, hi = lo - pad, hi + pad

    def x(v: float) -> float:
        return 12 + (v - lo) / (hi - lo) * 376

    parts = ['<line x1="12" y1="26" x2="388" y2="26" stroke="#777" stroke-width="1"/>',
             f'<line x1="{x(0):.1f}" y1="18" x2="{x(0):.1f}" y2="34" stroke="#777"/>']
    if min(abs(x(0) - x(lo + pad)), abs(x(0) - x(hi - pad))) > 40:  # a zero label that covers no end label
        parts.append(f'<text x="{x(0):.1f}" y="46" font-size="10" text-anchor="middle" fill="#555">0</text>')
    if scale.null_band:
        b0, b1 = scale.null_band
        parts.append(f'<rect x="{x(b0):.1f}" y="14" width="{max(x(b1) - x(b0), 1):.1f}" height="24" '
                     f'fill="#999" fill-opacity="0.45"/>')
    if scale.smallest_effect is not None:
        e = x(scale.smallest_effect)
        parts.append(f'<line x1="{e:.1f}" y1="8" x2="{e:.1f}" y2="44" stroke="#D55E00" stroke-width="2" '
                     f'stroke-dasharray="4 3"/>')
    if scale.ci:
        parts.append(f'<line x1="{x(scale.ci[0]):.1f}" y1="26" x2="{x(scale.ci[1]):.1f}" y2="26" stroke="#000" '
                     f'stroke-width="4"/>')
    parts.append(f'<circle cx="{x(scale.value):.1f}" cy="26" r="5" fill="#0072B2" stroke="#000"/>')
    for v, anchor in ((lo + pad, "start"), (hi - pad, "end")):
        parts.append(f'<text x="{x(v):.1f}" y="46" font-size="10" text-anchor="{anchor}" fill="#555">{v:.3g}</text>')
    title = "decisive statistic with its CI against the null band (grey) and the smallest effect (dashed)"
    return (f'<svg class="strip" viewBox="0 0 400 50" role="img" aria-label="{title}"><title>{title}</title>'
            + "".join(parts) + "</svg>"
            + '<p class="strip-key"><span class="k-null">▬ null band</span> · ━● CI and value · '
              '<span class="k-eff">┆ smallest effect</span></p>')


def _headline(row: HeadlineRow, base: Path) -> str:
    fields = [("Null band", row.null_band), ("Smallest effect", row.smallest_effect), ("Paper", row.paper),
              ("Scale", row.scale_note), ("Calibration", row.calibration), ("Why", row.reason)]
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in fields if v)
    figure = _image(row.figure, base) if row.figure else ""
    measured = f": <strong>{escape(row.value)}</strong>, {escape(row.ci)}" if row.value != MISSING else ""
    stat = f'<p class="stat"><span class="stat-name">{escape(row.statistic)}</span>{measured}</p>'
    return (f'<article class="headline v-{row.verdict}" id="{escape(row.anchor)}" data-claim="{escape(row.claim_id)}">'
            f'<div class="hl-text"><h3>{escape(row.subject)} <span class="badge v-{row.verdict}">'
            f"{escape(verdict_text(row.verdict))}</span></h3>{stat}"
            f"{_strip(row.scale) if row.scale else ''}<dl>{dl}</dl></div>{figure}</article>")


def _headlines(block: Headlines, base: Path) -> str:
    cls = " cols2" if block.columns == 2 else ""
    body = "".join(_headline(row, base) for row in block.rows)
    return f'<div class="headlines{cls}" style="--hl-cols: {block.columns}">{body}</div>'


def _cell(cell: GridCell) -> str:
    cls = f"vcell v-{cell.verdict}" if cell.verdict else "vcell none"
    title = f' title="{escape(cell.title)}"' if cell.title else ""
    if cell.anchor:
        return f'<a class="{cls}" href="#{escape(cell.anchor)}"{title}>{escape(cell.text)}</a>'
    return f'<span class="{cls}"{title}>{escape(cell.text)}</span>'


def _grid_row(row: GridRow, cls: str = "vrow", tag: str = "div") -> str:
    note = f"<small>{escape(row.note)}</small>" if row.note else ""
    return (f'<{tag} class="{cls}"><span class="vlabel">{escape(row.label)}{note}</span>'
            + "".join(_cell(c) for c in row.cells) + f"</{tag}>")


def _grid(grid: VerdictGrid) -> str:
    head = "".join(f'<a class="vcell" href="#{escape(anchor)}">{escape(cid)}<small>{escape(name)}</small></a>'
                   for cid, name, anchor in grid.columns)
    rows = [f'<div class="vrow vhead"><span class="vlabel">Family (subjects)</span>{head}</div>']
    for group in grid.groups:
        if group.children:
            summary = _grid_row(group.row, tag="summary")
            children = "".join(_grid_row(child, "vrow vchild") for child in group.children)
            rows.append(f'<details class="vfamily worst-{group.verdict}">{summary}{children}</details>')
        else:
            rows.append(f'<div class="vfamily worst-{group.verdict}">{_grid_row(group.row)}</div>')
    legend = "".join(f'<span class="v-{v}">{escape(VERDICT_GLYPHS[v])} {v}</span>' for v in VERDICT_LABELS)
    return (f'<div class="verdicts"><input type="checkbox" id="only-open"><label for="only-open">show only families '
            f'with a verdict other than supported</label><span class="legend">{legend}<span>— no record</span></span>'
            f'<div class="vgrid" style="--cols: {len(grid.columns)}">{"".join(rows)}</div></div>')


def _block(block: Block, base: Path) -> str:
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
        return _image(block, base)
    if isinstance(block, Details):
        inner = "\n".join(_block(b, base) for b in block.blocks)
        return f'<details class="more"><summary>{escape(block.summary)}</summary>\n{inner}\n</details>'
    if isinstance(block, Nav):
        return "<nav>" + "".join(f'<a href="#{escape(a)}">{escape(t)}</a>' for t, a in block.links) + "</nav>"
    if isinstance(block, Headlines):
        return _headlines(block, base)
    if isinstance(block, VerdictGrid):
        return _grid(block)
    raise TypeError(f"unknown report block {block!r}")


def to_html(blocks: Sequence[Block], base: Path, title: str) -> str:
    """One HTML page of the blocks; image paths are read relative to ``base`` and embedded."""
    body = "\n".join(_block(b, base) for b in blocks)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n")
