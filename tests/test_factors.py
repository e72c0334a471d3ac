"""The layer's common factors and their pair features (``harness.analysis.factors``): exact averaging over the
parts that hold neither neuron, recovery of planted factors, out-of-sample predictions of pair correlations,
and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis.factors import PARTS, LayerFactors, factor_residuals, layer_factors
from harness.analysis.groups import Adjustment, compare_groups, matched_groups, neuron_covariates


def factor_world(n_obs: int, n_neurons: int, n_factors: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns ``[n_obs, n_neurons]`` = loadings × factors + unit noise, and their population correlations."""
    rng = np.random.default_rng(seed)
    loadings = 0.6 * rng.standard_normal((n_neurons, n_factors))
    x = rng.standard_normal((n_obs, n_factors)) @ loadings.T + rng.standard_normal((n_obs, n_neurons))
    cov = loadings @ loadings.T + np.eye(n_neurons)
    sd = np.sqrt(np.diag(cov))
    return x, cov / np.outer(sd, sd)


def test_pair_features_average_each_pair_over_the_parts_that_hold_neither_neuron():
    rng = np.random.default_rng(0)
    part = np.array([-1, 0, 1, 2, 0, 1, 2, -1])
    loadings = tuple(rng.standard_normal((part.size, k)) for k in (2, 0, 3))
    factors = LayerFactors(part, loadings)
    groups = np.array([[0, 1, 2, 7], [1, 4, 3, 5]])
    expected = np.zeros((2, 2))
    for g, ids in enumerate(groups):
        pairs = [(i, j) for i in ids for j in ids if i != j]
        for i, j in pairs:
            allowed = [p for p in range(PARTS) if part[i] != p and part[j] != p]
            predicted = np.array([loadings[p][i] @ loadings[p][j] for p in allowed])
            expected[g] += [predicted.mean(), (predicted**2).mean()]
        expected[g] /= len(pairs)
    np.testing.assert_allclose(factors.pair_features(groups), expected, atol=1e-12)
    assert factors.n_factors == (2, 0, 3)
    with pytest.raises(ValueError, match="at least 2"):
        factors.pair_features(np.array([[3]]))


def test_three_planted_factors_are_found_and_predict_left_out_pair_correlations():
    """Three factors in 600 columns at 400 observations: every part (≈ 195 columns) finds exactly three above
    the Marchenko–Pastur edge, and the predicted mean correlation of groups left out of the pool is within 10%
    of their population value (the estimated span misses a few per cent of each factor)."""
    x, corr = factor_world(400, 600, 3, seed=1)
    factors = layer_factors(x, np.arange(48, 600), max_factors=8, seed=0)
    assert factors.n_factors == (3, 3, 3)
    groups = np.arange(48).reshape(3, 16)
    predicted = factors.pair_features(groups)[:, 0]
    truth = np.array([corr[np.ix_(g, g)][~np.eye(16, dtype=bool)].mean() for g in groups])
    np.testing.assert_allclose(predicted, truth, rtol=0.1, atol=0.01)
    assert layer_factors(x, np.arange(48, 600), max_factors=2, seed=0).n_factors == (2, 2, 2)   # the cap


def test_factor_residuals_leave_partial_correlations_of_left_out_and_pool_neurons():
    """Three factors in 600 columns at 400 observations: 48 left-out neurons' residuals (on two parts' factors)
    and pool neurons' (on the other parts') correlate by sampling noise only (mean |r| 0.042 against 0.040 for
    independent columns; 0.19 before); with no factor allowed the residuals are the z-scores."""
    x, _ = factor_world(400, 600, 3, seed=1)
    pool = np.arange(48, 600)
    residuals = factor_residuals(x, pool, max_factors=8, seed=0)
    off = ~np.eye(96, dtype=bool)
    ids = np.r_[np.arange(48), np.arange(300, 348)]
    before, after = (np.abs(np.corrcoef(m[:, ids].T)[off]).mean() for m in (x, residuals))
    assert before > 0.15 and after < 0.045
    assert factor_residuals(x, pool, max_factors=0, seed=0) == pytest.approx((x - x.mean(0)) / x.std(0))


def test_the_adjustment_appends_the_factor_features_to_the_covariates():
    x, _ = factor_world(200, 120, 2, seed=2)
    spec = np.arange(16)
    cov = neuron_covariates(x, np.ones(120), spec)
    plain = Adjustment(cov, 2)
    with_factors = Adjustment(cov, 2, layer_factors(x, np.arange(16, 120), max_factors=4, seed=0))
    groups = np.arange(32).reshape(2, 16)
    assert with_factors.names == plain.names + ("factor_corr", "factor_sq_corr")
    assert with_factors.features(groups).shape == (2, len(with_factors.names))
    np.testing.assert_array_equal(with_factors.features(groups)[:, : len(plain.names)], plain.features(groups))


def test_bad_input_is_refused():
    x, _ = factor_world(50, 40, 1, seed=3)
    with pytest.raises(ValueError, match="pool"):
        layer_factors(x, np.arange(4), max_factors=2, seed=0)
    with pytest.raises(ValueError, match="finite"):
        layer_factors(np.full((50, 40), np.nan), np.arange(40), max_factors=2, seed=0)


def test_specialists_beyond_every_control_groups_factor_features_are_flagged():
    """Sixteen neurons load 2.0 on a layer factor that the others load on at 0.3 · N(0, 1): their predicted
    pair correlations lie beyond every control group's, so the comparison names both factor features as
    beyond the fit's support (C8 then leaves the matrix untested); sixteen ordinary neurons are inside it."""
    rng = np.random.default_rng(5)
    loading = 0.3 * rng.standard_normal(300)
    loading[:16] = 2.0
    x = rng.standard_normal(400)[:, None] * loading + rng.standard_normal((400, 300))
    values = rng.standard_normal(300)
    for spec, beyond in ((np.arange(16), ("factor_corr", "factor_sq_corr")), (np.arange(16, 32), ())):
        cov = neuron_covariates(x, np.ones(300), spec)
        matched = matched_groups(cov, spec, n_groups=60, n_neighbours=10, seed=0)
        adjustment = Adjustment(cov, 1, layer_factors(x, np.setdiff1d(np.arange(300), spec), max_factors=4, seed=0))
        comp = compare_groups(lambda g: values[g].mean(1), adjustment, matched, "greater", 0.9, seed=0)
        assert comp.beyond_support == beyond
