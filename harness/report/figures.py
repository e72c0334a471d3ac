"""Figures of a run (matplotlib, PNG) drawn from the records' ``series``, nothing recomputed.

Which figure a record gets depends only on the keys of its ``series`` (conventions in
``harness.records``); a record without them gets none. Figures are built on
``matplotlib.figure.Figure`` directly (no pyplot state, no GUI backend).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from harness.records import ClaimRecord

# The authors' fixed regime boundaries in ln rank (methods.md §3.3: ranks ≈ 33 and ≈ 245).
PAPER_LN_RANK_CUTS = (3.5, 5.5)
FIGURE_SIZE_IN = (6.4, 4.2)
FIGURE_DPI = 100

TARGET_COLOURS = {"rare": "tab:blue", "common": "tab:orange"}
# Axis labels (with units) of the conventional null-distribution statistics.
STAT_LABELS = {
    "plateau_score": "plateau score (slope difference, dimensionless)",
    "Q": "Louvain modularity Q (dimensionless)",
    "effective_dim": "effective dimension (principal components)",
    "participation_ratio": "participation ratio (dimensionless)",
    "mean_corr": "mean pairwise correlation (Pearson r)",
    "alpha_in": "Hill α of W_in rows (dimensionless)",
    "alpha_out": "Hill α of W_out rows (dimensionless)",
}


@dataclass(frozen=True)
class FigureRef:
    """One written figure: its PNG path and a one-line caption."""

    path: Path
    caption: str


def _arr(values: Sequence[Any]) -> np.ndarray:
    """A float array of a JSON list (``None`` becomes NaN)."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _finite(value: Any) -> bool:
    return value is not None and bool(np.isfinite(value))


def _has(*keys: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda series: all(k in series for k in keys)


def _null_stats(series: Mapping[str, Any]) -> list[str]:
    return [k[len("null_"):] for k in series if k.startswith("null_") and k != "null_band"]


def _influence(fig: Figure, rec: ClaimRecord) -> str:
    s = rec.series
    own_is_common = "ln_rank_rare" in s
    curves = [("", "common" if own_is_common else "rare"),
              ("_rare" if own_is_common else "_common", "rare" if own_is_common else "common")]
    ax = fig.add_subplot()
    for suffix, targets in curves:
        if f"ln_rank{suffix}" in s and f"ln_influence{suffix}" in s:
            ax.scatter(_arr(s[f"ln_rank{suffix}"]), _arr(s[f"ln_influence{suffix}"]), s=4,
                       color=TARGET_COLOURS[targets], label=f"{targets} targets")
    if "fit_x" in s and "fit_y" in s:
        ax.plot(_arr(s["fit_x"]), _arr(s["fit_y"]), color="black", lw=1.5,
                label=f"fitted segments ({curves[0][1]})")
    for i, b in enumerate(_arr(s.get("breakpoints", []))):
        ax.axvline(b, color="black", ls=":", lw=1, label="fitted breakpoints" if i == 0 else None)
    for i, cut in enumerate(PAPER_LN_RANK_CUTS):
        ax.axvline(cut, color="grey", ls="--", lw=1, label="papers' cuts 3.5 / 5.5" if i == 0 else None)
    ax.set_xlabel("ln rank (rank 1 = most influential neuron)")
    ax.set_ylabel("ln I  (I = mean loss increase, nats)")
    ax.legend(fontsize=8, loc="lower left")
    return (f"{rec.claim_id} {rec.subject}: influence of final-MLP neurons by rank (ln–ln), rare vs common "
            f"targets, fitted segments and breakpoints; dashed: the papers' ln-rank cuts 3.5 / 5.5.")


def _steps_axis(ax: Any) -> None:
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("training step (symlog scale)")


def _plateau_training(fig: Figure, rec: ClaimRecord) -> str:
    s = rec.series
    axes = fig.subplots(2 if "exponent" in s else 1, 1, sharex=True, squeeze=False)[:, 0]
    steps = _arr(s["steps"])
    top = axes[0]
    if "null_band" in s and all(_finite(v) for v in s["null_band"]):
        top.axhspan(*s["null_band"], color="grey", alpha=0.25, label="null band")
    top.plot(steps, _arr(s["plateau_score"]), "o-", color="tab:blue", label="plateau score")
    top.set_ylabel("plateau score\n(slope difference)")
    top.legend(fontsize=8)
    if "exponent" in s:
        axes[1].plot(steps, _arr(s["exponent"]), "s-", color="tab:green")
        axes[1].set_ylabel("power-law exponent\n(dimensionless)")
    _steps_axis(axes[-1])
    return (f"{rec.claim_id} {rec.subject}: plateau score (and middle-regime exponent) at each training "
            f"checkpoint; grey: the null band of plateau scores.")


def _null_distributions(fig: Figure, rec: ClaimRecord) -> str:
    s = rec.series
    stats = _null_stats(s)
    axes = fig.subplots(1, len(stats), squeeze=False)[0]
    for ax, stat in zip(axes, stats):
        null = _arr(s[f"null_{stat}"])
        ax.hist(null[np.isfinite(null)], bins=30, color="lightgrey", edgecolor="grey", label="null draws")
        if _finite(s[f"observed_{stat}"]):
            ax.axvline(s[f"observed_{stat}"], color="tab:red", lw=2, label="observed")
        ax.set_xlabel(s.get(f"label_{stat}", STAT_LABELS.get(stat, stat)), fontsize=8)
        ax.set_ylabel("null draws (count)")
        ax.legend(fontsize=7)
    return (f"{rec.claim_id} {rec.subject}: null distributions (random neuron groups) of "
            f"{', '.join(stats)}, with the specialists' observed value in red.")


def _head_effects(fig: Figure, rec: ClaimRecord) -> str:
    s = rec.series
    heads = _arr(s["head_effects"])
    labels = s.get("head_labels") or [f"H{i}" for i in range(heads.size)]
    ax = fig.add_subplot()
    ax.bar(range(heads.size), heads, color="tab:blue", label="single head")
    ax.bar([heads.size], _arr([s["layer_effect"]]), color="tab:red", label="whole attention layer")
    ax.set_xticks(range(heads.size + 1), [*labels, "layer"], rotation=90, fontsize=7)
    for key, style in (("max_single_head_pct", ":"), ("min_layer_pct", "--")):
        if isinstance(rec.thresholds.get(key), (int, float)):
            ax.axhline(rec.thresholds[key], color="black", ls=style, lw=1, label=f"{key} = {rec.thresholds[key]:g}")
    ax.set_xlabel("ablated component")
    ax.set_ylabel("rare-target loss increase (%)")
    ax.legend(fontsize=8)
    return (f"{rec.claim_id} {rec.subject}: % increase of rare-target loss when mean-ablating each single "
            f"head vs the whole attention layer, with the decision thresholds.")


def _alpha_training(fig: Figure, rec: ClaimRecord) -> str:
    s = rec.series
    steps = _arr(s["steps"])
    ax = fig.add_subplot()
    ax.plot(steps, _arr(s["alpha_spec"]), "o-", color="tab:red", label="specialists")
    ax.plot(steps, _arr(s["alpha_null_median"]), "s-", color="grey", label="random groups (median)")
    ax.set_ylabel("Hill α (dimensionless)")
    _steps_axis(ax)
    ax.legend(fontsize=8)
    return (f"{rec.claim_id} {rec.subject}: Hill α of the specialists' weight spectrum vs the median of "
            f"random groups at each training checkpoint.")


# (file-name kind, applies to a series, draw into a figure and return the caption)
FIGURE_KINDS: tuple[tuple[str, Callable[[Mapping[str, Any]], bool], Callable[[Figure, ClaimRecord], str]], ...] = (
    ("influence", _has("ln_rank", "ln_influence"), _influence),
    ("plateau_training", _has("steps", "plateau_score"), _plateau_training),
    ("null", lambda s: bool(_null_stats(s)), _null_distributions),
    ("heads", _has("head_effects", "layer_effect"), _head_effects),
    ("alpha_training", _has("steps", "alpha_spec", "alpha_null_median"), _alpha_training),
)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "x"


def make_figures(records: Sequence[ClaimRecord], fig_dir: Path) -> list[list[FigureRef]]:
    """Draw every figure the records' series allow into ``fig_dir`` (old PNGs there removed).

    Returns, aligned with ``records``, the list of figures of each record.
    """
    fig_dir.mkdir(parents=True, exist_ok=True)
    for old in fig_dir.glob("*.png"):
        old.unlink()
    out: list[list[FigureRef]] = []
    for rec in records:
        refs = []
        for kind, applies, draw in FIGURE_KINDS:
            if not applies(rec.series):
                continue
            fig = Figure(figsize=FIGURE_SIZE_IN, dpi=FIGURE_DPI, layout="constrained")
            caption = draw(fig, rec)
            path = fig_dir / f"{_slug(rec.claim_id)}_{kind}_{_slug(rec.subject)}.png"
            suffix = 1
            while path.exists():
                suffix += 1
                path = fig_dir / f"{_slug(rec.claim_id)}_{kind}_{_slug(rec.subject)}_{suffix}.png"
            fig.savefig(path, metadata={"Software": None})
            refs.append(FigureRef(path, caption))
        out.append(refs)
    return out
