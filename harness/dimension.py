"""Effective dimension and co-activation strength of neuron groups, and the C6 test.

For a group G with activations ``X_G [n_positions, |G|]`` at rare-target positions, z-scored
per neuron over positions, the PCA eigenvalues are those of the group's Pearson correlation
matrix R_G (trace |G|). Statistics (all dimensionless):

- ``n_components``: fewest principal components whose eigenvalues reach ``variance_explained``
  (default 95%) of the total variance;
- ``participation_ratio``: (Σλ)² / Σλ², between 1 (one direction) and |G| (isotropic);
- ``mean_corr``: mean off-diagonal r within the group; ``mean_abs_corr``: the same of |r|;
- ``cross_corr``: mean r between the group and the rest of the layer's usable neurons (the
  null pool: neither specialists nor constant), i.e. the expected specialists × random-group
  cross-correlation; for a random group, between it and the pool minus itself.

``coordination_test`` is the C6 entry: each statistic of the specialists against the same
statistic of ≥ 1,000 random groups of their size (``harness.groups.random_groups``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from harness.coactivation import GroupActivations, group_correlations, prepare_activations
from harness.groups import random_groups
from harness.stats import Alternative, empirical_p, summarize_null

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


@dataclass
class CoordinationResult:
    """Everything the C6 record needs: the specialists' statistics, their nulls and p-values.

    ``p_values[name]`` is the empirical p of the specialists' value against the random groups,
    with the alternative in ``ALTERNATIVES`` (lower dimension, higher correlation).
    """

    alpha: float
    variance_explained: float
    spec: dict[str, float]
    null: dict[str, np.ndarray]
    p_values: dict[str, float]
    specialists: np.ndarray
    null_groups: np.ndarray
    spec_eigenvalues: np.ndarray
    excluded_constant: np.ndarray
    n_positions: int
    n_neurons: int
    null_seed: int
    matched_on_mean: bool
    timings_s: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    @property
    def checks(self) -> dict[str, bool]:
        """C6's two parts, reported separately: lower effective dimension, higher within-group correlation."""
        return {
            "lower_dimension": bool(self.p_values["n_components"] < self.alpha),
            "higher_correlation": bool(self.p_values["mean_corr"] < self.alpha),
        }

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    @property
    def message(self) -> str:
        med = {k: float(np.median(v)) for k, v in self.null.items()}
        return (
            f"specialists need {self.spec['n_components']:.0f} of {self.specialists.size} components for "
            f"{self.variance_explained:.0%} of the variance vs median {med['n_components']:.0f} for random groups "
            f"(p = {self.p_values['n_components']:.3f}; participation ratio {self.spec['participation_ratio']:.1f} vs "
            f"{med['participation_ratio']:.1f}, p = {self.p_values['participation_ratio']:.3f}); mean within-group r = "
            f"{self.spec['mean_corr']:.3f} vs {med['mean_corr']:.3f} (p = {self.p_values['mean_corr']:.3f}); "
            f"{self.null_groups.shape[0]} random groups"
        )

    def record_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``ClaimRecord`` (statistics, p_values, null, sample sizes, seeds, …)."""
        return {
            "statistics": dict(self.spec),
            "p_values": dict(self.p_values),
            "null": {name: summarize_null(values) for name, values in self.null.items()},
            "sample_sizes": {
                "positions": self.n_positions,
                "layer_neurons": self.n_neurons,
                "group_size": int(self.specialists.size),
                "null_groups": int(self.null_groups.shape[0]),
                "constant_neurons_excluded": int(self.excluded_constant.size),
            },
            "seeds": {"null_groups": self.null_seed},
            "thresholds": {
                "alpha": self.alpha,
                "variance_explained": self.variance_explained,
                "matched_on_mean_activation": self.matched_on_mean,
            },
            "details": {
                "alternatives": dict(ALTERNATIVES),
                "timings_s": self.timings_s,
                "excluded_constant_neurons": self.excluded_constant.tolist(),
                "warnings": self.warnings,
                "specialists": self.specialists.tolist(),
            },
            "series": {
                "spec_eigenvalues": self.spec_eigenvalues.tolist(),
                "null_n_components": self.null["n_components"].tolist(),
                "observed_n_components": self.spec["n_components"],
                "null_mean_corr": self.null["mean_corr"].tolist(),
                "observed_mean_corr": self.spec["mean_corr"],
            },
        }


def coordination_test(
    x: np.ndarray,
    specialists: Sequence[int] | np.ndarray,
    *,
    n_null: int = 1000,
    variance_explained: float = 0.95,
    alpha: float = 0.05,
    rng_seed: int = 0,
    match_mean_activation: bool = False,
) -> CoordinationResult:
    """C6: do specialists have a lower effective dimension and a higher within-group correlation?

    Args:
        x: activations ``[n_positions, d_mlp]`` at rare-target positions.
        specialists: neuron ids of the group under test (≥ 3 non-constant neurons).
        n_null: random groups of the specialists' size (specialists and constant neurons
            excluded), drawn with seed ``rng_seed`` (the same groups as ``modularity_test``).
        variance_explained: variance share defining ``n_components``.
        alpha: level of each one-sided test.
        match_mean_activation: draw null groups matched on mean activation (10 quantile bins).

    Raises:
        ValueError: on invalid input (see ``harness.coactivation.prepare_activations``).
    """
    if n_null < 1:
        raise ValueError(f"n_null must be ≥ 1, got {n_null}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    start = time.perf_counter()
    acts = prepare_activations(x, specialists)
    spec = acts.specialists
    pool = np.setdiff1d(np.arange(acts.n_neurons), acts.excluded)
    null_groups = random_groups(
        acts.n_neurons, spec.size, acts.excluded, n_null, rng_seed,
        match_on=acts.mean if match_mean_activation else None,
        match_to=spec if match_mean_activation else None,
    )
    spec_stats = group_statistics(acts, spec[None, :], pool, variance_explained)
    null = group_statistics(acts, null_groups, pool, variance_explained)
    spec_values = {name: float(values[0]) for name, values in spec_stats.items()}
    return CoordinationResult(
        alpha=alpha,
        variance_explained=variance_explained,
        spec=spec_values,
        null=null,
        p_values={name: empirical_p(spec_values[name], null[name], ALTERNATIVES[name]) for name in ALTERNATIVES},
        specialists=spec,
        null_groups=null_groups,
        spec_eigenvalues=eigenvalues(group_correlations(acts, spec))[0],
        excluded_constant=acts.constant,
        n_positions=acts.n_positions,
        n_neurons=acts.n_neurons,
        null_seed=rng_seed,
        matched_on_mean=match_mean_activation,
        timings_s={"total": time.perf_counter() - start},
        warnings=list(acts.warnings),
    )
