"""What every figure of the report shares: the colour-blind-safe palette, the style, the size, and
how one figure is drawn and written (matplotlib ``Figure`` objects, no pyplot state, PNG).

Drawing functions take a ``Figure`` and return the figure's one-line caption; ``draw_png``
sizes the figure for its panels, draws it in the report's style and writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from harness.report.blocks import Image, as_number

# Okabe & Ito (2008), "Color universal design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7"}
GREY = "#999999"
# Colours in the order a figure uses them for categories (communities, families); black and yellow last.
CATEGORY_COLOURS = tuple(OKABE_ITO[k] for k in ("blue", "orange", "green", "vermillion", "purple", "sky", "yellow"))
CATEGORY_MARKERS = ("o", "s", "^", "D", "v", "P", "X")

FIGURE_DPI = 100
PANEL_SIZE_IN = (6.4, 4.2)  # one panel: 640 × 420 px at FIGURE_DPI, readable at 100% zoom
PANEL_WIDTH_IN = 3.8  # each panel of a figure with several side by side
MAX_WIDTH_IN = 12.0
STYLE = {
    "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "legend.fontsize": 8.5,
    "xtick.labelsize": 9, "ytick.labelsize": 9, "axes.spines.top": False, "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=list(CATEGORY_COLOURS)), "legend.framealpha": 0.85,
}


@dataclass(frozen=True)
class FigureRef:
    """One written figure: its PNG path, a one-line caption and its kind."""

    path: Path
    caption: str
    kind: str = ""

    def image(self, base: Path) -> Image:
        """The report block of this figure, its path relative to the page's ``base`` directory."""
        return Image(self.path.relative_to(base).as_posix(), self.caption)


def arr(values: Sequence[Any] | None) -> np.ndarray:
    """A float array of a JSON list (``None`` becomes NaN; a missing list, an empty array)."""
    if values is None:
        return np.empty(0)
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def finite(value: Any) -> bool:
    """Whether ``value`` is a finite number."""
    return as_number(value) is not None


def figure_size(columns: int = 1, rows: int = 1, width_in: float | None = None) -> tuple[float, float]:
    """The size in inches of a figure of ``columns`` × ``rows`` panels (or of the given width)."""
    width = width_in or (PANEL_SIZE_IN[0] if columns == 1 else PANEL_WIDTH_IN * columns)
    height = PANEL_SIZE_IN[1] if rows == 1 else 2.6 * rows
    return min(max(width, PANEL_SIZE_IN[0]), MAX_WIDTH_IN), height


def draw_png(path: Path, draw: Callable[[Figure], str], size_in: tuple[float, float] = PANEL_SIZE_IN,
             kind: str = "") -> FigureRef:
    """Draw ``draw(fig) -> caption`` in the report's style and write it as PNG to ``path``."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=size_in, dpi=FIGURE_DPI, layout="constrained")
        caption = draw(fig)
        fig.savefig(path, metadata={"Software": None})
    return FigureRef(path, caption, kind)


def category_style(index: int) -> tuple[str, str]:
    """Colour and marker of the ``index``-th category: 7 colours × 7 markers before any repeats."""
    return (CATEGORY_COLOURS[index % len(CATEGORY_COLOURS)],
            CATEGORY_MARKERS[(index // len(CATEGORY_COLOURS)) % len(CATEGORY_MARKERS)])
