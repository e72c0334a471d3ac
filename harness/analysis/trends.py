"""Change of a standardised statistic over training checkpoints (C4, C9).

Checkpoints of one training run are not exchangeable: the same evaluation sequences enter
every checkpoint and neighbouring checkpoints are nearly the same model, so their errors are
serially dependent. A permutation test of a rank correlation treats them as exchangeable and,
measured on drift-free AR(1) (φ = 0.8) and random-walk trajectories, rejects 21% and 35% of
the time at a nominal 5%. This module instead

- works on a statistic already standardised at each checkpoint against that checkpoint's own
  null (``z[t]``: generic spread that every curve has does not look like emergence);
- compares the late checkpoints with the early ones: change = mean(z over the last
  ``fraction`` of checkpoints) − mean(z over the first ``fraction``);
- takes its interval from a bootstrap that resamples the evaluation sequences *jointly*
  across checkpoints (the caller passes ``boot[b, t]``, resample b at checkpoint t, every
  checkpoint with the same sequence draw), which carries each checkpoint's sampling
  uncertainty and its dependence between checkpoints, widened by the null's own variance
  (``null_variance``): a model whose weights drift between checkpoints redraws how its neurons
  pair with directions, which the sequence bootstrap cannot see (an independent review measured
  15–23% false "emergence" without it);
- with several training seeds, treats the seed as the unit: each seed's change is a point
  estimate and the interval is Student's t over seeds (a run-to-run wander common to all
  sequences of one run is then part of the error, as it must be).

Spearman's ρ of z against ln step is reported as a description only (no p-value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.stats import norm, spearmanr

from harness.analysis.stats import percentile_ci, t_interval


@dataclass(frozen=True)
class TrendChange:
    """Late − early change of a standardised statistic.

    ``change`` the point estimate (null SDs); ``ci`` its interval at ``level`` (bootstrap over
    sequences for one seed, t over seeds for several); ``early``/``late`` the checkpoint indices
    averaged; ``n_resamples`` the bootstrap resamples used (those with every checkpoint
    defined); ``per_seed`` each seed's change; ``spearman`` ρ of z against ln(1 + step).
    """

    change: float
    ci: tuple[float, float]
    level: float
    early: tuple[int, ...]
    late: tuple[int, ...]
    n_resamples: int
    per_seed: tuple[float, ...]
    unit: str
    spearman: float


def early_late(n_checkpoints: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the first and last ``max(1, ceil(fraction · n))`` checkpoints (disjoint)."""
    if n_checkpoints < 2:
        raise ValueError(f"a change over training needs at least 2 checkpoints, got {n_checkpoints}")
    k = max(1, min(math.ceil(fraction * n_checkpoints - 1e-9), n_checkpoints // 2))
    return np.arange(k), np.arange(n_checkpoints - k, n_checkpoints)


def _change(z: np.ndarray, early: np.ndarray, late: np.ndarray) -> np.ndarray:
    return z[..., late].mean(-1) - z[..., early].mean(-1)


def late_early_change(z: Sequence[Sequence[float]] | np.ndarray, boot: Sequence[np.ndarray] | None,
                      steps: Sequence[Sequence[int]], fraction: float, level: float,
                      null_variance: float = 0.0) -> TrendChange:
    """The late − early change of ``z`` for one or several seeds (module docstring).

    ``z``: one array ``[n_checkpoints]`` per seed (standardised statistic, checkpoints in
    training order; lengths may differ between seeds); ``boot``: for a single seed, its joint
    bootstrap ``[n_resamples, n_checkpoints]`` (rows with NaN are dropped); ignored for several
    seeds. ``null_variance``: the variance each checkpoint's value has under the null beyond the
    resampling of sequences (1 for a value standardised against its own null: which neurons happen to
    pair with which directions changes as the model trains); for a single seed it widens the
    bootstrap interval in quadrature by z·√(null_variance · (1/early + 1/late)). ``steps``: each seed's
    training steps. Raises ValueError for non-finite ``z``, steps that do not match ``z`` (one vector
    per seed, one step per checkpoint) or a single seed without bootstrap rows.
    """
    z = [np.asarray(v, dtype=float) for v in z]
    if not z or any(v.ndim != 1 or not np.all(np.isfinite(v)) for v in z):
        raise ValueError("z must be one finite vector [n_checkpoints] per seed")
    if len(steps) != len(z) or any(np.shape(s) != v.shape for s, v in zip(steps, z)):
        raise ValueError(f"steps must hold one training step per checkpoint of each seed, like z: got "
                         f"{[np.shape(s) for s in steps]} for z of shapes {[v.shape for v in z]}")
    per_seed, spearman = [], []
    for v, s in zip(z, steps):
        early, late = early_late(v.size, fraction)
        per_seed.append(float(_change(v, early, late)))
        spearman.append(float(spearmanr(np.log1p(np.asarray(s, dtype=float)), v).statistic) if v.size > 2 else np.nan)
    early, late = early_late(z[0].size, fraction)
    if len(z) > 1:
        ci = t_interval(per_seed, level)
        return TrendChange(float(np.mean(per_seed)), ci, level, tuple(early), tuple(late), 0, tuple(per_seed),
                           "seed", float(np.nanmean(spearman)))
    draws = np.asarray(boot[0] if boot is not None else np.empty((0, z[0].size)), dtype=float)
    if draws.ndim != 2 or draws.shape[1] != z[0].size:
        raise ValueError(f"boot must be [n_resamples, {z[0].size}] for a single seed, got {draws.shape}")
    draws = draws[np.all(np.isfinite(draws), axis=1)]
    if draws.shape[0] < 2:
        raise ValueError("fewer than 2 bootstrap resamples define the statistic at every checkpoint")
    lo, hi = percentile_ci(_change(draws, early, late), level)
    extra = (float(norm.ppf((1 + level) / 2)) ** 2) * null_variance * (1 / early.size + 1 / late.size)
    change = per_seed[0]
    ci = (change - float(np.sqrt((change - lo) ** 2 + extra)), change + float(np.sqrt((hi - change) ** 2 + extra)))
    return TrendChange(change, ci, level, tuple(early), tuple(late), int(draws.shape[0]), tuple(per_seed),
                       "sequence bootstrap", spearman[0])
