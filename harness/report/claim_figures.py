"""The claims' figures, drawn from the records' ``series`` (conventions in ``harness.records``).

Which figures a record gets depends only on the keys of its ``series``; a record without them
gets none. ``FIGURE_KINDS`` lists them in order of importance: a record's first figure is its
claim's main figure, the one beside its headline.

| kind | series keys | claims |
|---|---|---|
| ``rank`` | ``ln_rank``, ``ln_influence`` (+ band, fit, step 0, companion, middle window) | C1, C2, C3 |
| ``training`` | ``steps``, ``standardized`` (+ ``_lo``/``_hi``, ``null_band``) | C4, C9 |
| ``graph`` | ``node_x``, ``node_y``, ``node_community`` (+ ``specialist_ids``) | C5 |
| ``heads`` | ``head_labels``, ``activation_head_effects`` or ``loss_head_effects`` (+ CIs, layers) | C7 |
| ``null`` | ``null_<stat>`` with ``observed_<stat>`` (+ ``unmatched_<stat>``) | C1, C5, C6, C8 |
| ``spectrum`` | ``spec_eigenvalues`` | C6 |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from harness.records import DEFAULT_CI_LEVEL, ClaimRecord
from harness.report.figures import GREY, OKABE_ITO, FigureRef, arr, category_style, draw_png, figure_size, finite
from harness.report.verdicts import slug

# The authors' fixed regime boundaries in ln rank (methods.md §3.3: ranks ≈ 33 and ≈ 245).
PAPER_LN_RANK_CUTS = (3.5, 5.5)
TARGET_COLOURS = {"rare": OKABE_ITO["blue"], "common": OKABE_ITO["orange"]}
OBSERVED_COLOUR = OKABE_ITO["vermillion"]
# Axis labels (with units) of the null-distribution statistics the claims record.
STAT_LABELS = {
    "plateau_score": "plateau score (slope of segment 1 − slope of segment 2, slope units)",
    "kappa": "κ, chance-corrected co-assignment (dimensionless)",
    "participation_ratio": "participation ratio (effective dimensions)",
    "mean_corr": "mean pairwise correlation (Pearson r)",
}
# (panel title, y label) of each ablation metric of C7
METRIC_LABELS = {"activation": ("change of the specialists' activations (decisive)", "% of Σ|a|"),
                 "loss": ("increase of the rare-target loss", "% of the loss")}


def _stat_label(stat: str) -> str:
    if stat.startswith("alpha_"):
        return f"Hill α of the specialists' {stat[len('alpha_'):]} rows (dimensionless)"
    return STAT_LABELS.get(stat, stat.replace("_", " "))


def _level(rec: ClaimRecord) -> float:
    return rec.headline.get("ci_level") or DEFAULT_CI_LEVEL


def _has(*keys: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda series: all(k in series for k in keys)


def _null_stats(series: Mapping[str, Any]) -> list[str]:
    return [k[len("null_"):] for k in series if k.startswith("null_") and k != "null_band"]


def _head_metrics(series: Mapping[str, Any]) -> list[str]:
    return [m for m in ("activation", "loss") if f"{m}_head_effects" in series]


def _interval(ax: Any, x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, colour: str,
              marker: str, label: str) -> None:
    """Points with vertical CI lines (no error-bar arithmetic: a CI need not contain its point)."""
    if lo.size == x.size and hi.size == x.size:
        ax.vlines(x, lo, hi, color=colour, lw=1.5)
    ax.plot(x, y, marker, color=colour, ls="none", ms=5, label=label)


# -- C1–C3: the rank plot -------------------------------------------------------------------------
def _rank_plot(fig: Figure, rec: ClaimRecord) -> str:
    s = rec.series
    own, other = ("common", "rare") if "ln_rank_rare" in s else ("rare", "common")
    ax = fig.add_subplot()
    shown = []
    if all(k in s for k in ("band_x", "band_lo", "band_hi")):
        ax.fill_between(arr(s["band_x"]), arr(s["band_lo"]), arr(s["band_hi"]), color=GREY, alpha=0.4, lw=0,
                        label=f"null curves, central {_level(rec):.0%} band ({own})")
        shown.append("the null curves' band")
    if f"ln_rank_{other}" in s:
        ax.scatter(arr(s[f"ln_rank_{other}"]), arr(s[f"ln_influence_{other}"]), s=5, alpha=0.6,
                   color=TARGET_COLOURS[other], label=f"{other} targets")
    ax.scatter(arr(s["ln_rank"]), arr(s["ln_influence"]), s=6, color=TARGET_COLOURS[own], label=f"{own} targets")
    if "ln_rank_step0" in s:
        ax.plot(arr(s["ln_rank_step0"]), arr(s["ln_influence_step0"]), color=OKABE_ITO["purple"], lw=1.6,
                ls="-.", label="untrained checkpoint (step 0, rare)")
        shown.append("the untrained curve")
    if "middle_x" in s:
        ax.scatter(arr(s["middle_x"]), arr(s["middle_y"]), s=10, color=OBSERVED_COLOUR, label="middle window")
        shown.append("the middle window")
    if "fit_x" in s:
        ax.plot(arr(s["fit_x"]), arr(s["fit_y"]), color="black", lw=1.5, label=f"fitted segments ({own})")
        shown.append("fitted segments")
    for i, b in enumerate(arr(s.get("breakpoints"))):
        ax.axvline(b, color="black", ls=":", lw=1.2, label="fitted breakpoints" if i == 0 else None)
    for i, cut in enumerate(PAPER_LN_RANK_CUTS):
        ax.axvline(cut, color=GREY, ls="--", lw=1, label="papers' cuts 3.5 / 5.5" if i == 0 else None)
    ax.set_xlabel("ln rank (rank 1 = the most influential neuron)")
    ax.set_ylabel("ln I  (I = mean loss increase, nats)")
    ax.legend(loc="lower left")
    extra = f", with {', '.join(shown)}" if shown else ""
    return (f"{rec.claim_id} {rec.subject}: influence of every final-layer neuron by rank (ln–ln), {own} "
            f"targets{' beside ' + other if f'ln_rank_{other}' in s else ''}{extra}.")


# -- C4, C9: a statistic over training -------------------------------------------------------------
def _training(fig: Figure, rec: ClaimRecord) -> str:
    s = rec.series
    ax = fig.add_subplot()
    steps, z = arr(s["steps"]), arr(s["standardized"])
    band = s.get("null_band")
    if band and all(finite(v) for v in band):
        ax.axhspan(*band, color=GREY, alpha=0.4, lw=0, label=f"null band (central {_level(rec):.0%})")
    ax.axhline(0.0, color="black", lw=0.8)
    for key, colour, label in (("early_steps", OKABE_ITO["sky"], "early checkpoints"),
                               ("late_steps", OKABE_ITO["yellow"], "late checkpoints")):
        window = arr(rec.details.get(key))
        if window.size and np.isfinite(window).all():
            ax.axvspan(window.min(), window.max(), color=colour, alpha=0.25, lw=0, label=label)
    _interval(ax, steps, z, arr(s.get("standardized_lo")), arr(s.get("standardized_hi")), OKABE_ITO["blue"],
              "o", f"checkpoint, {_level(rec):.0%} CI")
    positive = steps[steps > 0]
    ax.set_xscale("symlog", linthresh=float(positive.min()) if positive.size else 1.0)
    ax.set_xlabel("training step (symlog scale)")
    statistic = rec.headline.get("statistic", "statistic").replace("late − early change of the ", "")
    ax.set_ylabel(f"{statistic}\n(null SDs of the checkpoint)")
    ax.legend(loc="best")
    return (f"{rec.claim_id} {rec.subject}: {statistic} at each of {steps.size} checkpoints with its CI, "
            f"against the null band (0 = as the checkpoint's null).")


# -- C5: the co-activation graph ------------------------------------------------------------------
def _graph(fig: Figure, rec: ClaimRecord) -> str:
    s = rec.series
    x, y = arr(s["node_x"]), arr(s["node_y"])
    community = np.array([-1 if v is None else int(v) for v in s["node_community"]])
    spec = np.array([int(i) for i in s.get("specialist_ids", []) if 0 <= int(i) < x.size], dtype=int)
    ids, sizes = np.unique(community[community >= 0], return_counts=True)
    rank = {c: i for i, c in enumerate(ids[np.argsort(-sizes, kind="stable")])}
    ax = fig.add_subplot()
    colours = [category_style(rank[c])[0] if c in rank else GREY for c in community]
    ax.scatter(x, y, s=7, c=colours, alpha=0.25, lw=0)
    spec_communities = sorted({int(community[i]) for i in spec}, key=lambda c: rank.get(c, 10**9))
    for n, c in enumerate(spec_communities):
        mine = spec[community[spec] == c]
        colour, marker = category_style(rank[c]) if c in rank else (GREY, "o")
        label = f"community {rank.get(c, c) + 1}: {mine.size} specialists" if n < 8 else None
        ax.scatter(x[mine], y[mine], s=46, color=colour, marker=marker, edgecolors="black", lw=0.8, label=label)
    ax.set_xlabel("layout x (arbitrary units)")
    ax.set_ylabel("layout y (arbitrary units)")
    ax.set_aspect("equal", adjustable="datalim")
    if spec_communities:
        ax.legend(loc="best", title="specialists (large markers)")
    return (f"{rec.claim_id} {rec.subject}: co-activation graph of all {x.size} final-layer neurons laid out by "
            f"Louvain community ({ids.size} communities, faint); the {spec.size} specialists in their community's "
            f"colour and marker.")


# -- C7: head vs layer effects --------------------------------------------------------------------
def _heads_size(rec: ClaimRecord) -> tuple[float, float]:
    s = rec.series
    ticks = len(s.get("head_labels", [])) + len(s.get("layer_labels", [])) + 1
    return figure_size(width_in=1.6 + 0.24 * ticks, rows=len(_head_metrics(s)))


def _heads(fig: Figure, rec: ClaimRecord) -> str:
    s = rec.series
    metrics = _head_metrics(s)
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    labels, layer_labels = list(s["head_labels"]), list(s.get("layer_labels", []))
    x_heads = np.arange(len(labels), dtype=float)
    x_layers = len(labels) + 1 + np.arange(len(layer_labels), dtype=float)
    margin = rec.thresholds.get("c7_head_margin_pct")
    for ax, m in zip(axes, metrics):
        _interval(ax, x_heads, arr(s[f"{m}_head_effects"]), arr(s.get(f"{m}_head_lo")), arr(s.get(f"{m}_head_hi")),
                  OKABE_ITO["blue"], "o", "single head (rare targets), CI")
        if f"{m}_layer_effects" in s:
            _interval(ax, x_layers, arr(s[f"{m}_layer_effects"]), arr(s.get(f"{m}_layer_lo")),
                      arr(s.get(f"{m}_layer_hi")), OBSERVED_COLOUR, "s", "whole attention layer, CI")
        if f"{m}_head_effects_common" in s:
            ax.plot(x_heads, arr(s[f"{m}_head_effects_common"]), "x", color=OKABE_ITO["orange"], ls="none",
                    label="single head, common targets")
        if m == "activation" and finite(margin):
            ax.axhline(margin, color="black", ls="--", lw=1, label=f"head margin {margin:g}%")
        ax.axhline(0.0, color=GREY, lw=0.8)
        ax.set_title(METRIC_LABELS[m][0], loc="left")
        ax.set_ylabel(METRIC_LABELS[m][1])
    legend = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(legend.values(), legend.keys(), loc="outside upper center", ncols=2)
    axes[-1].set_xticks([*x_heads, *x_layers], [*labels, *layer_labels], rotation=90)
    axes[-1].set_xlabel("ablated component (L = layer, H = head)")
    ratio = rec.thresholds.get("c7_min_ratio")
    rule = f"; a layer must exceed the largest head {ratio:g}×" if finite(ratio) else ""
    return (f"{rec.claim_id} {rec.subject}: effect of ablating each single head vs each whole attention layer, "
            f"with CIs{rule}.")


# -- null distributions ---------------------------------------------------------------------------
def _null_size(rec: ClaimRecord) -> tuple[float, float]:
    return figure_size(columns=len(_null_stats(rec.series)))


def _null_distributions(fig: Figure, rec: ClaimRecord) -> str:
    s = rec.series
    stats = _null_stats(s)
    axes = fig.subplots(1, len(stats), squeeze=False)[0]
    for ax, stat in zip(axes, stats):
        null = arr(s[f"null_{stat}"])
        null = null[np.isfinite(null)]
        bins = np.histogram_bin_edges(null, bins=30) if null.size else 10
        ax.hist(null, bins=bins, color=GREY, alpha=0.7, label="null draws (matched)" if f"unmatched_{stat}" in s
                else "null draws")
        unmatched = arr(s.get(f"unmatched_{stat}"))
        if unmatched.size:
            ax.hist(unmatched[np.isfinite(unmatched)], bins=bins, histtype="step", lw=1.5, color=OKABE_ITO["blue"],
                    label="unmatched random groups")
        if finite(s[f"observed_{stat}"]):
            ax.axvline(s[f"observed_{stat}"], color=OBSERVED_COLOUR, lw=2.2, label="observed")
        ax.set_xlabel(_stat_label(stat), fontsize=9 if len(stats) > 1 else 10)
        ax.set_ylabel("null draws (count)")
        ax.legend(loc="best")
    return (f"{rec.claim_id} {rec.subject}: null distribution of {', '.join(_stat_label(k).split(' (')[0] for k in stats)}"
            f" with the observed value.")


# -- C6: the specialists' spectrum ----------------------------------------------------------------
def _spectrum(fig: Figure, rec: ClaimRecord) -> str:
    eig = arr(rec.series["spec_eigenvalues"])
    ax = fig.add_subplot()
    ax.plot(np.arange(1, eig.size + 1), eig, "o-", color=OKABE_ITO["blue"], ms=4)
    if np.any(eig > 0):
        ax.set_yscale("log")
    ax.set_xlabel("principal component (rank)")
    ax.set_ylabel("eigenvalue of the specialists'\ncorrelation matrix (variance units)")
    return f"{rec.claim_id} {rec.subject}: eigenvalue spectrum of the {eig.size} specialists' correlation matrix."


@dataclass(frozen=True)
class FigureKind:
    """A figure a record's series can ask for: its name, when it applies, how to size and draw it."""

    name: str
    applies: Callable[[Mapping[str, Any]], bool]
    draw: Callable[[Figure, ClaimRecord], str]
    size: Callable[[ClaimRecord], tuple[float, float]] = lambda rec: figure_size()


FIGURE_KINDS: tuple[FigureKind, ...] = (
    FigureKind("rank", _has("ln_rank", "ln_influence"), _rank_plot),
    FigureKind("training", _has("steps", "standardized"), _training),
    FigureKind("graph", _has("node_x", "node_y", "node_community"), _graph),
    FigureKind("heads", lambda s: "head_labels" in s and bool(_head_metrics(s)), _heads, _heads_size),
    FigureKind("null", lambda s: bool(_null_stats(s)), _null_distributions, _null_size),
    FigureKind("spectrum", _has("spec_eigenvalues"), _spectrum),
)


def planned_figures(records: Sequence[ClaimRecord], fig_dir: Path) -> list[list[tuple[FigureKind, Path]]]:
    """The figures each record gets and their paths ``<claim>_<kind>_<subject>.png`` (unique), main figure first."""
    taken: set[Path] = set()
    out = []
    for rec in records:
        mine = []
        for kind in FIGURE_KINDS:
            if not kind.applies(rec.series):
                continue
            stem = f"{slug(rec.claim_id)}_{kind.name}_{slug(rec.subject)}"
            path, n = fig_dir / f"{stem}.png", 1
            while path in taken:
                n += 1
                path = fig_dir / f"{stem}_{n}.png"
            taken.add(path)
            mine.append((kind, path))
        out.append(mine)
    return out


def make_figures(records: Sequence[ClaimRecord], fig_dir: Path) -> list[list[FigureRef]]:
    """Draw every figure the records' series allow into ``fig_dir``; aligned with ``records``, main first."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    return [[draw_png(path, lambda fig, k=kind, r=rec: k.draw(fig, r), kind.size(rec), kind.name)
             for kind, path in plan]
            for rec, plan in zip(records, planned_figures(records, fig_dir))]
