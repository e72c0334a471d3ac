"""Effective dimension and co-activation strength of neuron groups, and the C6 test.

For a group G with activations ``X_G [n_positions, |G|]`` at rare-target positions, z-scored
per neuron over positions, the PCA eigenvalues are those of the group's Pearson correlation
matrix R_G (trace |G|). Statistics (all dimensionless):

- ``n_components``: fewest principal components whose eigenvalues reach ``variance_explained``
  (default 95%) of the total variance;
- ``participation_ratio``: (Σλ)² / Σλ², between 1 (one direction) and |G| (isotropic); C6 tests
  ``split_half_participation_ratio``, the same of the population matrix without the sampling bias;
- ``mean_corr``: mean off-diagonal r within the group; ``mean_abs_corr``: the same of |r|;
- ``cross_corr``: mean r between the group and the rest of the layer's usable neurons (the
  null pool: neither specialists nor constant), i.e. the expected specialists × random-group
  cross-correlation; for a random group, between it and the pool minus itself.

C6 (``harness.claims.activation``) compares the specialists' participation ratio and mean
correlation with those of matched, adjusted control groups (``harness.analysis.groups``).
"""

from __future__ import annotations


import numpy as np

from harness.analysis.coactivation import GroupActivations, group_correlations
from harness.analysis.stats import Alternative

# Statistic → the alternative that means "more coordinated than random groups".
ALTERNATIVES: dict[str, Alternative] = {
    "n_components": "less",
    "participation_ratio": "less",
    "mean_corr": "greater",
    "mean_abs_corr": "greater",
    "cross_corr": "two-sided",
}


def eigenvalues(corrs: np.ndarray) -> np.ndarray:
    """Eigenvalues ``[n_groups, size]`` (descending, clipped at 0) of correlation matrices ``[n_groups, size, size]``."""
    return np.clip(np.linalg.eigvalsh(corrs)[..., ::-1], 0.0, None)


def n_components(eigs: np.ndarray, variance_explained: float = 0.95) -> np.ndarray:
    """Fewest leading components reaching ``variance_explained`` of the variance, per row of ``eigs [..., size]``."""
    if not 0.0 < variance_explained <= 1.0:
        raise ValueError(f"variance_explained must lie in (0, 1], got {variance_explained}")
    share = np.cumsum(eigs, axis=-1) / eigs.sum(axis=-1, keepdims=True)
    reached = share >= variance_explained - 1e-12
    return reached.argmax(axis=-1) + 1


def participation_ratio(eigs: np.ndarray) -> np.ndarray:
    """(Σλ)² / Σλ² per row of ``eigs [..., size]``."""
    return eigs.sum(axis=-1) ** 2 / np.sum(eigs**2, axis=-1)


def split_half_participation_ratio(corr_a: np.ndarray, corr_b: np.ndarray, undefined_as_nan: bool = False
                                   ) -> np.ndarray:
    """The participation ratio of the population correlation matrix, size² / tr(R²), with tr(R²) = Σ_ij r_ij²
    estimated as Σ_ij r^A_ij r^B_ij from the matrices of two disjoint halves of the sequences, ``corr_a`` and
    ``corr_b`` ``[..., size, size]`` → ``[...]``. Where that estimate is ≤ 0 the ratio is undefined: a
    ``ValueError``, or NaN with ``undefined_as_nan`` (a bootstrap resample, which the caller drops).

    The sample participation ratio's Σ r² carries every pair's sampling noise, so it is biased low, and
    more so for a group whose activations are heavier-tailed or more dependent between positions than
    its controls' (a volatility shared by the group's noise, with no shared factor, lowered it as much as
    a real shared factor); the two halves' noise is independent, so the cross product has no such bias.
    """
    size = corr_a.shape[-1]
    cross = np.einsum("...ij,...ij->...", corr_a, corr_b)
    if not np.all(np.isfinite(cross)):
        raise ValueError("split-half participation ratio: the halves' correlation matrices are not finite")
    if undefined_as_nan:
        return size**2 / np.where(cross > 0, cross, np.nan)
    if np.any(cross <= 0):
        raise ValueError("split-half participation ratio: the halves' correlation matrices are not aligned "
                         "(tr(R_A R_B) ≤ 0); too few positions in a half")
    return size**2 / cross


def mean_offdiagonal(corrs: np.ndarray) -> np.ndarray:
    """Mean off-diagonal entry of each matrix ``[..., size, size]``."""
    size = corrs.shape[-1]
    trace = np.trace(corrs, axis1=-2, axis2=-1)
    return (corrs.sum(axis=(-2, -1)) - trace) / (size * (size - 1))


def cross_correlation(acts: GroupActivations, groups: np.ndarray, pool: np.ndarray, corrs: np.ndarray) -> np.ndarray:
    """Mean r between each group ``[n_groups, size]`` and the ``pool`` neurons outside it ``[n_groups]``.

    Exact and cheap: with z-scored columns, Σ_{j∈pool} r_ij = z_i · (Σ_{j∈pool} z_j) / n_positions,
    so one pass over the activations serves every group; the group's own block (``corrs``, its
    correlation matrices ``[n_groups, size, size]``) is subtracted where it overlaps the pool.
    """
    inv_std = np.zeros(acts.n_neurons)
    inv_std[pool] = 1.0 / acts.std[pool]
    pool_sum = acts.x @ inv_std - float(acts.mean @ inv_std)  # Σ_{j∈pool} z_j  [n_positions]
    usable = acts.std > 0
    row_sum = np.zeros(acts.n_neurons)
    row_sum[usable] = (acts.x[:, usable].T @ pool_sum - acts.mean[usable] * pool_sum.sum()) / (
        acts.std[usable] * acts.n_positions
    )  # Σ_{j∈pool} r_ij per neuron i
    in_pool = np.isin(groups, pool)
    overlap = np.einsum("gi,gij,gj->g", in_pool, corrs, in_pool)
    partners = pool.size - in_pool.sum(axis=1)
    return (row_sum[groups].sum(axis=1) - overlap) / (groups.shape[1] * partners)


def group_statistics(
    acts: GroupActivations, groups: np.ndarray, pool: np.ndarray, variance_explained: float
) -> dict[str, np.ndarray]:
    """Every statistic of the module docstring for groups ``[n_groups, size]`` → arrays ``[n_groups]``."""
    corrs = group_correlations(acts, groups)
    eigs = eigenvalues(corrs)
    return {
        "n_components": n_components(eigs, variance_explained),
        "participation_ratio": participation_ratio(eigs),
        "mean_corr": mean_offdiagonal(corrs),
        "mean_abs_corr": mean_offdiagonal(np.abs(corrs)),
        "cross_corr": cross_correlation(acts, groups, pool, corrs),
    }
