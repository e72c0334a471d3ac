"""Random control groups: exclusion, distinctness, seeding, uniformity, matching, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from harness.analysis.groups import random_groups

N_NEURONS = 200
SIZE = 10
EXCLUDE = np.arange(0, 40, 2)  # 20 ids


def test_groups_avoid_the_excluded_set_and_hold_distinct_sorted_ids():
    groups = random_groups(N_NEURONS, SIZE, EXCLUDE, 500, seed=3)
    assert groups.shape == (500, SIZE) and groups.dtype == np.int64
    assert not np.isin(groups, EXCLUDE).any()
    assert np.all(np.diff(groups, axis=1) > 0)
    assert groups.min() >= 0 and groups.max() < N_NEURONS


def test_same_seed_same_groups_other_seed_other_groups():
    a = random_groups(N_NEURONS, SIZE, EXCLUDE, 50, seed=7)
    assert np.array_equal(a, random_groups(N_NEURONS, SIZE, EXCLUDE, 50, seed=7))
    assert not np.array_equal(a, random_groups(N_NEURONS, SIZE, EXCLUDE, 50, seed=8))


def test_every_candidate_is_drawn_equally_often():
    n_groups = 3000
    groups = random_groups(N_NEURONS, SIZE, EXCLUDE, n_groups, seed=0)
    candidates = np.setdiff1d(np.arange(N_NEURONS), EXCLUDE)
    counts = np.bincount(groups.ravel(), minlength=N_NEURONS)[candidates]
    # Under uniform sampling every candidate is expected n_groups · size / n_candidates times.
    assert chisquare(counts).pvalue > 0.001


def test_matched_groups_reproduce_the_target_bins_of_the_matched_value():
    rng = np.random.default_rng(0)
    values = rng.standard_normal(N_NEURONS)
    target = np.argsort(values)[-SIZE:]  # the group with the highest values, as specialists often are
    n_bins = 5
    groups = random_groups(N_NEURONS, SIZE, target, 200, seed=1, match_on=values, n_bins=n_bins)
    assert not np.isin(groups, target).any()
    candidates = np.setdiff1d(np.arange(N_NEURONS), target)
    edges = np.quantile(values[candidates], np.linspace(0, 1, n_bins + 1)[1:-1])
    want = np.bincount(np.searchsorted(edges, values[target], side="right"), minlength=n_bins)
    got = np.stack([np.bincount(np.searchsorted(edges, values[g], side="right"), minlength=n_bins) for g in groups])
    assert np.all(got == want)
    unmatched = random_groups(N_NEURONS, SIZE, target, 200, seed=1)
    assert values[groups].mean() > values[unmatched].mean()


def test_match_to_a_group_other_than_the_excluded_one():
    values = np.arange(N_NEURONS, dtype=float)
    target = np.arange(100, 100 + SIZE)
    groups = random_groups(N_NEURONS, SIZE, EXCLUDE, 100, seed=2, match_on=values, match_to=target, n_bins=4)
    assert not np.isin(groups, EXCLUDE).any()
    # The target lies in one quarter of the candidates' values, so every draw does too.
    candidates = np.setdiff1d(np.arange(N_NEURONS), EXCLUDE)
    quartiles = np.quantile(values[candidates], [0.0, 0.25, 0.5, 0.75, 1.0])
    (quarter,) = np.unique(np.searchsorted(quartiles[1:-1], values[target], side="right"))
    lo, hi = quartiles[quarter], quartiles[quarter + 1]
    assert np.all((values[groups] >= lo) & (values[groups] <= hi))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_neurons=20, size=10, exclude=np.arange(15), n_groups=5, seed=0), "only 5 of 20"),
        (dict(n_neurons=20, size=3, exclude=[25], n_groups=5, seed=0), "outside"),
        (dict(n_neurons=20, size=0, exclude=[], n_groups=5, seed=0), "≥ 1"),
        (dict(n_neurons=20, size=3, exclude=[1, 2, 3], n_groups=5, seed=0, match_on=np.ones(5)), "one value per neuron"),
        (dict(n_neurons=20, size=2, exclude=[1, 2, 3], n_groups=5, seed=0, match_on=np.arange(20.0)), "group size"),
        (dict(n_neurons=20, size=3, exclude=[1], n_groups=5, seed=0, match_to=[1, 2, 3]), "without match_on"),
        (dict(n_neurons=20, size=3, exclude=[17, 18, 19], n_groups=5, seed=0, match_on=np.arange(20.0), n_bins=10), "impossible"),
    ],
)
def test_bad_requests_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        random_groups(**kwargs)
