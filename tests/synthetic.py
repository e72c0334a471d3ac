"""Synthetic data with known truth shared by the analysis tests (no models, no mocks).

Every generator is seeded and documents what it plants; the rate checks state the probability
with which they fail although the tested rate is right.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom


def factor_activations(seed: int, n_positions: int, n_neurons: int, *, global_spread: float = 0.0,
                       blocks: np.ndarray | None = None, block_loading: float = 0.0) -> np.ndarray:
    """Activations ``[n_positions, n_neurons]``: iid N(0, 1) noise, plus

    - with ``global_spread`` > 0, one global factor f_t with lognormal loadings λ_n = e^(−1 + s·N(0,1))
      (neurons that load more vary more and co-activate more: the hard null of matched groups);
    - with ``blocks`` (one label per neuron, −1 for none), one factor per label shared by that
      block's neurons with loading ``block_loading`` (within-block r = l² / (1 + l²) without the
      global factor).
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_positions, n_neurons))
    if global_spread > 0:
        loadings = np.exp(-1.0 + global_spread * rng.standard_normal(n_neurons))
        x += loadings * rng.standard_normal((n_positions, 1))
    if blocks is not None:
        blocks = np.asarray(blocks)
        labels = np.unique(blocks[blocks >= 0])
        factors = rng.standard_normal((n_positions, labels.size))
        member = blocks >= 0
        x[:, member] += block_loading * factors[:, np.searchsorted(labels, blocks[member])]
    return x


def assert_rate_at_most(count: int, n: int, rate: float, tail: float, what: str = "") -> None:
    """Fail when ``count`` events in ``n`` independent trials are too many for a rate ≤ ``rate``:
    P(Binomial(n, rate) ≥ count) ≤ ``tail`` (so a right rate fails with probability ≤ ``tail``)."""
    upper_tail = binom.sf(count - 1, n, rate)
    assert upper_tail > tail, f"{what}: {count} of {n} (expected ≤ {rate:.3f}·{n} = {rate * n:.1f}; P = {upper_tail:.2g})"


def assert_rate_at_least(count: int, n: int, rate: float, tail: float, what: str = "") -> None:
    """Fail when ``count`` events in ``n`` independent trials are too few for a rate ≥ ``rate``:
    P(Binomial(n, rate) ≤ count) ≤ ``tail`` (so a right rate fails with probability ≤ ``tail``)."""
    lower_tail = binom.cdf(count, n, rate)
    assert lower_tail > tail, f"{what}: {count} of {n} (expected ≥ {rate:.3f}·{n} = {rate * n:.1f}; P = {lower_tail:.2g})"
