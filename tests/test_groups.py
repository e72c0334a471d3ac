"""Control groups: uniform draws, per-neuron covariates, nearest-neighbour matching with its balance,
and the adjusted comparison of a group statistic (p, effect, location-shift interval)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy.stats import chisquare, kstest, rankdata

from harness.analysis.groups import (
    COVARIATES,
    MAX_UNDEFINED_SHARE,
    compare,
    Adjustment,
    compare_groups,
    fit_controls,
    matched_groups,
    neuron_covariates,
    random_groups,
    sampling_gap,
)
from harness.analysis.stats import empirical_p
from harness.claims.settings import SETTINGS
from synthetic import assert_rate_at_least, assert_rate_at_most, factor_activations

N_NEURONS = 200
SIZE = 10
EXCLUDE = np.arange(0, 40, 2)  # 20 ids

# The matched-group world: 256 neurons on a global factor with lognormal loadings (the hard null).
D_MLP, N_POSITIONS, N_SPECIALISTS = 256, 200, 16
N_GROUPS = 199
NEIGHBOURS = SETTINGS["match_neighbours"].default
MAX_SMD = SETTINGS["match_max_smd"].default
LEVEL = 0.9
N_REPLICATIONS = 300
TAIL = 5e-4  # each of the two checks of a calibration test: spurious failure ≤ 2·TAIL = 1e-3


# --- uniform groups ---------------------------------------------------------------------------------


def test_groups_avoid_the_excluded_set_and_hold_distinct_sorted_ids():
    """500 groups of 10 from 200 ids minus 20 excluded: the right shape, sorted, distinct, none excluded."""
    groups = random_groups(N_NEURONS, SIZE, EXCLUDE, 500, seed=3)
    assert groups.shape == (500, SIZE) and groups.dtype == np.int64
    assert not np.isin(groups, EXCLUDE).any()
    assert np.all(np.diff(groups, axis=1) > 0)
    assert groups.min() >= 0 and groups.max() < N_NEURONS


def test_same_seed_same_groups_other_seed_other_groups():
    """Seeding: equal seeds reproduce the draw, another seed changes it."""
    a = random_groups(N_NEURONS, SIZE, EXCLUDE, 50, seed=7)
    assert np.array_equal(a, random_groups(N_NEURONS, SIZE, EXCLUDE, 50, seed=7))
    assert not np.array_equal(a, random_groups(N_NEURONS, SIZE, EXCLUDE, 50, seed=8))


def test_every_candidate_is_drawn_equally_often():
    """Uniform sampling: each of the 180 candidates is expected 3000·10/180 times (χ² p > 0.001)."""
    groups = random_groups(N_NEURONS, SIZE, EXCLUDE, 3000, seed=0)
    candidates = np.setdiff1d(np.arange(N_NEURONS), EXCLUDE)
    counts = np.bincount(groups.ravel(), minlength=N_NEURONS)[candidates]
    assert chisquare(counts).pvalue > 0.001


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_neurons=20, size=10, exclude=np.arange(15), n_groups=5, seed=0), "only 5 of 20"),
        (dict(n_neurons=20, size=3, exclude=[25], n_groups=5, seed=0), "outside"),
        (dict(n_neurons=20, size=0, exclude=[], n_groups=5, seed=0), "≥ 1"),
    ],
)
def test_bad_requests_raise_clear_errors(kwargs, message):
    """Too few candidates, excluded ids out of range, an empty group size: ValueError saying which."""
    with pytest.raises(ValueError, match=message):
        random_groups(**kwargs)


# --- covariates ---------------------------------------------------------------------------------


def world(seed: int = 0, constant: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Activations ``[N_POSITIONS, D_MLP]`` with a global factor (lognormal loadings, σ 0.8) and
    lognormal write norms; the neurons ``constant`` are set to 0.5 at every position."""
    x = factor_activations(seed, N_POSITIONS, D_MLP, global_spread=0.8)
    x[:, list(constant)] = 0.5
    write_norm = np.exp(0.3 * np.random.default_rng(seed + 1).standard_normal(D_MLP))
    return x, write_norm


def noisy_top_by_variance(x: np.ndarray, seed: int, noise: float = 1.0) -> np.ndarray:
    """The top N_SPECIALISTS neurons by variance × lognormal noise: selection that goes with the covariates."""
    rng = np.random.default_rng(seed)
    return np.argsort(-x.var(0) * np.exp(noise * rng.standard_normal(x.shape[1])))[:N_SPECIALISTS]


def test_covariates_are_the_documented_per_neuron_statistics():
    """Raw columns = mean, ln variance, share ≤ 0, ln write norm, and mean correlation with the
    non-specialist usable neurons (itself left out), by brute force; scores are normal scores of
    the ranks over the usable neurons (same order, mean 0 up to ties); constant neurons are unusable, score 0."""
    x, write_norm = world(1, constant=(3, 77))
    spec = np.arange(10, 26)
    cov = neuron_covariates(x, write_norm, spec)
    assert cov.names == COVARIATES and cov.n_neurons == D_MLP
    np.testing.assert_array_equal(cov.usable, np.setdiff1d(np.arange(D_MLP), [3, 77]))
    u = cov.usable
    np.testing.assert_allclose(cov.values[u, 0], x[:, u].mean(0))
    np.testing.assert_allclose(cov.values[u, 1], np.log(x[:, u].var(0)))
    np.testing.assert_allclose(cov.values[:, 2], (x <= 0).mean(0))
    np.testing.assert_allclose(cov.values[:, 3], np.log(write_norm))
    pool = np.setdiff1d(u, spec)
    corr = np.corrcoef(x[:, u].T)
    where = {n: i for i, n in enumerate(u)}
    for n in (10, 30, 200):  # a specialist, two pool neurons
        partners = [where[j] for j in pool if j != n]
        assert cov.values[n, 4] == pytest.approx(corr[where[n], partners].mean(), abs=1e-12)
    for c in range(len(COVARIATES)):
        np.testing.assert_array_equal(rankdata(cov.scores[u, c]), rankdata(cov.values[u, c]))
        assert abs(cov.scores[u, c].mean()) < 1e-3  # 0 up to ties (sparsity)
    assert np.all(cov.scores[[3, 77]] == 0)


@pytest.mark.parametrize(
    "acts, write_norm, message",
    [
        (np.ones(10), np.ones(10), "acts"),
        (np.random.default_rng(0).normal(size=(20, 10)), np.ones(9), "write_norm"),
        (np.random.default_rng(0).normal(size=(2, 10)), np.ones(10), "at least 3 positions"),
        (np.where(np.eye(20, 10) > 0, np.nan, 1.0), np.ones(10), "finite"),
    ],
)
def test_covariates_refuse_bad_input(acts, write_norm, message):
    """Wrong shapes, too few positions or non-finite values: ValueError."""
    with pytest.raises(ValueError, match=message):
        neuron_covariates(acts, write_norm, [0, 1, 2])


# --- matching -----------------------------------------------------------------------------------


def test_matched_groups_avoid_specialists_and_constant_neurons_and_are_distinct():
    """Every control group: one neuron per specialist, none a specialist or constant, no repeats."""
    x, write_norm = world(2, constant=(5, 6, 7))
    spec = noisy_top_by_variance(x, 2)
    cov = neuron_covariates(x, write_norm, spec)
    m = matched_groups(cov, spec, N_GROUPS, NEIGHBOURS, seed=0)
    assert m.groups.shape == (N_GROUPS, N_SPECIALISTS) and m.n_neighbours == NEIGHBOURS
    np.testing.assert_array_equal(m.specialists, np.sort(spec))
    assert not np.isin(m.groups, np.r_[spec, 5, 6, 7]).any()
    assert all(np.unique(row).size == N_SPECIALISTS for row in m.groups)


def test_matched_groups_are_seeded():
    """The same seed draws the same groups, another seed other groups."""
    x, write_norm = world(3)
    spec = noisy_top_by_variance(x, 3)
    cov = neuron_covariates(x, write_norm, spec)
    a = matched_groups(cov, spec, 50, NEIGHBOURS, seed=4)
    np.testing.assert_array_equal(a.groups, matched_groups(cov, spec, 50, NEIGHBOURS, seed=4).groups)
    assert not np.array_equal(a.groups, matched_groups(cov, spec, 50, NEIGHBOURS, seed=5).groups)


def test_each_control_is_one_of_its_specialists_nearest_neighbours():
    """With fewer specialists (3) than neighbours (5) no pool is used up: column i of every group is
    one of the 5 non-specialists nearest to specialist i in covariate scores."""
    x, write_norm = world(4)
    spec = np.array([17, 90, 201])
    cov = neuron_covariates(x, write_norm, spec)
    m = matched_groups(cov, spec, N_GROUPS, 5, seed=1)
    candidates = np.setdiff1d(cov.usable, spec)
    for i, s in enumerate(spec):
        distance = ((cov.scores[candidates] - cov.scores[s]) ** 2).sum(1)
        nearest = candidates[np.argsort(distance, kind="stable")[:5]]
        assert np.isin(m.groups[:, i], nearest).all()


def smd_of_groups(cov, spec: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Specialists' mean score − controls' mean score per covariate, in layer SDs of the scores."""
    layer_sd = cov.scores[cov.usable].std(0)
    return (cov.scores[spec].mean(0) - cov.scores[groups].mean((0, 1))) / layer_sd


def test_balance_is_good_for_random_specialists_and_bad_for_the_top_of_a_covariate():
    """Random 'specialists' match well (every |SMD| below 0.25, the usual limit of a good match); the 16
    highest-variance neurons cannot be matched on ln variance (SMD > 0.5: their nearest neighbours have less
    variance — the adjustment, not the match, must carry them). The reported SMD agrees with the controls
    actually drawn (to 0.05)."""
    x, write_norm = world(5)
    random_spec = np.random.default_rng(5).choice(D_MLP, N_SPECIALISTS, replace=False)
    top_spec = np.argsort(-x.var(0))[:N_SPECIALISTS]
    for spec, balanced in ((random_spec, True), (top_spec, False)):
        cov = neuron_covariates(x, write_norm, spec)
        m = matched_groups(cov, spec, N_GROUPS, NEIGHBOURS, seed=0)
        assert set(m.smd) == set(COVARIATES)
        np.testing.assert_allclose(list(m.smd.values()), smd_of_groups(cov, m.specialists, m.groups), atol=0.05)
        if balanced:
            assert m.max_abs_smd < 0.25, m.smd
        else:
            assert m.smd["log_variance"] > 0.5, m.smd


def test_matching_refuses_impossible_requests():
    """A constant specialist, more specialists than candidates, or no groups: ValueError."""
    x, write_norm = world(6, constant=(0,))
    cov = neuron_covariates(x, write_norm, [0, 1, 2])
    with pytest.raises(ValueError, match="constant"):
        matched_groups(cov, [0, 1, 2], 10, NEIGHBOURS, seed=0)
    with pytest.raises(ValueError, match="candidate controls"):
        matched_groups(cov, np.arange(1, 200), 10, NEIGHBOURS, seed=0)
    with pytest.raises(ValueError, match="≥ 1"):
        matched_groups(cov, [1, 2, 3], 0, NEIGHBOURS, seed=0)


# --- the adjusted comparison --------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def matched_world(seed: int = 2):
    """Covariates and matched groups of the world with 'specialists' selected by noisy variance
    (the selection goes with the covariates but passes the balance check)."""
    x, write_norm = world(seed)
    spec = noisy_top_by_variance(x, seed)
    cov = neuron_covariates(x, write_norm, spec)
    m = matched_groups(cov, spec, N_GROUPS, NEIGHBOURS, seed=seed)
    assert m.max_abs_smd < MAX_SMD, m.smd
    return cov, m


def mean_of(values: np.ndarray):
    """The group statistic 'mean of a per-neuron value': ids ``[n_groups, size]`` → ``[n_groups]``."""
    return lambda groups: values[groups].mean(axis=1)


@functools.lru_cache(maxsize=None)
def null_replications(shift: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N_REPLICATIONS comparisons in ``matched_world``: each neuron gets a fresh N(0, 1) value that
    does not depend on any covariate, the specialists' values are raised by ``shift``; the statistic
    is the group mean. Returns (p, unmatched p, shift CIs ``[n, 2]``)."""
    cov, m = matched_world()
    p, unmatched, ci = [], [], []
    for r in range(N_REPLICATIONS):
        values = np.random.default_rng(1000 + r).standard_normal(D_MLP)
        values[m.specialists] += shift
        comp = compare_groups(mean_of(values), Adjustment(cov), m, "greater", LEVEL, seed=r)
        p.append(comp.p)
        unmatched.append(comp.unmatched_p)
        ci.append(comp.shift_ci)
    return np.array(p), np.array(unmatched), np.array(ci)


def assert_uniform(p: np.ndarray, what: str) -> None:
    """p-values of independent null replications are uniform: KS p > TAIL, and p ≤ 0.05 no more often
    than 5% allows (binomial, tail TAIL). Spurious failure probability ≤ 2·TAIL = 1e-3."""
    assert kstest(p, "uniform").pvalue > TAIL, f"{what}: KS against U(0, 1)"
    assert_rate_at_most(int(np.sum(p <= 0.05)), p.size, 0.05, TAIL, f"{what}: p ≤ 0.05")


def test_unmatched_p_is_uniform_under_the_null():
    """Control for the check below: against uniform groups the same null replications give uniform p."""
    assert_uniform(null_replications(0.0)[1], "unmatched p")


def test_adjusted_p_is_uniform_under_the_null():
    """A statistic that does not depend on the covariates (mean of iid per-neuron values): the
    specialists are one more group, so the adjusted p of 300 independent replications is uniform."""
    assert_uniform(null_replications(0.0)[0], "adjusted p")


def test_shift_interval_covers_a_planted_shift_at_its_level():
    """The specialists' values raised by 0.3 (≈ 1.2 null SDs): the 90% location-shift interval of each
    of 300 replications covers 0.3 at least 90% of the time (binomial, spurious failure ≤ TAIL)."""
    ci = null_replications(0.3)[2]
    covered = int(np.sum((ci[:, 0] <= 0.3) & (0.3 <= ci[:, 1])))
    assert_rate_at_least(covered, len(ci), LEVEL, TAIL, "coverage of the planted shift")


@pytest.mark.parametrize("direction", ["greater", "less"])
def test_a_large_planted_shift_is_found_and_bracketed(direction):
    """The specialists' values shifted by 2 in the claim's direction (≈ 8 null SDs): smallest p, effect
    > 4 SDs, a location-shift interval (positive = claim direction) around 2 that excludes 0, and the
    documented identities between p, effect, interval and the adjusted draws."""
    cov, m = matched_world()
    values = np.random.default_rng(7).standard_normal(D_MLP)
    sign = 1.0 if direction == "greater" else -1.0
    values[m.specialists] += sign * 2.0
    comp = compare_groups(mean_of(values), Adjustment(cov), m, direction, LEVEL, seed=1)
    assert comp.observed == pytest.approx(values[m.specialists].mean())
    assert comp.p == pytest.approx(1 / (1 + N_GROUPS)) and comp.p == empirical_p(comp.observed, comp.adjusted, direction)
    assert comp.effect > 4 and comp.effect_ci[0] > 0
    assert comp.shift_ci[0] < 2.0 < comp.shift_ci[1]
    lo, hi = comp.null_band()
    np.testing.assert_allclose(sorted(sign * (comp.observed - np.array([lo, hi]))), comp.shift_ci)
    sd = np.std(comp.adjusted, ddof=1)
    assert comp.effect == pytest.approx(sign * (comp.observed - np.median(comp.adjusted)) / sd)
    np.testing.assert_allclose(comp.effect_ci, np.array(comp.shift_ci) / sd)


def test_adjustment_removes_a_planted_linear_covariate_effect():
    """Statistic = mean ln-variance score of the group + mean of iid N(0, 1) per-neuron noise; the
    specialists are the 16 highest-variance neurons (ln-variance SMD ≈ 0.8). Over 40 noise draws, the
    specialists' excess over the median control (statistic units) is biased by the planted effect for
    uniform and for matched but unadjusted controls (mean > 0.5) and unbiased after the adjustment
    (|mean| < 0.25: the excess has SD ≈ 0.4, so ≈ 4 standard errors); the fitted slope is ≈ 1."""
    x, write_norm = world(8)
    spec = np.argsort(-x.var(0))[:N_SPECIALISTS]
    cov = neuron_covariates(x, write_norm, spec)
    m = matched_groups(cov, spec, N_GROUPS, NEIGHBOURS, seed=0)
    column = COVARIATES.index("log_variance")
    excess = {"adjusted": [], "matched": [], "uniform": []}
    slopes = []
    for r in range(40):
        values = cov.scores[:, column] + np.random.default_rng(r).standard_normal(D_MLP)
        comp = compare_groups(mean_of(values), Adjustment(cov), m, "greater", LEVEL, seed=r)
        for name, null in (("adjusted", comp.adjusted), ("matched", comp.null), ("uniform", comp.unmatched)):
            excess[name].append(comp.observed - np.median(null))
        slopes.append(comp.coefficients["log_variance"])
    assert np.mean(excess["uniform"]) > 0.5 and np.mean(excess["matched"]) > 0.5
    assert abs(np.mean(excess["adjusted"])) < 0.25
    assert np.mean(slopes) == pytest.approx(1.0, abs=0.15)


def test_comparison_is_seeded_and_refuses_a_non_finite_statistic():
    """Equal seeds give equal comparisons; a statistic that is NaN for the controls or the group raises."""
    cov, m = matched_world()
    values = np.random.default_rng(9).standard_normal(D_MLP)
    a = compare_groups(mean_of(values), Adjustment(cov), m, "greater", LEVEL, seed=3)
    b = compare_groups(mean_of(values), Adjustment(cov), m, "greater", LEVEL, seed=3)
    np.testing.assert_array_equal(a.adjusted, b.adjusted)
    np.testing.assert_array_equal(a.unmatched, b.unmatched)
    bad = values.copy()
    bad[m.groups[0, 0]] = np.nan
    with pytest.raises(ValueError, match="control group"):
        compare_groups(mean_of(bad), Adjustment(cov), m, "greater", LEVEL, seed=3)
    bad = values.copy()
    bad[m.specialists[0]] = np.nan
    with pytest.raises(ValueError, match="group under test"):
        compare_groups(mean_of(bad), Adjustment(cov), m, "greater", LEVEL, seed=3)


def test_quadratic_adjustment_removes_a_convex_covariate_effect_that_a_line_leaves():
    """A per-neuron value that rises as the square of one covariate's score (ln write norm; plus N(0, 1)
    noise), specialists the top 16 by write norm × lognormal noise (SMD 0.37 on write norm: within the
    balance limit). Over 100 replications a linear adjustment rejects at p ≤ 0.05 about 41% of the time
    (the matched neighbours sit nearer the middle, and a line under-corrects the convex rise: C8 v3's
    defect); the quadratic adjustment does not reject more often than 5% allows (binomial, tail TAIL)."""
    x, write_norm = world(11)
    rng = np.random.default_rng(11)
    spec = np.argsort(-np.log(write_norm) - 0.6 * rng.standard_normal(D_MLP))[:N_SPECIALISTS]
    cov = neuron_covariates(x, write_norm, spec)
    m = matched_groups(cov, spec, N_GROUPS, NEIGHBOURS, seed=11)
    assert 0.25 < m.smd["log_write_norm"] < MAX_SMD, m.smd
    score = cov.scores[:, COVARIATES.index("log_write_norm")]
    rejections = {1: 0, 2: 0}
    for r in range(100):
        values = score**2 + np.random.default_rng(500 + r).standard_normal(D_MLP)
        for degree in rejections:
            rejections[degree] += compare_groups(mean_of(values), Adjustment(cov, degree), m, "greater", LEVEL, seed=r).p <= 0.05
    assert_rate_at_least(rejections[1], 100, 0.2, TAIL, "linear adjustment's rejections")
    assert_rate_at_most(rejections[2], 100, 0.05, TAIL, "quadratic adjustment's rejections")


def test_sampling_gap_moves_the_tested_value_and_widens_the_null():
    """Specialists (column 0) whose bootstrap values are biased by +0.5 and spread with SD 2, controls by +0.1
    with SD 1: the gap is bias 0.4 and excess variance 3 (exact for these draws); the comparison tests
    observed − 0.4 against a null whose spread grows by √(1 + 3 / residual variance) beyond the centre's."""
    rng = np.random.default_rng(3)
    unit = rng.standard_normal(400)
    unit = (unit - unit.mean()) / unit.std(ddof=1)
    resampled = np.column_stack([1.5 + 2.0 * unit] + [0.1 + np.roll(unit, k) for k in range(1, 6)])
    gap = sampling_gap(resampled, np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
    assert gap.bias == pytest.approx(0.4) and gap.excess_variance == pytest.approx(3.0)
    assert gap.specialists_sd == pytest.approx(2.0) and gap.controls_sd == pytest.approx(1.0)
    assert sampling_gap(resampled[:, ::-1], np.zeros(6)).excess_variance == 0.0   # never negative
    cov, m = matched_world()
    values = np.random.default_rng(8).standard_normal(D_MLP)
    fit = fit_controls(mean_of(values), Adjustment(cov), m, seed=1)
    x_spec = Adjustment(cov).features(m.specialists)
    plain = compare(0.5, x_spec, fit, "greater", LEVEL)
    gapped = compare(0.5, x_spec, fit, "greater", LEVEL, gap)
    assert gapped.tested == pytest.approx(0.1) and gapped.observed == 0.5 and plain.tested == 0.5
    residual_var = np.var(fit.residuals, ddof=1)
    assert np.std(gapped.adjusted, ddof=1) / np.std(plain.adjusted, ddof=1) == pytest.approx(
        np.sqrt((residual_var + fit.centre_variance + 3.0) / (residual_var + fit.centre_variance)))
    with pytest.raises(ValueError, match="resampled"):
        sampling_gap(resampled[:, :1], np.zeros(1))


def test_sampling_gap_drops_a_resample_undefined_for_any_group():
    """A resample marked undefined (C6's split-half participation ratio whose halves do not align, NaN for one
    group) is left out for every group, so the groups stay paired: the gap equals the one computed without that
    row, and the record counts it. More than MAX_UNDEFINED_SHARE undefined, an unmarked NaN, an infinite value
    or a non-finite observed value are errors."""
    resampled = np.random.default_rng(4).standard_normal((200, 4))
    holed = resampled.copy()
    holed[7, 2] = np.nan
    undefined = np.isnan(holed).any(axis=1)
    gap = sampling_gap(holed, np.zeros(4), undefined)
    reference = sampling_gap(np.delete(resampled, 7, axis=0), np.zeros(4))
    assert gap.fields() == {**reference.fields(), "dropped_resamples": 1}
    with pytest.raises(ValueError, match="not finite"):
        sampling_gap(holed, np.zeros(4))                       # a NaN nobody marked undefined
    too_many = np.arange(200) < MAX_UNDEFINED_SHARE * 200 + 1
    with pytest.raises(ValueError, match=f"undefined on {int(too_many.sum())} of 200"):
        sampling_gap(resampled, np.zeros(4), too_many)
    infinite = resampled.copy()
    infinite[3, 1] = np.inf
    with pytest.raises(ValueError, match="resampled group statistic is not finite"):
        sampling_gap(infinite, np.zeros(4))
    with pytest.raises(ValueError, match="observed group statistic is not finite"):
        sampling_gap(resampled, np.array([0.0, np.nan, 0.0, 0.0]))
