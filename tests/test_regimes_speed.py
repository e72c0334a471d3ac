"""The batched segment fitter (harness.analysis.segments) gives the results of the per-curve QR
fitter it replaced: the same breakpoints, plateau sizes and, to float rounding, the same
plateau scores and ΔBIC, on log-normal curves and on planted plateaus.

``_Oracle`` is the replaced implementation (harness/analysis/regimes.py at 61123c7), kept here
verbatim in substance as the reference: one QR decomposition per candidate design, one curve at
a time.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis.regimes import fit_regimes, plateau_statistics
from harness.analysis.segments import REFINE_LEVELS, REFINE_STEPS

D_MLP = 1024
MIN_POINTS = 5
BIN_WIDTH = 0.1
ROUNDING = 1e-9  # largest |old − new| allowed for scores (slope units) and ΔBIC


class _Oracle:
    """The QR-per-candidate fitter of one binned curve at positions x ``[n]``."""

    def __init__(self, x: np.ndarray, min_points: int) -> None:
        self.x, self.min_points = x, min_points

    def design(self, taus: np.ndarray) -> np.ndarray:
        n_candidates, x = taus.shape[0], self.x
        base = np.broadcast_to(np.stack([np.ones_like(x), x], axis=1), (n_candidates, x.size, 2))
        return np.concatenate([base, np.maximum(x[None, :, None] - taus[:, None, :], 0.0)], axis=2)

    def best(self, taus: np.ndarray, y: np.ndarray) -> np.ndarray:
        q, _ = np.linalg.qr(self.design(taus))
        projected = np.einsum("cnk,n->ck", q, y)
        return taus[np.argmax(np.einsum("ck,ck->c", projected, projected))]

    def valid(self, taus: np.ndarray) -> np.ndarray:
        cuts = np.searchsorted(self.x, taus, side="left")
        edges = np.concatenate([np.zeros((len(taus), 1), int), cuts, np.full((len(taus), 1), self.x.size)], axis=1)
        return np.all(np.diff(edges, axis=1) >= self.min_points, axis=1) & np.all(np.diff(taus, axis=1) > 0, axis=1)

    def grid(self, n_breaks: int) -> np.ndarray:
        positions = np.arange(self.min_points, self.x.size - self.min_points + 1)
        if n_breaks == 1:
            return self.x[positions[:, None]]
        k1, k2 = np.meshgrid(positions, positions, indexing="ij")
        keep = k2 - k1 >= self.min_points
        return self.x[np.stack([k1[keep], k2[keep]], axis=1)]

    def refine(self, y: np.ndarray, best: np.ndarray) -> np.ndarray:
        x = self.x
        ks = np.searchsorted(x, best)
        lo, hi = x[np.maximum(ks - 1, 0)], x[np.minimum(ks + 1, x.size - 1)]
        centres, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        for _ in range(REFINE_LEVELS):
            axes = [np.linspace(c - h, c + h, REFINE_STEPS) for c, h in zip(centres, half)]
            grid = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=1)
            best = self.best(np.concatenate([best[None, :], grid[self.valid(grid)]]), y)
            centres, half = best, 2.0 * half / (REFINE_STEPS - 1)
        return best

    def fit(self, y: np.ndarray, n_segments: int) -> tuple[np.ndarray, np.ndarray, float]:
        """(breakpoints, slopes, BIC) of the best fit with ``n_segments`` segments."""
        breaks = np.zeros(0)
        if n_segments > 1:
            breaks = self.refine(y - y.mean(), self.best(self.grid(n_segments - 1), y - y.mean()))
        design = self.design(breaks[None, :])[0]
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        rss, n = float(np.sum((y - design @ coef) ** 2)), self.x.size
        return breaks, np.cumsum(coef[1:]), n * np.log(max(rss, np.finfo(float).tiny) / n) + 2 * n_segments * np.log(n)


def _oracle_statistics(influence: np.ndarray) -> tuple[float, float, float, int]:
    """(plateau score, ΔBIC(3 vs 2), first breakpoint, plateau size) of one curve ``[d_mlp]``, the old way."""
    positive = np.sort(influence[np.isfinite(influence) & (influence > 0)])[::-1]
    ln_rank = np.log(np.arange(1, positive.size + 1, dtype=float))
    _, bins = np.unique(np.floor(ln_rank / BIN_WIDTH + 1e-9), return_inverse=True)
    counts = np.bincount(bins)
    oracle = _Oracle(np.bincount(bins, weights=ln_rank) / counts, MIN_POINTS)
    y = np.bincount(bins, weights=np.log(positive)) / counts
    (_, _, bic2), (breaks, slopes, bic3) = oracle.fit(y, 2), oracle.fit(y, 3)
    return slopes[0] - slopes[1], bic2 - bic3, breaks[0], int(np.count_nonzero(ln_rank < breaks[0]))


def _lognormal(n: int, seed: int) -> np.ndarray:
    """Curves ``[n, D_MLP]`` of log-normal influences (no plateau), a tenth of each negative."""
    rng = np.random.default_rng(seed)
    curves = np.exp(rng.normal(-6.0, 1.5, (n, D_MLP)))
    curves[:, : D_MLP // 10] *= -1.0
    return curves


def _planted(n: int, seed: int) -> np.ndarray:
    """Curves ``[n, D_MLP]``: a flat plateau of 20–80 neurons, a power law to rank 245, a steep decay,
    log-normal noise of SD 0.02–0.2, neurons shuffled."""
    rng = np.random.default_rng(seed)
    ln_rank = np.log(np.arange(1, D_MLP + 1))
    rows = []
    for _ in range(n):
        start, exponent = np.log(rng.integers(20, 81)), rng.uniform(0.5, 1.0)
        ln_i = (-0.05 * np.minimum(ln_rank, start) - exponent * np.clip(ln_rank - start, 0.0, np.log(245) - start)
                - 3.0 * np.maximum(ln_rank - np.log(245), 0.0))
        rows.append(rng.permutation(np.exp(ln_i + rng.normal(0.0, rng.uniform(0.02, 0.2), D_MLP))))
    return np.stack(rows)


@pytest.mark.parametrize("curves", [_lognormal(40, 0), _planted(40, 1)], ids=["lognormal", "planted"])
def test_batched_fits_equal_the_per_curve_qr_fits(curves: np.ndarray) -> None:
    new = plateau_statistics(curves, MIN_POINTS, BIN_WIDTH)
    old = np.array([_oracle_statistics(c) for c in curves]).T
    np.testing.assert_array_equal(new.first_breakpoint, old[2])
    np.testing.assert_array_equal(new.plateau_size, old[3])
    np.testing.assert_allclose(new.score, old[0], rtol=0, atol=ROUNDING)
    np.testing.assert_allclose(new.delta_bic_3v2, old[1], rtol=0, atol=ROUNDING)


def test_fit_regimes_and_plateau_statistics_agree() -> None:
    curves = np.concatenate([_planted(3, 2), _lognormal(3, 3)])
    stats = plateau_statistics(curves, MIN_POINTS, BIN_WIDTH)
    for i, influence in enumerate(curves):
        fit = fit_regimes(influence, MIN_POINTS, BIN_WIDTH)
        assert (fit.fits[3].breakpoints[0], fit.plateau_size) == (stats.first_breakpoint[i], stats.plateau_size[i])
        assert (fit.plateau_score, fit.delta_bic_3v2) == pytest.approx((stats.score[i], stats.delta_bic_3v2[i]),
                                                                      rel=0, abs=ROUNDING)


def test_curves_of_different_lengths_and_unfittable_ones_in_one_batch() -> None:
    curves = _lognormal(4, 4)
    curves[1, :900] = -1.0        # 124 positive neurons: a shorter binning
    curves[2, :1015] = np.nan     # 9 positive neurons: too few to fit
    stats = plateau_statistics(curves, MIN_POINTS, BIN_WIDTH)
    assert list(stats.fitted) == [True, True, False, True]
    for i in (0, 1, 3):
        assert stats.score[i] == pytest.approx(_oracle_statistics(curves[i])[0], abs=ROUNDING)
