"""Effective dimension, participation ratio, within-group and cross correlation of neuron groups."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis.coactivation import group_correlations, prepare_activations
from harness.analysis.dimension import (
    ALTERNATIVES,
    cross_correlation,
    eigenvalues,
    group_statistics,
    mean_offdiagonal,
    n_components,
    participation_ratio,
    split_half_participation_ratio,
)
from harness.analysis.groups import random_groups
from synthetic import factor_activations

N_POSITIONS, N_NEURONS = 1000, 150
GROUP = np.arange(20)


@pytest.mark.parametrize("size", [4, 20, 50])
def test_dimension_of_known_spectra(size):
    """Isotropic, one-spike and two-spike spectra: components to 95% and participation ratio."""
    isotropic = np.ones(size)
    spike = np.r_[size, np.zeros(size - 1)]
    two = np.r_[size / 2, size / 2, np.zeros(size - 2)]
    eigs = np.stack([isotropic, spike, two])
    assert n_components(eigs, 0.95).tolist() == [int(np.ceil(0.95 * size)), 1, 2]
    assert np.allclose(participation_ratio(eigs), [size, 1, 2])


def test_equicorrelated_group_matches_its_closed_form():
    """r = 0.3 between all of 10 neurons: eigenvalues 1 + 9r and 1 − r (×9), PR and mean r in closed form."""
    size, rho = 10, 0.3
    corr = np.full((size, size), rho) + (1 - rho) * np.eye(size)
    eigs = eigenvalues(corr[None])
    assert np.allclose(eigs[0], np.r_[1 + (size - 1) * rho, np.full(size - 1, 1 - rho)])
    expected_pr = size**2 / ((1 + (size - 1) * rho) ** 2 + (size - 1) * (1 - rho) ** 2)
    assert participation_ratio(eigs)[0] == pytest.approx(expected_pr)
    assert mean_offdiagonal(corr[None])[0] == pytest.approx(rho)


def test_eigenvalues_are_descending_and_clipped_at_zero():
    """A rank-1 correlation matrix has round-off eigenvalues around 0: none is negative."""
    v = np.random.default_rng(0).choice([-1.0, 1.0], size=8)
    eigs = eigenvalues(np.outer(v, v)[None])[0]
    assert np.all(eigs >= 0) and np.all(np.diff(eigs) <= 0) and eigs[0] == pytest.approx(8.0)


def test_cross_correlation_equals_the_brute_force_mean():
    """Mean r between a group and the pool neurons outside it, against ``np.corrcoef``, for a group
    outside the pool and for groups inside it (their own block must be left out)."""
    x = factor_activations(0, N_POSITIONS, N_NEURONS, global_spread=0.8)
    acts = prepare_activations(x, GROUP)
    pool = np.setdiff1d(np.arange(N_NEURONS), GROUP)
    groups = np.array([GROUP[:5], pool[:5], pool[[3, 40, 77, 100, 120]]])
    full = np.corrcoef(x.T)
    want = [full[np.ix_(g, np.setdiff1d(pool, g))].mean() for g in groups]
    assert np.allclose(cross_correlation(acts, groups, pool, group_correlations(acts, groups)), want)


def test_group_statistics_single_out_a_planted_low_dimensional_group():
    """The group's 20 neurons share 2 private factors (loadings |N(0, 1)|·0.6): its participation ratio
    and component count are below, and its mean correlation above, every one of 200 random groups;
    its cross-correlation with the rest stays small (the factors are private). Every statistic has an
    alternative, and each value equals the function it comes from."""
    rng = np.random.default_rng(1)
    x = factor_activations(1, N_POSITIONS, N_NEURONS)
    x[:, GROUP] += 0.6 * rng.standard_normal((N_POSITIONS, 2)) @ np.abs(rng.standard_normal((2, GROUP.size)))
    acts = prepare_activations(x, GROUP)
    pool = np.setdiff1d(np.arange(N_NEURONS), GROUP)
    groups = np.vstack([GROUP, random_groups(N_NEURONS, GROUP.size, GROUP, 200, seed=0)])
    stats = group_statistics(acts, groups, pool, 0.95)
    assert set(stats) == set(ALTERNATIVES)
    assert stats["participation_ratio"][0] < stats["participation_ratio"][1:].min()
    assert stats["n_components"][0] < stats["n_components"][1:].min()
    assert stats["mean_corr"][0] > stats["mean_corr"][1:].max()
    assert abs(stats["cross_corr"][0]) < stats["mean_corr"][0] / 4
    corrs = group_correlations(acts, groups)
    np.testing.assert_allclose(stats["participation_ratio"], participation_ratio(eigenvalues(corrs)))
    np.testing.assert_allclose(stats["mean_abs_corr"], mean_offdiagonal(np.abs(corrs)))


@pytest.mark.parametrize("share", [0.0, 1.5])
def test_variance_share_outside_the_unit_interval_is_an_error(share):
    """A variance share of 0 or above 1: ValueError."""
    with pytest.raises(ValueError, match="variance_explained"):
        n_components(np.ones((1, 4)), share)


def test_split_half_participation_ratio_is_not_lowered_by_a_shared_volatility():
    """16 uncorrelated neurons (population PR 16) whose noise shares one per-position volatility (lognormal,
    ln-SD 1), 800 positions, 60 draws: the sample PR is biased to ≈ 12.4 (it lowered C6 v3's PR as much as a
    real shared factor does), the split-half PR stays at 16 (mean within 0.4; the draws' SD is ≈ 0.65, so the
    mean's SE is 0.08). Without the volatility both sit at 16 (sample PR 15.7: the ordinary 1/n bias)."""
    sample, split = [], []
    for r in range(60):
        rng = np.random.default_rng(r)
        x = rng.standard_normal((800, 16)) * np.exp(rng.standard_normal(800))[:, None]
        sample.append(participation_ratio(eigenvalues(np.corrcoef(x.T)[None]))[0])
        split.append(split_half_participation_ratio(np.corrcoef(x[::2].T)[None], np.corrcoef(x[1::2].T)[None])[0])
    assert np.mean(sample) < 13.5
    assert abs(np.mean(split) - 16.0) < 0.4


def test_split_half_participation_ratio_of_known_matrices():
    """Equal halves give size² / Σ r²; an equicorrelated population (r = 0.5, size 8) gives 64 / (8 + 56/4);
    halves that do not align (tr(R_A R_B) ≤ 0) are an error on the data and NaN on a resample, batch entries
    that align keeping their value."""
    r = np.full((8, 8), 0.5)
    np.fill_diagonal(r, 1.0)
    assert split_half_participation_ratio(r, r) == pytest.approx(64 / (8 + 56 * 0.25))
    assert split_half_participation_ratio(r, r) == pytest.approx(participation_ratio(eigenvalues(r)))
    anti = -r
    np.fill_diagonal(anti, -3.0)
    with pytest.raises(ValueError, match="not aligned"):
        split_half_participation_ratio(r, anti)
    batch = split_half_participation_ratio(np.stack([r, r]), np.stack([r, anti]), undefined_as_nan=True)
    assert batch[0] == pytest.approx(64 / (8 + 56 * 0.25)) and np.isnan(batch[1])
    broken = r.copy()
    broken[0, 1] = np.nan
    for undefined_as_nan in (False, True):      # a non-finite matrix is an error, never "undefined"
        with pytest.raises(ValueError, match="not finite"):
            split_half_participation_ratio(r, broken, undefined_as_nan=undefined_as_nan)
