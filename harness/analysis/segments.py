"""Continuous piecewise-linear least squares with 1, 2 and 3 segments, for many curves at once.

A curve is y ``[n]`` at ascending positions x ``[n]`` (shared by every curve of a batch). The
model with s segments is the hinge basis y = b0 + b1·x + Σ_j c_j·(x − τ_j)_+ with s − 1
breakpoints τ. The breakpoints minimise the residual sum of squares (RSS): first over every
tuple of data positions x_k leaving at least ``min_points`` points per segment (the grid), then
over ``REFINE_LEVELS`` local grids of ``REFINE_STEPS`` positions per breakpoint around the
optimum (the first spans the optimum's data neighbours, each next one ± one step of the
previous), keeping the previous optimum as a candidate.

How a candidate is scored (Frisch–Waugh–Lovell). Every design shares the columns 1 and x, so
they are projected out once: v⊥ = v − v̄ − x̃·(x̃·v)/(x̃·x̃) with x̃ = x − x̄, for y and for each
hinge column h_j = (x − τ_j)_+. The RSS of the whole design is ‖y⊥‖² − gain with
gain = bᵀA⁻¹b, A_ij = h_i⊥·h_j⊥ and b_i = h_i⊥·y⊥ (a 1×1 or 2×2 system, solved in closed
form), and the best candidate is the one with the largest gain. The grid's hinge columns and
their Gram matrix A depend on x alone and are computed once per x (``SegmentGrid``); a local
grid is scored for a block of curves in one pass over arrays ``[curves, candidates,
breakpoints, n]``. The fitted hinge coefficients are A⁻¹b, the slope and intercept those of an
OLS of y − Σ c_j h_j on x.

This replaced one QR decomposition of every candidate's design per curve (≈ 4–14 ms a curve on
2 cores, mostly Python overhead of small LAPACK calls); the results agree with that
implementation to float rounding (tests/test_regimes_speed.py holds it as the oracle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

REFINE_STEPS = 11
"""Breakpoint positions per breakpoint and level of the local refinement around the grid optimum."""

REFINE_LEVELS = 2
"""Zoom levels of the refinement: the first spans the optimum's data neighbours, each next one
± one step of the previous (resolution (bin spacing)·(2 / (REFINE_STEPS − 1))^levels)."""

BLOCK_CURVES = 256
"""Curves refined together: a block holds about 15 arrays of 256 × 122 × 2 float64 (≈ 7.5 MB)."""


@dataclass(frozen=True)
class SegmentFit:
    """A continuous piecewise-linear fit of ln I against ln rank.

    ``breakpoints`` are in ln rank (length ``n_segments − 1``); ``slopes`` are d ln I / d ln rank
    of each segment (negative for a decaying curve); ``rss`` and ``bic`` refer to the binned
    curve the fit was made on.
    """

    n_segments: int
    breakpoints: tuple[float, ...]
    intercept: float
    slopes: tuple[float, ...]
    rss: float
    bic: float

    def evaluate(self, x: np.ndarray | Sequence[float]) -> np.ndarray:
        """The fitted ln I at ln-rank positions ``x`` (any shape)."""
        x = np.asarray(x, dtype=float)
        y = self.intercept + self.slopes[0] * x
        for tau, change in zip(self.breakpoints, np.diff(self.slopes)):
            y = y + change * np.maximum(x - tau, 0.0)
        return y


@dataclass(frozen=True)
class SegmentFits:
    """The best fits with ``n_segments`` segments of G curves: ``breakpoints`` ``[G, n_segments − 1]``
    (x units), ``intercept`` ``[G]``, ``slopes`` ``[G, n_segments]`` (y per x unit), ``rss`` ``[G]``
    and Gaussian ``bic`` ``[G]`` = n·ln(RSS/n) + 2·n_segments·ln n."""

    n_segments: int
    breakpoints: np.ndarray
    intercept: np.ndarray
    slopes: np.ndarray
    rss: np.ndarray
    bic: np.ndarray

    def curve(self, i: int) -> SegmentFit:
        """Curve ``i``'s fit."""
        return SegmentFit(self.n_segments, tuple(float(t) for t in self.breakpoints[i]), float(self.intercept[i]),
                          tuple(float(s) for s in self.slopes[i]), float(self.rss[i]), float(self.bic[i]))


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A⁻¹b ``[..., k]`` for symmetric ``A`` ``[..., k, k]`` and ``b`` ``[..., k]``, k = 1 or 2 (closed form)."""
    if b.shape[-1] == 1:
        return b / A[..., 0]
    a11, a12, a22 = A[..., 0, 0], A[..., 0, 1], A[..., 1, 1]
    det = a11 * a22 - a12 * a12
    return np.stack([(a22 * b[..., 0] - a12 * b[..., 1]) / det, (a11 * b[..., 1] - a12 * b[..., 0]) / det], -1)


def _valid(x: np.ndarray, taus: np.ndarray, min_points: int) -> np.ndarray:
    """Bool ``[...]``: breakpoint tuples ``taus`` ``[..., k]`` whose segments (x < τ1, τ1 ≤ x < τ2, …,
    x ≥ τ_k) each hold ≥ min_points points and whose breakpoints increase."""
    cuts = np.searchsorted(x, taus, side="left")
    edges = np.concatenate([np.zeros(cuts.shape[:-1] + (1,), int), cuts, np.full(cuts.shape[:-1] + (1,), x.size)], -1)
    return np.all(np.diff(edges, axis=-1) >= min_points, axis=-1) & np.all(np.diff(taus, axis=-1) > 0, axis=-1)


def _local_grid(centres: np.ndarray, half_widths: np.ndarray) -> np.ndarray:
    """Breakpoint tuples ``[G, REFINE_STEPS^k, k]`` on a ``REFINE_STEPS``-point grid of ±half_width around
    each curve's centres ``[G, k]`` (the first breakpoint varying slowest)."""
    axes = np.linspace(centres - half_widths, centres + half_widths, REFINE_STEPS, axis=-1)  # [G, k, S]
    if centres.shape[1] == 1:
        return axes.transpose(0, 2, 1)
    first = np.repeat(axes[:, 0], REFINE_STEPS, axis=1)
    second = np.tile(axes[:, 1], (1, REFINE_STEPS))
    return np.stack([first, second], -1)


@dataclass(frozen=True)
class _Suffixes:
    """Sums over the suffixes x_k, …, x_{n−1} of ascending positions x ``[n]``, for k = 0 … n (k = n:
    empty), each ``[n + 1]``: ``start`` x_k (x_{n−1} for k = n), ``m0`` n − k, ``d1`` Σ (x_i − x_k),
    ``d2`` Σ (x_i − x_k)²."""

    start: np.ndarray
    m0: np.ndarray
    d1: np.ndarray
    d2: np.ndarray

    @classmethod
    def build(cls, x: np.ndarray) -> "_Suffixes":
        start = np.append(x, x[-1])
        members = (np.arange(x.size)[None, :] >= np.arange(x.size + 1)[:, None]).astype(float)
        lengths = members * (x[None, :] - start[:, None])
        return cls(start, members.sum(1), lengths.sum(1), (lengths * lengths).sum(1))

    def of(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A curve's suffix sums ``[G, n + 1]`` for ``y`` ``[G, n]``: Σ_{i≥k} y_i and Σ_{i≥k} (x_i − x_k)·y_i,
        by reversed cumulative sums (O(G·n))."""
        zero = np.zeros(y.shape[:-1] + (1,))
        plain = np.concatenate([np.cumsum(y[..., ::-1], axis=-1)[..., ::-1], zero], -1)
        moment = np.concatenate([np.cumsum((y * self.start[:-1])[..., ::-1], axis=-1)[..., ::-1], zero], -1)
        return plain, moment - self.start * plain


class SegmentGrid:
    """The fitter of curves at positions ``x`` ``[n]`` (ascending) with ≥ ``min_points`` points per segment."""

    def __init__(self, x: np.ndarray, min_points: int) -> None:
        self.x = np.asarray(x, dtype=float)
        self.min_points = int(min_points)
        self._xc = self.x - self.x.mean()
        self._sxx = float(self._xc @ self._xc)
        positions = np.arange(self.min_points, self.x.size - self.min_points + 1)
        self._taus = self.x[positions]                                         # [T]
        self._hinges = self.project(np.maximum(self.x[None, :] - self._taus[:, None], 0.0))  # [T, n]
        self._gram = self._hinges @ self._hinges.T                             # [T, T]
        k1, k2 = np.meshgrid(np.arange(positions.size), np.arange(positions.size), indexing="ij")
        keep = k2 - k1 >= self.min_points
        self._pairs = (k1[keep], k2[keep])                                     # [P] each, first index slowest
        self._suffixes = _Suffixes.build(self.x)

    def project(self, v: np.ndarray) -> np.ndarray:
        """``v`` ``[..., n]`` with its least-squares fit on 1 and x removed (v⊥ of the module docstring)."""
        v = v - v.mean(-1, keepdims=True)
        return v - self._xc * ((v @ self._xc) / self._sxx)[..., None]

    def fit(self, y: np.ndarray) -> dict[int, SegmentFits]:
        """The best 1-, 2- and 3-segment fits of curves ``y`` ``[G, n]``."""
        y = np.atleast_2d(np.asarray(y, dtype=float))
        y_perp = self.project(y)
        out = {1: self._fits(y, y_perp, np.zeros((y.shape[0], 0)))}
        for s, best in ((2, self._grid_best_one(y_perp)), (3, self._grid_best_two(y_perp))):
            refined = np.concatenate([self._refine(y_perp[b:b + BLOCK_CURVES], best[b:b + BLOCK_CURVES])
                                      for b in range(0, y.shape[0], BLOCK_CURVES)])
            out[s] = self._fits(y, y_perp, refined)
        return out

    def _grid_best_one(self, y_perp: np.ndarray) -> np.ndarray:
        """The grid's best single breakpoint ``[G, 1]``."""
        b = self._hinges @ y_perp.T                                            # [T, G]
        gain = b * b / np.diag(self._gram)[:, None]
        return self._taus[np.argmax(gain, axis=0)][:, None]

    def _grid_best_two(self, y_perp: np.ndarray) -> np.ndarray:
        """The grid's best breakpoint pair ``[G, 2]``: gain = (a_jj·b_i² − 2a_ij·b_i·b_j + a_ii·b_j²)/det."""
        i, j = self._pairs
        a_ii, a_ij, a_jj = self._gram[i, i, None], self._gram[i, j, None], self._gram[j, j, None]
        b = self._hinges @ y_perp.T                                            # [T, G]
        b_i, b_j = b[i], b[j]                                                  # [P, G]
        gain = (a_jj * b_i * b_i - 2 * a_ij * b_i * b_j + a_ii * b_j * b_j) / (a_ii * a_jj - a_ij * a_ij)
        best = np.argmax(gain, axis=0)
        return np.stack([self._taus[i[best]], self._taus[j[best]]], -1)

    def _gain(self, sums: tuple[np.ndarray, np.ndarray], taus: np.ndarray) -> np.ndarray:
        """bᵀA⁻¹b ``[G, C]`` of candidate breakpoints ``taus`` ``[G, C, k]`` (increasing along k) for curves
        whose suffix sums (``_Suffixes.of`` of y⊥ ``[G, n]``) are ``sums``; NaN or inf where a candidate's
        hinges are collinear (invalid candidates)."""
        sx, n = self._suffixes, self.x.size
        at = np.searchsorted(self.x, taus, side="left")                         # [G, C, k]
        e = sx.start[at] - taus
        m0, d1, d2 = sx.m0[at], sx.d1[at], sx.d2[at]
        offset = sx.start[at] - self.x.mean()
        ones = d1 + e * m0                                                      # 1ᵀh
        centred = d2 + (offset + e) * d1 + offset * e * m0                      # x̃ᵀh
        plain, moment = sums
        rows = np.arange(plain.shape[0])[:, None, None]
        b = moment[rows, at] + e * plain[rows, at]

        def a(i: int, j: int) -> np.ndarray:
            """h_i⊥·h_j⊥ for τ_i ≤ τ_j: Σ over the points above τ_j of (x − τ_i)(x − τ_j), less the fit on 1, x."""
            f = e[..., j] + taus[..., j] - taus[..., i]
            inner = d2[..., j] + (f + e[..., j]) * d1[..., j] + f * e[..., j] * m0[..., j]
            return inner - ones[..., i] * ones[..., j] / n - centred[..., i] * centred[..., j] / self._sxx

        if taus.shape[-1] == 1:
            A = a(0, 0)[..., None, None]
        else:
            off = a(0, 1)
            A = np.stack([np.stack([a(0, 0), off], -1), np.stack([off, a(1, 1)], -1)], -2)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.einsum("gck,gck->gc", _solve(A, b), b)

    def _refine(self, y_perp: np.ndarray, best: np.ndarray) -> np.ndarray:
        """Zoom in on each curve's grid optimum ``best`` ``[G, k]`` (module docstring)."""
        x, rows = self.x, np.arange(best.shape[0])
        ks = np.searchsorted(x, best)
        lo, hi = x[np.maximum(ks - 1, 0)], x[np.minimum(ks + 1, x.size - 1)]
        centres, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        sums = self._suffixes.of(y_perp)
        for _ in range(REFINE_LEVELS):
            candidates = np.concatenate([best[:, None, :], _local_grid(centres, half)], axis=1)
            valid = _valid(x, candidates, self.min_points)
            valid[:, 0] = True
            gain = np.where(valid, self._gain(sums, candidates), -np.inf)
            best = candidates[rows, np.argmax(gain, axis=1)]
            centres, half = best, 2.0 * half / (REFINE_STEPS - 1)
        return best

    def _fits(self, y: np.ndarray, y_perp: np.ndarray, taus: np.ndarray) -> SegmentFits:
        """Least-squares fits of curves ``y`` ``[G, n]`` with breakpoints ``taus`` ``[G, k]``."""
        raw = np.maximum(self.x - taus[..., None], 0.0)                        # [G, k, n]
        h = self.project(raw)
        coef = _solve(np.einsum("gin,gjn->gij", h, h), np.einsum("gkn,gn->gk", h, y_perp)) if taus.shape[1] \
            else np.zeros_like(taus)
        residual = y_perp - np.einsum("gk,gkn->gn", coef, h)
        rss = np.einsum("gn,gn->g", residual, residual)
        rest = y - np.einsum("gk,gkn->gn", coef, raw)
        slope = (rest @ self._xc) / self._sxx
        intercept = rest.mean(-1) - slope * self.x.mean()
        n, s = self.x.size, taus.shape[1] + 1
        bic = n * np.log(np.maximum(rss, np.finfo(float).tiny) / n) + 2 * s * np.log(n)
        return SegmentFits(s, taus, intercept, np.cumsum(np.concatenate([slope[:, None], coef], 1), 1), rss, bic)
