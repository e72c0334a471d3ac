"""Shared statistical primitives: empirical p-values, null summaries, bootstrap, Holm.

Every analysis module uses these; none of them touches torch.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

Alternative = Literal["greater", "less", "two-sided"]


def empirical_p(observed: float, null: Sequence[float] | np.ndarray, alternative: Alternative) -> float:
    """Empirical p-value (1 + #as-extreme) / (1 + B) of ``observed`` against ``null`` draws.

    ``alternative="greater"`` counts null values >= observed (the observed value is large),
    ``"less"`` counts null values <= observed, ``"two-sided"`` counts null values at least as
    far from the null median as the observed one.
    """
    null = np.asarray(null, dtype=float)
    null = null[np.isfinite(null)]
    if null.size == 0:
        raise ValueError("empirical_p needs at least one finite null draw")
    if not np.isfinite(observed):
        raise ValueError(f"empirical_p: the observed statistic is not finite ({observed})")
    if alternative == "greater":
        extreme = np.sum(null >= observed)
    elif alternative == "less":
        extreme = np.sum(null <= observed)
    elif alternative == "two-sided":
        centre = np.median(null)
        extreme = np.sum(np.abs(null - centre) >= abs(observed - centre))
    else:
        raise ValueError(f"unknown alternative {alternative!r}; use 'greater', 'less' or 'two-sided'")
    return float((1 + extreme) / (1 + null.size))


def summarize_null(null: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean, SD, 5/50/95% quantiles and the number of finite draws of a null distribution."""
    null = np.asarray(null, dtype=float)
    null = null[np.isfinite(null)]
    if null.size == 0:
        return {"B": 0}
    q05, q50, q95 = np.quantile(null, [0.05, 0.5, 0.95])
    return {
        "mean": float(null.mean()),
        "sd": float(null.std(ddof=1)) if null.size > 1 else 0.0,
        "q05": float(q05),
        "q50": float(q50),
        "q95": float(q95),
        "B": int(null.size),
    }


def bootstrap_indices(n_units: int, n_resamples: int, seed: int) -> np.ndarray:
    """Resampling indices ``[n_resamples, n_units]`` drawn with replacement (units = sequences)."""
    if n_units < 2:
        raise ValueError(f"a bootstrap needs at least 2 units (sequences), got {n_units}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_units, size=(n_resamples, n_units))


def zscore_columns(x: np.ndarray) -> np.ndarray:
    """Columns of ``x`` ``[n_obs, n]`` centred and scaled to unit variance over the rows, in float64 (a constant
    column becomes 0)."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(0)
    return np.where(sd > 0, (x - x.mean(0)) / np.where(sd > 0, sd, 1.0), 0.0)


def resample_counts(draws: np.ndarray, n_units: int) -> np.ndarray:
    """How often each unit is drawn in each resample: ``[n_resamples, n_units]`` from ``draws``
    ``[n_resamples, n]`` (unit indices, as ``bootstrap_indices`` gives)."""
    counts = np.zeros((draws.shape[0], n_units))
    np.add.at(counts, (np.arange(draws.shape[0])[:, None], draws), 1.0)
    return counts


def percentile_ci(draws: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap draws at confidence ``level`` (non-finite draws dropped)."""
    draws = np.asarray(draws, dtype=float)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(draws, [tail, 1.0 - tail])
    return (float(lo), float(hi))


def unbounded_ci(draws: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of bootstrap ``draws`` at ``level`` that keeps +inf draws (order statistics: an upper
    end among infinite draws is inf: C7's tail-aware bound, where +inf is an unbounded mean) and drops NaN ones
    (a resample on which the statistic is undefined), as ``percentile_ci`` does; NaN when none is left."""
    draws = np.asarray(draws, dtype=float)
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - level) / 2.0
    lo = np.quantile(draws, tail, method="lower")
    hi = np.quantile(draws, 1.0 - tail, method="higher")
    return (float(lo), float(hi))


def inside_margin(ci: Sequence[float], margin: float) -> bool:
    """Equivalence: whether the interval ``ci`` (lower, upper) lies strictly inside ±``margin``."""
    return -margin < ci[0] and ci[1] < margin


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row pair of ``x`` and ``y`` ``[B, n]`` (rows broadcast) → ``[B]``.

    NaN where a row is constant (no correlation is defined there).
    """
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (xc * yc).sum(axis=1) / np.sqrt((xc ** 2).sum(axis=1) * (yc ** 2).sum(axis=1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order (NaN stays NaN)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out.tolist()


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial rate (e.g. a test's measured size) at confidence ``level``."""
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {successes}, {trials}")
    z = float(norm.ppf(0.5 + level / 2))
    rate = successes / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def t_interval(values: Sequence[float] | np.ndarray, level: float) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (at least 2) at confidence ``level``."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        raise ValueError(f"a t interval needs at least 2 values, got {values.size}")
    half = float(student_t.ppf(0.5 + level / 2, values.size - 1)) * values.std(ddof=1) / np.sqrt(values.size)
    return (float(values.mean() - half), float(values.mean() + half))
