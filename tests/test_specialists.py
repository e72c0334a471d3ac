"""The seeded splits of the evaluation sequences: selection vs test half (C5–C9) and the test half's two halves
(C5's partitions, C6's split-half statistics) come from one function, ``seeded_split``."""

from __future__ import annotations

import numpy as np
import pytest

from harness.claims.specialists import seeded_split, split_sequences


@pytest.mark.parametrize("n, fraction", [(2, 0.5), (5, 0.5), (64, 0.5), (64, 0.25), (7, 0.01), (7, 0.99)])
def test_a_seeded_split_is_two_sorted_disjoint_non_empty_parts_that_cover_every_id(n, fraction):
    first, second = seeded_split(n, fraction, seed=3)
    np.testing.assert_array_equal(np.sort(np.concatenate([first, second])), np.arange(n))
    assert first.size == min(max(1, round(fraction * n)), n - 1) and second.size == n - first.size
    assert np.all(np.diff(first) > 0) and np.all(np.diff(second) > 0)


def test_a_seeded_split_depends_on_its_seed_only():
    np.testing.assert_array_equal(seeded_split(64, 0.5, 1)[0], seeded_split(64, 0.5, 1)[0])
    assert not np.array_equal(seeded_split(64, 0.5, 1)[0], seeded_split(64, 0.5, 2)[0])
    np.testing.assert_array_equal(split_sequences(64, 0.5, 1)[0], seeded_split(64, 0.5, 1)[0])


def test_splits_refuse_too_few_units():
    with pytest.raises(ValueError, match="at least 2 units, got 1"):
        seeded_split(1, 0.5, 0)
    with pytest.raises(ValueError, match="needs at least 4, got 3"):
        split_sequences(3, 0.5, 0)
