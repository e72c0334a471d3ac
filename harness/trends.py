"""Trend of a statistic over training checkpoints: Spearman ρ against ln(step) (C4, C9).

ρ is the Spearman correlation of the statistic with ln(step); its p-value is a one-sided
permutation test for ρ > 0, (1 + #{permuted ρ ≥ observed ρ}) / (1 + B), with B random
re-pairings of the values with the steps.

Step 0. ln 0 is −∞, so step 0 has no place on the ln axis. ``step0="exclude"`` (the default)
drops it: the step-0 (random-init) value is the untrained reference that C4 tests separately
against the null band, and keeping it out of the trend keeps the two decisions apart.
``step0="ln1"`` places it at ln 1 = 0 instead, which ties it with step 1 when both are
present: Spearman then gives both the same (average) rank and ignores which came first.
Because Spearman ρ uses ranks only, ln(step) gives the same ρ as step itself for positive
steps; the ln scale matters for that tie and for plots (``TrendResult.x``).

The null band a claim compares single scores against (e.g. the step-0 score inside the
95% band of null curves, the final score outside it) is ``harness.stats.percentile_ci`` of
the null draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from scipy.stats import rankdata

from harness.stats import pearson_rows

Step0 = Literal["exclude", "ln1"]


@dataclass(frozen=True)
class TrendResult:
    """Spearman ρ of a statistic against ln(step), its one-sided permutation p-value for ρ > 0,
    the number ``n`` of checkpoints used and their positions ``x`` = ln(step) ``[n]``."""

    rho: float
    p_value: float
    n: int
    x: np.ndarray
    n_permutations: int


def _spearman_rows(ranked_x: np.ndarray, ranked_values: np.ndarray) -> np.ndarray:
    """Pearson correlation of ``ranked_x`` ``[n]`` with each row of ``ranked_values`` ``[B, n]``.

    A constant row or constant x has no trend: its ρ is 0.
    """
    return np.nan_to_num(pearson_rows(ranked_x[None, :], ranked_values), nan=0.0)


def spearman_trend(values: Sequence[float] | np.ndarray, steps: Sequence[int] | np.ndarray,
                   n_permutations: int, seed: int, step0: Step0 = "exclude") -> TrendResult:
    """Spearman ρ of ``values`` ``[n_checkpoints]`` against ln(``steps``) with a permutation p.

    ``steps`` are non-negative, distinct training steps; ``step0`` says what to do with step 0
    (module docstring). Raises ``ValueError`` for mismatched lengths, non-finite values,
    negative or repeated steps, an unknown ``step0`` or fewer than 3 usable checkpoints.
    """
    values = np.asarray(values, dtype=float)
    steps = np.asarray(steps)
    if values.ndim != 1 or steps.shape != values.shape:
        raise ValueError(
            f"values and steps must be vectors of equal length, got shapes {values.shape} and {steps.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"values must be finite at every checkpoint; non-finite at steps {steps[~np.isfinite(values)].tolist()}"
        )
    if not np.issubdtype(steps.dtype, np.number) or np.any(steps < 0) or np.any(steps != np.round(steps)):
        raise ValueError(f"steps must be non-negative integers, got {steps.tolist()}")
    if np.unique(steps).size != steps.size:
        raise ValueError(f"steps must be distinct (one value per checkpoint), got {steps.tolist()}")
    if step0 not in ("exclude", "ln1"):
        raise ValueError(f"step0 must be 'exclude' or 'ln1', got {step0!r}")
    if int(n_permutations) != n_permutations or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive integer, got {n_permutations!r}")

    keep = steps > 0 if step0 == "exclude" else np.ones(steps.size, bool)
    if keep.sum() < 3:
        raise ValueError(
            f"a trend needs at least 3 checkpoints; {int(keep.sum())} usable of steps {steps.tolist()} "
            f"(step0={step0!r})"
        )
    x = np.log(np.maximum(steps[keep], 1).astype(float))
    ranked_x = rankdata(x)
    ranked_values = rankdata(values[keep])
    rho = float(_spearman_rows(ranked_x, ranked_values[None, :])[0])

    rng = np.random.default_rng(seed)
    permuted = rng.permuted(np.broadcast_to(ranked_values, (int(n_permutations), ranked_values.size)), axis=1)
    null = _spearman_rows(ranked_x, permuted)
    tolerance = 1e-12
    p = (1 + np.sum(null >= rho - tolerance)) / (1 + n_permutations)
    return TrendResult(rho=rho, p_value=float(p), n=int(keep.sum()), x=x, n_permutations=int(n_permutations))
