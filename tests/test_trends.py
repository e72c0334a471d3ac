"""Spearman trend over checkpoints: agreement with scipy, size on null data, power, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from harness.claims.registry import SETTINGS
from harness.analysis.trends import spearman_trend

ALPHA = SETTINGS["alpha"].default
STEPS = np.array([0, 1, 2, 4, 16, 64, 256, 1000, 4000, 16000])
"""A Pythia-like log-spaced schedule; step 0 is dropped by default, leaving 9 checkpoints."""
HYPOTHESIS = settings(max_examples=20, deadline=None, derandomize=True)


def exact_p(values: np.ndarray, steps: np.ndarray) -> float:
    """Exact one-sided permutation p for ρ > 0 from scipy (all n! pairings; values without ties)."""
    n = steps.size
    ranked_x = stats.rankdata(np.log(steps))

    def rho(v: np.ndarray, axis: int) -> np.ndarray:
        d = stats.rankdata(v, axis=axis) - ranked_x
        return 1.0 - 6.0 * np.sum(d**2, axis=axis) / (n * (n**2 - 1))

    return stats.permutation_test(
        (values,), rho, permutation_type="pairings", alternative="greater",
        n_resamples=np.inf, vectorized=True,
    ).pvalue


def mc_tolerance(p: float, n_draws: int) -> float:
    """Four Monte-Carlo standard errors of a proportion p estimated from n_draws, plus one draw."""
    return 4.0 * math.sqrt(p * (1.0 - p) / n_draws) + 1.0 / n_draws


@HYPOTHESIS
@given(seed=st.integers(0, 2**32 - 1), ties=st.booleans())
def test_rho_is_spearman_against_ln_step(seed: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 3, STEPS.size).astype(float) if ties else rng.normal(size=STEPS.size)
    result = spearman_trend(values, STEPS, n_permutations=10, seed=seed)
    reference = stats.spearmanr(values[1:], np.log(STEPS[1:])).statistic
    expected = 0.0 if np.isnan(reference) else reference  # constant values: no trend
    assert result.rho == pytest.approx(expected, abs=1e-12)
    assert result.n == STEPS.size - 1
    np.testing.assert_allclose(result.x, np.log(STEPS[1:]))


def test_permutation_p_matches_the_exact_test() -> None:
    steps = STEPS[1:8]  # 7 checkpoints: 5,040 pairings, cheap to enumerate
    n_permutations = 20_000
    for seed in range(5):
        rng = np.random.default_rng(seed)
        values = 0.3 * seed * np.log(steps) + rng.normal(size=steps.size)
        p = spearman_trend(values, steps, n_permutations=n_permutations, seed=seed).p_value
        reference = exact_p(values, steps)
        assert abs(p - reference) <= mc_tolerance(reference, n_permutations), (seed, p, reference)


def test_size_on_shuffled_checkpoints() -> None:
    """Pure-noise statistics: the test rejects at most α of the time (plus Monte-Carlo error)."""
    n_datasets = 400
    rejections = sum(
        spearman_trend(np.random.default_rng(seed).normal(size=STEPS.size), STEPS,
                       n_permutations=999, seed=seed).p_value < ALPHA
        for seed in range(n_datasets)
    )
    assert rejections / n_datasets <= ALPHA + 3.0 * math.sqrt(ALPHA * (1 - ALPHA) / n_datasets)


def test_power_on_a_planted_monotone_trend() -> None:
    """A noisy increasing trend in ln step is detected as often as the exact test detects it,
    and clearly more often than α."""
    n_datasets, n_permutations = 200, 999
    steps = STEPS[1:8]
    ours, exact = [], []
    for seed in range(n_datasets):
        values = 0.5 * np.log(steps) + np.random.default_rng(seed).normal(size=steps.size)
        ours.append(spearman_trend(values, steps, n_permutations=n_permutations, seed=seed).p_value < ALPHA)
        exact.append(exact_p(values, steps) < ALPHA)
    power, exact_power = np.mean(ours), np.mean(exact)
    assert abs(power - exact_power) <= mc_tolerance(exact_power, n_datasets)
    assert power > ALPHA + 3.0 * math.sqrt(ALPHA * (1 - ALPHA) / n_datasets)


def test_strictly_increasing_values_reach_the_smallest_p() -> None:
    n_permutations = 999
    values = np.exp(np.arange(STEPS.size - 1.0))  # any increasing function of the step
    result = spearman_trend(np.r_[5.0, values], STEPS, n_permutations=n_permutations, seed=0)
    assert result.rho == pytest.approx(1.0)
    # Only the identity pairing of 9! reaches ρ = 1: the expected count among the draws is < 1.
    assert result.p_value <= (1 + 1) / (1 + n_permutations)


def test_step0_ln1_ties_step0_with_step1() -> None:
    values = np.arange(STEPS.size, dtype=float)
    result = spearman_trend(values, STEPS, n_permutations=10, seed=0, step0="ln1")
    assert result.n == STEPS.size
    assert result.x[0] == result.x[1] == 0.0
    assert result.rho == pytest.approx(stats.spearmanr(values, np.log(np.maximum(STEPS, 1))).statistic)
    assert result.rho < 1.0  # the tie hides the order of steps 0 and 1


def test_constant_values_have_no_trend() -> None:
    result = spearman_trend(np.ones(5), [1, 2, 3, 4, 5], n_permutations=99, seed=0)
    assert result.rho == 0.0 and result.p_value == 1.0


@pytest.mark.parametrize(
    ("values", "steps", "kwargs", "message"),
    [
        ([1.0, np.nan, 2.0, 3.0], [1, 2, 3, 4], {}, "finite"),
        ([1.0, 2.0, 3.0], [1, 2, 3, 4], {}, "equal length"),
        ([1.0, 2.0, 3.0], [0, 1, 2], {}, "at least 3 checkpoints"),
        ([1.0, 2.0], [1, 2], {"step0": "ln1"}, "at least 3 checkpoints"),
        ([1.0, 2.0, 3.0], [1, 1, 2], {}, "distinct"),
        ([1.0, 2.0, 3.0], [-1, 1, 2], {}, "non-negative"),
        ([1.0, 2.0, 3.0], [1, 2, 3], {"step0": "drop"}, "step0"),
        ([1.0, 2.0, 3.0], [1, 2, 3], {"n_permutations": 0}, "n_permutations"),
    ],
)
def test_bad_input_is_refused(values, steps, kwargs, message) -> None:
    arguments = {"n_permutations": 10, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        spearman_trend(values, steps, **arguments)
