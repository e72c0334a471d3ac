"""Regimes of a neuron-influence curve: continuous piecewise-linear fits in log-log (C1–C4).

Input is an influence vector ``I`` ``[d_mlp]`` in nats (signed mean Δloss per neuron when it
is ablated). The curve is x = ln rank, y = ln I over the neurons with I > 0, ranked 1..n by
descending I. It is fitted by continuous piecewise-linear functions with 1, 2 and 3 segments
(hinge basis y = b0 + b1·x + Σ_j c_j·(x − τ_j)_+), the breakpoints τ_j chosen by an exhaustive
grid followed by a finer local grid (``harness.analysis.segments``, which fits a batch of curves
at once), and the fits are compared by Gaussian BIC
n·ln(RSS/n) + k·ln n, with k = intercept + slopes + breakpoints (2, 4, 6).

Point weighting (a design choice). Ranks are dense at the right end of the x axis: of 1,024
neurons, 33 lie at ln rank < 3.5 and over 750 at ln rank > 5.5. Fitted on raw points, the
residuals of the decay tail dominate the RSS, BIC counts the tail's points as independent
evidence, and the extra breakpoint of a 3-segment fit goes wherever the tail bends, not to
a plateau of 30–50 neurons. So the curve is first binned evenly in ln rank: bins
[k·h, (k+1)·h) of width ``bin_width`` h (default 0.1), each non-empty bin becoming one point
(mean ln rank, mean ln I of its neurons). Below rank 1/h (= 10) every rank is its own point;
beyond, each point averages more neurons. Every stretch of ln rank then carries weight in
proportion to its length, as the log-log picture the papers read by eye does; nothing is
interpolated, so no point exists where there is no neuron. ``min_segment_points``, n in the
BIC and so the ΔBIC thresholds of the claims all count these binned points. Measured on
synthetic curves (tests/test_regimes.py generators): a planted 40-neuron plateau is found
either way, but on curves with no plateau a raw-point fit reported one (ΔBIC(3 vs 2) of
660–1,020 with the first segment flatter) while the binned fit did not (ΔBIC −7 to 6).

Known limits, measured on the same generators. (i) Single top-ranked neurons are noisier
than the averaged bins further out: with log-normal noise of SD ≥ 0.08 on every neuron,
1–7% of plateau-free curves pass the point-estimate gate (``RegimeFit.reports_plateau``);
none at SD ≤ 0.05. (ii) Where the decay is the noise floor (I crossing 0, ln I plunging),
the last bins dominate the RSS and ΔBIC(3 vs 2) of a real plateau shrinks: 2–12% of planted
plateaus stay under ΔBIC 10 (the plateau is still located). Binning does not make a plateau
by itself; the null curves (step 0, permuted weights), fitted by this same function, are
what guard against false plateaus.

Sign convention. Slopes of ln I against ln rank are negative; ``plateau_score`` =
slope(segment 1) − slope(segment 2) = exponent(segment 2) − exponent(segment 1), positive
when segment 1 is flatter than segment 2 (a plateau), 0 when they are equal.

The middle regime (segment 2 of the 3-segment fit) is also tested as a power law: an OLS of
the raw middle neurons (statsmodels; R², exponent and its standard error) and Clauset-style
likelihood-ratio tests of the middle I values (a continuous power law on [min, max] of the
middle) against a lognormal and an exponential with the ``powerlaw`` package.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import powerlaw
import statsmodels.api as sm
from powerlaw.distributions import Power_Law

from harness.analysis.segments import REFINE_LEVELS, REFINE_STEPS, SegmentFit, SegmentGrid  # noqa: F401 (re-exported)
from harness.analysis.stats import bootstrap_indices, resample_counts

FIXED_CUTS: tuple[float, float] = (3.5, 5.5)
"""The authors' fixed ln-rank boundaries between the three regimes (ranks ≈ 33 and ≈ 245)."""

DEFAULT_BIN_WIDTH = 0.1
"""Default width of the ln-rank bins the curve is averaged over before fitting."""

POWER_LAW_ALPHA_RANGE = [1.0 + 1e-6, 100.0]
"""Range searched for the value-distribution exponent α = 1 + 1/exponent of the middle
regime (rank exponents from 0.01 upward); ``powerlaw``'s default [0, 3] would cut off rank
exponents below 0.5."""


@dataclass(frozen=True)
class LikelihoodRatio:
    """Clauset-style comparison of a power law against ``alternative`` on the middle regime.

    ``R`` is the normalised log-likelihood ratio (positive: power law preferred, negative: the
    alternative preferred) and ``p`` the significance of its sign (non-nested test).
    """

    alternative: str
    R: float
    p: float

    def alternative_preferred(self, alpha: float) -> bool:
        """True when the alternative fits significantly better than the power law at ``alpha``."""
        return self.R < 0 and self.p < alpha


@dataclass(frozen=True)
class RegimeFit:
    """Everything ``fit_regimes`` measures on one influence vector.

    Shapes and units: ``curve_x``/``curve_y`` are the binned curve (ln rank, ln nats) the
    segment fits were made on; ``specialist_ids`` are indices into the original influence
    vector (the neurons with ln rank < the first breakpoint of the 3-segment fit), in rank
    order; ``plateau_percent`` is ``plateau_size`` in % of ``d_mlp``. ``middle_*`` refer to the
    raw neurons between the two breakpoints of the 3-segment fit. ``fixed_cut_slopes`` are
    OLS slopes of the raw curve in ln rank [0, 3.5), [3.5, 5.5), [5.5, ∞) (NaN where a bin has
    fewer than 3 neurons).
    """

    d_mlp: int
    n_positive: int
    bin_width: float
    min_segment_points: int
    curve_x: np.ndarray
    curve_y: np.ndarray
    fits: dict[int, SegmentFit]
    delta_bic_2v1: float
    delta_bic_3v2: float
    plateau_score: float
    flatness: float
    specialist_ids: np.ndarray
    plateau_size: int
    plateau_percent: float
    middle_exponent: float
    middle_n: int
    middle_ols_exponent: float
    middle_ols_exponent_se: float
    middle_r2: float
    middle_alpha: float
    lr_lognormal: LikelihoodRatio
    lr_exponential: LikelihoodRatio
    fixed_cut_slopes: tuple[float, float, float]

    def reports_plateau(self, delta_bic_min: float) -> bool:
        """The point-estimate part of C1: 3 segments beat 2 by more than ``delta_bic_min`` and
        segment 1 is flatter than segment 2 (``plateau_score`` > 0). Otherwise the fit
        reports no plateau. (C1 adds the bootstrap CI and the null curves.)"""
        return self.delta_bic_3v2 > delta_bic_min and self.plateau_score > 0


# ---------------------------------------------------------------------------------------------
# the curve


def _check_influence(influence: np.ndarray | Sequence[float]) -> np.ndarray:
    values = np.asarray(influence, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"influence must be a vector [d_mlp] (nats per neuron), got shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(
            f"influence has {bad.size} non-finite value(s) (first at neuron {bad[0]}); "
            "every neuron needs a finite mean Δloss in nats"
        )
    if not np.any(values > 0):
        raise ValueError(
            f"no neuron has positive influence (all {values.size} are ≤ 0 nats): the ln I curve is empty"
        )
    return values


def _check_options(min_segment_points: int, bin_width: float) -> None:
    if int(min_segment_points) != min_segment_points or min_segment_points < 2:
        raise ValueError(f"min_segment_points must be an integer ≥ 2, got {min_segment_points!r}")
    if not (np.isfinite(bin_width) and bin_width > 0):
        raise ValueError(f"bin_width must be a positive number of ln-rank units, got {bin_width!r}")


def rank_curve(influence: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The raw curve: ``(neuron_ids, ln_rank, ln_influence)``, each ``[n_positive]``.

    Neurons with influence > 0, in descending order of influence (ties by neuron index);
    ln rank = ln 1, ln 2, …; ln influence in ln nats.
    """
    values = _check_influence(influence)
    positive = np.flatnonzero(values > 0)
    order = positive[np.argsort(-values[positive], kind="stable")]
    ln_rank = np.log(np.arange(1, order.size + 1, dtype=float))
    return order, ln_rank, np.log(values[order])


@dataclass(frozen=True)
class _Layout:
    """The ln-rank binning of ranks 1..n_positive and the segment fitter of the binned curve:
    everything about a fit that does not depend on the influence values."""

    bin_starts: np.ndarray
    counts: np.ndarray
    grid: SegmentGrid

    @classmethod
    def build(cls, n_positive: int, bin_width: float, min_points: int) -> "_Layout":
        ln_rank = np.log(np.arange(1, n_positive + 1, dtype=float))
        _, bin_of_rank = np.unique(np.floor(ln_rank / bin_width + 1e-9), return_inverse=True)
        counts = np.bincount(bin_of_rank)
        x = np.bincount(bin_of_rank, weights=ln_rank) / counts
        if x.size < 3 * min_points:
            raise ValueError(
                f"the binned influence curve has {x.size} points ({n_positive} neurons with positive "
                f"influence, bin_width={bin_width}) but a 3-segment fit with min_segment_points="
                f"{min_points} needs at least {3 * min_points}: too few positive neurons "
                "(or lower min_segment_points / bin_width)"
            )
        return cls(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts, SegmentGrid(x, min_points))

    @property
    def x(self) -> np.ndarray:
        """Mean ln rank of each bin ``[n_points]``."""
        return self.grid.x

    def binned(self, ln_influence: np.ndarray) -> np.ndarray:
        """Mean ln I of each bin ``[..., n_points]`` of ranked curves ``[..., n_positive]`` (bins hold consecutive ranks)."""
        return np.add.reduceat(ln_influence, self.bin_starts, axis=-1) / self.counts


def _plateau_score(fit3: SegmentFit) -> float:
    return fit3.slopes[0] - fit3.slopes[1]


def _flatness(fit3: SegmentFit) -> float:
    return 1.0 - fit3.slopes[0] / fit3.slopes[1] if fit3.slopes[1] < 0 else float("nan")


@functools.lru_cache(maxsize=256)
def _layout(n_positive: int, bin_width: float, min_points: int) -> _Layout | None:
    """The layout of a curve with ``n_positive`` points, built once per process; None when too short."""
    try:
        return _Layout.build(n_positive, bin_width, min_points)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# the middle regime and the fixed cuts


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(slope, slope SE, R²) of an OLS of y on x; NaN when fewer than 3 points."""
    if x.size < 3:
        return float("nan"), float("nan"), float("nan")
    result = sm.OLS(y, sm.add_constant(x)).fit()
    return float(result.params[1]), float(result.bse[1]), float(result.rsquared)


def likelihood_ratios(values: np.ndarray) -> tuple[float, LikelihoodRatio, LikelihoodRatio]:
    """Power-law α of ``values`` on [min, max] and its LR tests against lognormal and exponential.

    powerlaw 2.0.0 skips the numerical fit of a continuous power law when the untruncated
    estimate 1 + n/Σ ln(x/xmin) lies in (1.5, 3], even with an ``xmax`` (its docstring says
    otherwise), and keeps that biased estimate: on a planted r^−1 middle it returned α = 2.47
    instead of 2 and the LR test then preferred the lognormal and the exponential (p < 0.01).
    So the power law is refitted here with ``force_numerical_fit=True`` (cf. powerlaw-devs/
    powerlaw issues #89, #108 on xmax). ``nested=False`` is passed explicitly.
    """
    nan = float("nan")
    if values.size < 3 or values.min() == values.max():
        return nan, LikelihoodRatio("lognormal", nan, nan), LikelihoodRatio("exponential", nan, nan)
    lo, hi = float(values.min()), float(values.max())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        fit = powerlaw.Fit(values, xmin=lo, xmax=hi, discrete=False, verbose=0)
        fit.power_law = Power_Law(data=fit.data, xmin=lo, xmax=hi, discrete=False, force_numerical_fit=True,
                                  parameter_ranges={"alpha": POWER_LAW_ALPHA_RANGE}, parent_Fit=fit, verbose=0)
        tests = [
            LikelihoodRatio(alt, *map(float, fit.distribution_compare(
                "power_law", alt, normalized_ratio=True, nested=False)))
            for alt in ("lognormal", "exponential")
        ]
    return float(fit.power_law.alpha), tests[0], tests[1]


def _fixed_cut_slopes(ln_rank: np.ndarray, ln_influence: np.ndarray) -> tuple[float, float, float]:
    edges = (0.0, *FIXED_CUTS, np.inf)
    slopes = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (ln_rank >= lo) & (ln_rank < hi)
        slopes.append(_ols(ln_rank[inside], ln_influence[inside])[0])
    return slopes[0], slopes[1], slopes[2]


# ---------------------------------------------------------------------------------------------
# public entry points


def fit_regimes(influence: np.ndarray | Sequence[float], min_segment_points: int = 5,
                bin_width: float = DEFAULT_BIN_WIDTH) -> RegimeFit:
    """Fit 1, 2 and 3 regimes to the influence curve of ``influence`` ``[d_mlp]`` (nats).

    ``min_segment_points`` is the fewest binned curve points per segment; ``bin_width`` the
    width of the ln-rank bins (see the module docstring). Raises ``ValueError`` for NaN or
    infinite influences, no positive influence, or too few binned points for 3 segments.
    """
    _check_options(min_segment_points, bin_width)
    ids, ln_rank, ln_influence = rank_curve(influence)
    layout = _layout(ids.size, float(bin_width), int(min_segment_points))
    if layout is None:
        _Layout.build(ids.size, bin_width, min_segment_points)  # raises the explanatory ValueError
    y = layout.binned(ln_influence)
    fits = {s: batch.curve(0) for s, batch in layout.grid.fit(y[None]).items()}
    fit3 = fits[3]
    tau1, tau2 = fit3.breakpoints
    d_mlp = int(np.asarray(influence).size)

    specialists = ids[ln_rank < tau1]
    middle = (ln_rank >= tau1) & (ln_rank < tau2)
    ols_slope, ols_se, r2 = _ols(ln_rank[middle], ln_influence[middle])
    alpha, lr_lognormal, lr_exponential = likelihood_ratios(np.exp(ln_influence[middle]))
    return RegimeFit(
        d_mlp=d_mlp,
        n_positive=int(ids.size),
        bin_width=float(bin_width),
        min_segment_points=int(min_segment_points),
        curve_x=layout.x,
        curve_y=y,
        fits=fits,
        delta_bic_2v1=fits[1].bic - fits[2].bic,
        delta_bic_3v2=fits[2].bic - fit3.bic,
        plateau_score=_plateau_score(fit3),
        flatness=_flatness(fit3),
        specialist_ids=specialists,
        plateau_size=int(specialists.size),
        plateau_percent=100.0 * specialists.size / d_mlp,
        middle_exponent=-fit3.slopes[1],
        middle_n=int(middle.sum()),
        middle_ols_exponent=-ols_slope,
        middle_ols_exponent_se=ols_se,
        middle_r2=r2,
        middle_alpha=alpha,
        lr_lognormal=lr_lognormal,
        lr_exponential=lr_exponential,
        fixed_cut_slopes=_fixed_cut_slopes(ln_rank, ln_influence),
    )


def pooled_influence(seq_means: np.ndarray, seq_counts: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Position-weighted influence ``[n_resamples, d_mlp]`` of resampled sequences.

    ``seq_means`` ``[n_seq, d_mlp]`` (nats; rows of sequences without positions may be NaN),
    ``seq_counts`` ``[n_seq]`` selected positions per sequence, ``indices``
    ``[n_resamples, n_seq]`` resampled sequence ids. Row r is Σ_s count_s·mean_s / Σ_s count_s
    over the sequences of resample r (NaN where they hold no position).
    """
    n_seq = seq_means.shape[0]
    weights = resample_counts(indices, n_seq) * seq_counts[None, :]
    sums = weights @ np.where(seq_counts[:, None] > 0, seq_means, 0.0)
    totals = weights.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, sums / totals, np.nan)


def _check_sequences(seq_means: np.ndarray, seq_counts: np.ndarray) -> None:
    if seq_means.ndim != 2:
        raise ValueError(f"seq_means must be [n_seq, d_mlp] (nats), got shape {seq_means.shape}")
    if seq_counts.shape != (seq_means.shape[0],):
        raise ValueError(f"seq_counts must be [n_seq] = [{seq_means.shape[0]}], got shape {seq_counts.shape}")
    if np.any(~np.isfinite(seq_counts)) or np.any(seq_counts < 0):
        raise ValueError("seq_counts must be finite, non-negative numbers of positions")
    if seq_counts.sum() <= 0:
        raise ValueError("no sequence has a selected position (all seq_counts are 0)")
    used = seq_counts > 0
    if np.any(~np.isfinite(seq_means[used])):
        raise ValueError("seq_means has non-finite values in sequences with selected positions")


@dataclass(frozen=True)
class SequenceInfluence:
    """Per-sequence influence of one target set: ``means`` ``[n_seq, d_mlp]`` (nats; NaN rows where a
    sequence has no position) and ``counts`` ``[n_seq]`` positions behind each mean."""

    means: np.ndarray
    counts: np.ndarray

    def pooled(self, sequences: np.ndarray | None = None) -> np.ndarray:
        """Position-weighted mean influence ``[d_mlp]`` over ``sequences`` (default: all)."""
        idx = np.arange(self.counts.size) if sequences is None else np.asarray(sequences)
        return pooled_influence(self.means, self.counts, idx[None])[0]

    def resampled(self, indices: np.ndarray) -> np.ndarray:
        """Pooled influence ``[n_resamples, d_mlp]`` of resampled sequence ids ``[n_resamples, n_seq']``."""
        return pooled_influence(self.means, self.counts, indices)


@dataclass(frozen=True)
class PlateauStatistics:
    """Plateau score, ΔBIC(3 vs 2), first breakpoint (ln rank), plateau size and flatness of many
    curves, each ``[n_curves]``; NaN where a curve has too few positive neurons to fit.

    ``flatness`` = 1 − slope₁ / slope₂ = plateau score / (−slope₂): the plateau score as a share of
    the middle regime's slope, 1 for a flat first segment, 0 for no change of slope. A least-squares
    fit is equivariant under scaling ln I, so flatness does not move with the spread of the
    influences (the score does: a wider lognormal bends more); NaN when slope₂ ≥ 0.
    """

    score: np.ndarray
    delta_bic_3v2: np.ndarray
    first_breakpoint: np.ndarray
    plateau_size: np.ndarray
    flatness: np.ndarray

    @property
    def fitted(self) -> np.ndarray:
        """Bool ``[n_curves]``: curves that could be fitted."""
        return np.isfinite(self.score)


def plateau_statistics(curves: np.ndarray, min_segment_points: int = 5,
                       bin_width: float = DEFAULT_BIN_WIDTH) -> PlateauStatistics:
    """The 3-segment statistics of each influence curve ``[n_curves, d_mlp]`` (nats), as ``fit_regimes``
    computes them for one curve (the same binning, grid and refinement), without the power-law tests.

    Curves with the same number of positive neurons share a binning and are fitted together.
    """
    _check_options(min_segment_points, bin_width)
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    positive = np.isfinite(curves) & (curves > 0)
    ranked = -np.sort(np.where(positive, -curves, np.inf), axis=1)   # descending; non-positive last
    n_positive = positive.sum(axis=1)
    out = np.full((5, curves.shape[0]), np.nan)
    for n in np.unique(n_positive):
        layout = _layout(int(n), float(bin_width), int(min_segment_points))
        if layout is None:
            continue
        rows = np.flatnonzero(n_positive == n)
        fits = layout.grid.fit(layout.binned(np.log(ranked[rows, :n])))
        tau1 = fits[3].breakpoints[:, 0]
        ln_rank = np.log(np.arange(1, n + 1))
        s1, s2 = fits[3].slopes[:, 0], fits[3].slopes[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            flatness = np.where(s2 < 0, 1.0 - s1 / s2, np.nan)
        out[:, rows] = (s1 - s2, fits[2].bic - fits[3].bic, tau1, np.searchsorted(ln_rank, tau1, side="left"),
                        flatness)
    return PlateauStatistics(*out)


def bootstrap_regimes(seq_means: np.ndarray, seq_counts: np.ndarray, n_resamples: int, seed: int,
                      min_segment_points: int = 5, bin_width: float = DEFAULT_BIN_WIDTH) -> PlateauStatistics:
    """Bootstrap over sequences of the 3-segment statistics.

    ``seq_means`` ``[n_seq, d_mlp]``: per-sequence mean Δloss per neuron (nats);
    ``seq_counts`` ``[n_seq]``: the positions each mean is over. Each resample draws sequences
    with replacement (``harness.analysis.stats.bootstrap_indices(n_seq, n_resamples, seed)``: the
    same seed draws the same sequences, so resamples pair across target sets and checkpoints),
    pools them with ``pooled_influence`` and refits the curve.
    """
    seq_means = np.asarray(seq_means, dtype=float)
    seq_counts = np.asarray(seq_counts, dtype=float)
    _check_sequences(seq_means, seq_counts)
    indices = bootstrap_indices(seq_means.shape[0], n_resamples, seed)
    return plateau_statistics(pooled_influence(seq_means, seq_counts, indices), min_segment_points, bin_width)


@dataclass(frozen=True)
class MiddleCurvature:
    """Curvature of ln I over ln rank inside a window: ``slope_change`` = (slope at the window's end) −
    (slope at its start) of a quadratic OLS fit (slope units; 0 for a power law); ``slope_range`` = the
    largest minus the smallest OLS slope of the window's three equal ln-rank thirds (slope units; 0
    for a power law, > 0 for any bend, including an S that leaves the quadratic flat; NaN when a
    third holds < 3 neurons); ``width`` the window in ln rank, ``n`` the neurons in it."""

    slope_change: float
    slope: float
    width: float
    n: int
    slope_range: float


def middle_curvature(influence: np.ndarray, lo: float, hi: float) -> MiddleCurvature:
    """Quadratic fit and thirds' slopes of ln I on ln rank over neurons with ln rank in [lo, hi) of
    ``influence`` [d_mlp]."""
    _, ln_rank, ln_inf = rank_curve(influence)
    inside = (ln_rank >= lo) & (ln_rank < hi)
    n = int(inside.sum())
    if n < 4:
        return MiddleCurvature(float("nan"), float("nan"), float(hi - lo), n, float("nan"))
    x, y = ln_rank[inside], ln_inf[inside]
    centre = 0.5 * (x.min() + x.max())
    c2, c1, _ = np.polyfit(x - centre, y, 2)
    width = float(x.max() - x.min())
    third = np.minimum((3 * (x - x.min()) / max(width, 1e-12)).astype(int), 2)
    slopes = [np.polyfit(x[third == t], y[third == t], 1)[0] if (third == t).sum() >= 3 else np.nan for t in range(3)]
    return MiddleCurvature(float(2 * c2 * width), float(c1), width, n, float(np.max(slopes) - np.min(slopes)))


def resample_neurons(curves: np.ndarray, seed: int) -> np.ndarray:
    """Each row of ``curves`` ``[n_curves, d_mlp]`` with its neurons drawn with replacement (the layer's
    neurons as a sample of its influence distribution): ``[n_curves, d_mlp]``, a fresh draw per row."""
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    draws = np.random.default_rng(seed).integers(0, curves.shape[1], size=curves.shape)
    return np.take_along_axis(curves, draws, axis=1)


def curve_band(curves: np.ndarray, level: float, bin_width: float = DEFAULT_BIN_WIDTH
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise central band of many rank curves ``[n, d_mlp]``: ``(ln_rank, lo, hi)`` of ln I per ln-rank bin."""
    rows = []
    for influence in np.atleast_2d(curves):
        positive = np.sort(influence[influence > 0])[::-1]
        ln_rank = np.log(np.arange(1, positive.size + 1))
        bins = np.floor(ln_rank / bin_width + 1e-9).astype(int)
        rows.append((bins, np.log(positive)))
    top = max(b.max() for b, _ in rows) + 1
    grid = np.full((len(rows), top), np.nan)
    for r, (bins, y) in enumerate(rows):
        grid[r, :bins.max() + 1] = np.bincount(bins, weights=y) / np.maximum(np.bincount(bins), 1)
        grid[r, np.bincount(bins, minlength=top)[: top] == 0] = np.nan
    keep = np.isfinite(grid).sum(0) >= max(2, len(rows) // 2)
    tail = (1 - level) / 2
    with np.errstate(all="ignore"):
        lo, hi = np.nanquantile(grid[:, keep], [tail, 1 - tail], axis=0)
    return (np.flatnonzero(keep) + 0.5) * bin_width, lo, hi
