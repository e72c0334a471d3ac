"""Effective dimension, participation ratio, within/cross correlation, and the C6 test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from harness.analysis.coactivation import group_correlations, modularity_test, prepare_activations
from harness.analysis.dimension import (
    coordination_test,
    cross_correlation,
    eigenvalues,
    mean_offdiagonal,
    n_components,
    participation_ratio,
)
from harness.records import ClaimRecord

N_POSITIONS, N_NEURONS = 1000, 150
GROUP = np.arange(20)
N_NULL = 199
ALPHA = 0.05
RATE_TAIL = 0.001  # tail probability below which a repeat count contradicts its expected rate


def activations(seed: int, rank: int = 0, loading: float = 0.0, shared_by_layer: bool = False) -> np.ndarray:
    """i.i.d. Gaussian ``[positions, neurons]``; with ``rank`` > 0 the group (or, with
    ``shared_by_layer``, every neuron) also loads positively on ``rank`` common latent factors
    (the neurons co-activate)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N_POSITIONS, N_NEURONS))
    if rank:
        targets = np.arange(N_NEURONS) if shared_by_layer else GROUP
        x[:, targets] += loading * rng.standard_normal((N_POSITIONS, rank)) @ np.abs(rng.standard_normal((rank, targets.size)))
    return x


@pytest.mark.parametrize("size", [4, 20, 50])
def test_dimension_of_known_spectra(size):
    isotropic = np.ones(size)
    spike = np.r_[size, np.zeros(size - 1)]
    two = np.r_[size / 2, size / 2, np.zeros(size - 2)]
    eigs = np.stack([isotropic, spike, two])
    assert n_components(eigs, 0.95).tolist() == [int(np.ceil(0.95 * size)), 1, 2]
    assert np.allclose(participation_ratio(eigs), [size, 1, 2])


def test_equicorrelated_group_matches_its_closed_form():
    size, rho = 10, 0.3
    corr = np.full((size, size), rho) + (1 - rho) * np.eye(size)
    eigs = eigenvalues(corr[None])
    assert np.allclose(eigs[0], np.r_[1 + (size - 1) * rho, np.full(size - 1, 1 - rho)])
    expected_pr = size**2 / ((1 + (size - 1) * rho) ** 2 + (size - 1) * (1 - rho) ** 2)
    assert participation_ratio(eigs)[0] == pytest.approx(expected_pr)
    assert mean_offdiagonal(corr[None])[0] == pytest.approx(rho)


def test_cross_correlation_equals_the_brute_force_mean():
    x = activations(0, rank=1, loading=0.5, shared_by_layer=True)
    acts = prepare_activations(x, GROUP)
    pool = np.setdiff1d(np.arange(N_NEURONS), GROUP)
    groups = np.array([GROUP[:5], pool[:5], pool[[3, 40, 77, 100, 120]]])
    full = np.corrcoef(x.T)
    want = [full[np.ix_(g, np.setdiff1d(pool, g))].mean() for g in groups]
    assert np.allclose(cross_correlation(acts, groups, pool, group_correlations(acts, groups)), want)


def test_planted_low_rank_group_is_lower_dimensional_and_more_correlated():
    x = activations(1, rank=2, loading=0.6)
    result = coordination_test(x, GROUP, n_null=N_NULL, alpha=ALPHA, rng_seed=0)
    assert result.passed, result.message
    assert result.checks == {"lower_dimension": True, "higher_correlation": True}
    assert result.spec["n_components"] < result.null["n_components"].min()
    assert result.p_values["participation_ratio"] == pytest.approx(1 / (1 + N_NULL))
    # The factors are private to the group: it co-activates within, not with the rest of the layer.
    assert result.spec["cross_corr"] < result.spec["mean_corr"] / 2


def test_iid_activations_rarely_pass():
    repeats = 12
    passes = [coordination_test(activations(100 + r), GROUP, n_null=N_NULL, alpha=ALPHA, rng_seed=r) for r in range(repeats)]
    # Exchangeable with the random groups: each one-sided p is ≈ uniform, so p < alpha at rate ≤ alpha.
    for name in ("lower_dimension", "higher_correlation"):
        hits = sum(res.checks[name] for res in passes)
        assert binom.sf(hits - 1, repeats, ALPHA) > RATE_TAIL, f"{name}: {hits}/{repeats} on null data"


def test_a_factor_shared_by_the_whole_layer_does_not_single_out_the_group():
    x = activations(2, rank=1, loading=0.6, shared_by_layer=True)
    result = coordination_test(x, GROUP, n_null=N_NULL, alpha=ALPHA, rng_seed=0)
    assert not result.passed, result.message
    assert result.p_values["n_components"] > ALPHA and result.p_values["mean_corr"] > ALPHA
    assert result.spec["mean_corr"] > 0 and np.median(result.null["mean_corr"]) > 0


def test_matched_null_and_same_groups_as_the_modularity_test():
    x = activations(3) + np.linspace(0, 2, N_NEURONS)  # mean activation rises with the neuron id
    seq = np.repeat(np.arange(20), N_POSITIONS // 20)
    group = np.arange(100, 110)
    means = x.mean(0)
    result = coordination_test(x, group, n_null=50, rng_seed=4, match_mean_activation=True)
    modular = modularity_test(x, seq, group, n_null=50, louvain_seeds=1, n_bootstrap=2, rng_seed=4, match_mean_activation=True)
    assert np.array_equal(result.null_groups, modular.null_groups)
    unmatched = coordination_test(x, group, n_null=50, rng_seed=4)
    gap = lambda groups: abs(means[groups].mean() - means[group].mean())  # noqa: E731
    assert gap(result.null_groups) < gap(unmatched.null_groups)


def test_constant_neurons_are_excluded_with_a_warning_in_the_record():
    x = activations(5)
    x[:, [GROUP[1], 99]] = 0.0
    with pytest.warns(UserWarning, match="constant"):
        result = coordination_test(x, GROUP, n_null=N_NULL, rng_seed=0)
    assert GROUP[1] not in result.specialists
    assert not np.isin(result.null_groups, [GROUP[1], 99]).any()
    record = ClaimRecord("C6", "synthetic", **result.record_fields())
    record.decide(result.checks, result.message)
    assert record.to_json()["details"]["excluded_constant_neurons"] == [GROUP[1], 99]
    assert "constant" in record.to_json()["details"]["warnings"][0]
    assert record.to_json()["null"]["n_components"]["B"] == N_NULL


@pytest.mark.parametrize(
    "x_change, group, message",
    [
        (None, GROUP[:2], "at least 3 neurons"),
        ("nan", GROUP, "non-finite"),
        (None, np.r_[GROUP, 150], "must lie in"),
    ],
)
def test_bad_input_raises_clear_errors(x_change, group, message):
    x = activations(6)
    if x_change == "nan":
        x[10, 3] = np.nan
    with pytest.raises(ValueError, match=message):
        coordination_test(x, group, n_null=10)


def test_variance_share_outside_the_unit_interval_is_an_error():
    with pytest.raises(ValueError, match="variance_explained"):
        coordination_test(activations(7), GROUP, n_null=10, variance_explained=1.5)
