"""The layer's common factors, and what they predict for a group of neurons (the adjustment's prognostic features).

A group statistic that is built from pairwise correlations — the mean correlation of a group's
activations, its mean squared correlation, the spectrum of its weight rows — is, under the null
that the group is nothing special, what the layer's common factors make it: a pair of neurons
that both load on a layer-wide factor correlates by the product of their loadings. That product
is not linear in any per-neuron covariate (with loadings λ far below saturation a pair's
correlation grows as λ_i λ_j, convexly in each neuron's variance), and a row's share of a layer-wide
direction can follow something no covariate sees (the read norm), so a regression on the group's
mean covariates gets it wrong for specialists that lie beyond their matched controls (an independent
review: C8 v4 supported 61–100% of the time on such rows with nothing planted). Its own scale is the
right one: ``pair_features`` gives every group the mean over its pairs of the factor-predicted
correlation b_i·b_j and of its square, and the group comparison (``harness.analysis.groups``)
regresses on them. C8 uses this on each matrix's rows. For C6's activations it was measured and not
adopted: on the same review's unsaturated global loadings the span fitted on a third of the layer
misses a few per cent of the global factor, more for the top-loading specialists than for their
controls, and the test still rejected about half the time; C6 subtracts an unattenuated estimate of
the implied correlations instead (``harness.analysis.instruments``).

Factors: the columns of ``samples`` ``[n_obs, n_neurons]`` (activations over positions, or weight
rows transposed, coordinates as observations) are z-scored, and the factors are the leading left
singular vectors of the pool's columns whose correlation eigenvalues lie above the Marchenko–Pastur
edge (1 + √(n_pool / n_obs))² of independent columns, at most ``max_factors``. A neuron's loadings
``b_i`` are its z-scores projected on them, divided by √n_obs, so b_i·b_j is the part of r_ij in the
factors' span.

Cross-fitting: factors fitted on a neuron's own column carry its noise, and an in-sample loading is
inflated against an out-of-sample one (on a noise direction at the edge by ≈ 3× in square) — the
specialists, left out of the pool, would then look less predicted than their controls. So the pool
is split into ``PARTS`` seeded parts, factors are fitted on each, and a pair's prediction averages
only the parts that hold neither of its neurons: no neuron's prediction uses its own column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh

from harness.analysis.stats import zscore_columns

PARTS = 3  # parts of the pool: a pair of pool neurons always leaves at least one part that holds neither
FEATURE_NAMES: tuple[str, ...] = ("factor_corr", "factor_sq_corr")


@dataclass(frozen=True)
class LayerFactors:
    """Cross-fitted loadings of every neuron on the layer's common factors.

    ``part`` ``[n_neurons]``: the pool part a neuron's column was fitted in (−1: not in the pool, e.g. the
    specialists); ``loadings[p]`` ``[n_neurons, K_p]``: every neuron's loadings on part ``p``'s ``K_p``
    factors (K_p may be 0: no factor above the edge).
    """

    part: np.ndarray
    loadings: tuple[np.ndarray, ...]

    @property
    def n_factors(self) -> tuple[int, ...]:
        return tuple(int(b.shape[1]) for b in self.loadings)

    def pair_features(self, groups: np.ndarray) -> np.ndarray:
        """Per group ``[..., size]`` → ``[..., 2]``: the mean over its pairs of the predicted correlation b_i·b_j
        and of its square, each pair's prediction averaged over the parts that hold neither neuron."""
        groups = np.asarray(groups, dtype=np.int64)
        size = groups.shape[-1]
        if size < 2:
            raise ValueError(f"pair features need groups of at least 2 neurons, got {size}")
        part = self.part[groups]
        total = np.zeros((*groups.shape, size, 2))
        count = np.zeros((*groups.shape, size))
        for p, b in enumerate(self.loadings):
            outside = part != p
            both = (outside[..., :, None] & outside[..., None, :]).astype(float)
            rows = b[groups]
            predicted = rows @ np.swapaxes(rows, -1, -2)
            total += both[..., None] * np.stack([predicted, predicted**2], axis=-1)
            count += both
        mean = total / count[..., None]
        off = ~np.eye(size, dtype=bool)
        return mean[..., off, :].mean(-2)


def pool_parts(n_neurons: int, pool: np.ndarray, seed: int) -> np.ndarray:
    """Each neuron's part ``[n_neurons]``: the ``pool`` neurons dealt into ``PARTS`` seeded parts of equal size
    (±1), −1 for every other neuron."""
    part = np.full(n_neurons, -1, dtype=np.int64)
    part[pool] = np.random.default_rng(seed).permutation(pool.size) % PARTS
    return part


def layer_factors(samples: np.ndarray, pool: np.ndarray, max_factors: int, seed: int) -> LayerFactors:
    """Fit the layer's factors on ``PARTS`` seeded parts of the ``pool`` neurons' columns of ``samples``
    ``[n_obs, n_neurons]`` and load every neuron on each (module docstring)."""
    z, part, scores = _part_scores(samples, pool, max_factors, seed)
    return LayerFactors(part, tuple(z.T @ u / np.sqrt(z.shape[0]) for u in scores))


def factor_residuals(samples: np.ndarray, pool: np.ndarray, max_factors: int, seed: int) -> np.ndarray:
    """Every neuron's z-scored column of ``samples`` ``[n_obs, n_neurons]`` less its least-squares projection on
    the factors (``layer_factors``'s, the same parts and seed) of the parts that do not hold it → ``[n_obs,
    n_neurons]``. The neurons outside the pool are dealt into the parts too, for this choice only (their columns
    fit no factor), so that every neuron's residual has the same form: a group of left-out neurons all projected
    off one and the same basis shares its estimation noise, which a group dealt over the parts does not (with
    every left-out neuron off the same two parts, C5 supported dispersed specialists 86.5% of 200 times, dealt
    90%). Covariances of the residuals are what a group shares beyond the layer's factors."""
    z, part, scores = _part_scores(samples, pool, max_factors, seed)
    part = np.where(part < 0, pool_parts(part.size, np.flatnonzero(part < 0), seed + 1), part)
    out = z.copy()
    for own in range(PARTS):
        cols = part == own
        basis = np.hstack([u for p, u in enumerate(scores) if p != own])
        if cols.any() and basis.shape[1]:
            q = np.linalg.qr(basis)[0]
            out[:, cols] -= q @ (q.T @ z[:, cols])
    return out


def _part_scores(samples: np.ndarray, pool: np.ndarray, max_factors: int, seed: int
                 ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The z-scored samples, each neuron's part, and each part's factor scores ``[n_obs, K_p]`` (orthonormal)."""
    x = np.asarray(samples, dtype=np.float64)
    pool = np.unique(np.asarray(pool, dtype=np.int64))
    if x.ndim != 2 or x.shape[0] < 3 or not np.all(np.isfinite(x)):
        raise ValueError(f"layer factors need finite samples [n_obs ≥ 3, n_neurons], got shape {x.shape}")
    if max_factors < 0 or pool.size < 2 * PARTS:
        raise ValueError(f"layer factors need max_factors ≥ 0 and a pool of at least {2 * PARTS} neurons, got "
                         f"{max_factors} and {pool.size}")
    z = zscore_columns(x)
    part = pool_parts(x.shape[1], pool, seed)
    return z, part, [_leading_factors(z[:, part == p], max_factors) for p in range(PARTS)]


def _leading_factors(cols: np.ndarray, max_factors: int) -> np.ndarray:
    """The leading left singular vectors ``[n_obs, K]`` of z-scored columns ``[n_obs, m]`` whose correlation
    eigenvalues (s² / n_obs) exceed the Marchenko–Pastur edge, at most ``max_factors``; from the top
    eigenpairs of the smaller Gram matrix only."""
    n_obs, m = cols.shape
    k_max = min(max_factors, n_obs, m)
    if k_max == 0:
        return np.zeros((n_obs, 0))
    small = cols @ cols.T if n_obs <= m else cols.T @ cols
    size = small.shape[0]
    eig, vec = eigh(small, subset_by_index=[size - k_max, size - 1])
    eig, vec = eig[::-1], vec[:, ::-1]
    k = int(np.sum(eig / n_obs > (1.0 + np.sqrt(m / n_obs)) ** 2))
    return vec[:, :k] if n_obs <= m else cols @ vec[:, :k] / np.sqrt(eig[:k])

