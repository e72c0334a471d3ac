"""Weight-space spectra of neuron groups (HT-SR; claims C8, C9). Pure numpy.

A neuron group's weight vectors are its rows of a final-MLP matrix in the project's
convention (see ``harness.measure.weights``): ``W_read [d_mlp, d_model]`` (row i = the vector neuron
i reads from the normalised residual stream) and ``W_write [d_mlp, d_model]`` (row i = the
vector it adds to the residual stream). For a group of n rows of width d:

- z-score each row over its d entries (mean 0, population SD 1), ``C = Z Zᵀ / d``, an
  ``[n, n]`` correlation matrix with trace n; eigenvalues λ₁ ≥ … ≥ λ_n;
- Hill α = 1 / mean_{i≤k} ln(λ_i / λ_{k+1}), k = max(1, ⌊k_fraction · n⌋) (methods §7);
- α̂ = 1 + n / Σ_i ln(λ_i / λ_min), the continuous power-law MLE with x_min = λ_min;
- stable rank Σλ / λ₁; spectral entropy −Σ p ln p of p = λ / Σλ (nats, at most ln n);
- Marchenko–Pastur band (1 ± √(n/d))² of ``C`` for independent rows, and the number of
  eigenvalues above its upper edge (spikes: directions the group's vectors share).

Low α = a few shared directions. The rows are z-scored, so every statistic is invariant to
scaling any row (hence the whole matrix). ``d > n`` is required: z-scored rows live in a
(d − 1)-dimensional subspace, so ``C`` is singular when d ≤ n.

This α is the authors' group-correlation Hill index, not WeightWatcher's ESD α, and its scale
depends on n, d and k (iid Gaussian rows: median ≈ 11 at n = 5, d = 256; ≈ 17 at n = 50,
d = 1024): C8 standardises it against matched groups of the same n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_NULL_CHUNK_BYTES = 64 * 2**20  # memory bound of one block of gathered group correlation matrices


def hill_k(n: int, k_fraction: float) -> int:
    """Tail size k = max(1, ⌊k_fraction · n⌋) of the Hill estimator over n eigenvalues."""
    if not 0.0 < k_fraction < 1.0:
        raise ValueError(f"k_fraction must lie in (0, 1), got {k_fraction}")
    if n < 3:
        raise ValueError(f"a group spectrum needs at least 3 eigenvalues, got {n}")
    return max(1, math.floor(k_fraction * n + 1e-9))


def hill_alpha(eigenvalues: np.ndarray, k: int) -> np.ndarray | float:
    """Hill tail index 1 / mean_{i≤k} ln(λ_i / λ_{k+1}) of eigenvalues ``[..., n]`` (any order).

    Batched over leading axes. Scale invariant. NaN where λ_{k+1} ≤ 0 (a singular spectrum).
    """
    lam = _sorted_descending(eigenvalues)
    n = lam.shape[-1]
    if not 1 <= k < n:
        raise ValueError(f"Hill k must satisfy 1 <= k < n = {n}, got k = {k}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = lam[..., k : k + 1]
        mean_log = np.mean(np.log(lam[..., :k] / ref), axis=-1)
        alpha = np.where(ref[..., 0] > 0, 1.0 / mean_log, np.nan)
    return float(alpha) if alpha.ndim == 0 else alpha


def mle_alpha(eigenvalues: np.ndarray) -> np.ndarray | float:
    """Power-law MLE α̂ = 1 + n / Σ_i ln(λ_i / λ_min) of eigenvalues ``[..., n]``, batched.

    NaN where λ_min ≤ 0 (a singular spectrum).
    """
    lam = _sorted_descending(eigenvalues)
    n = lam.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = lam[..., -1:]
        alpha = np.where(ref[..., 0] > 0, 1.0 + n / np.sum(np.log(lam / ref), axis=-1), np.nan)
    return float(alpha) if alpha.ndim == 0 else alpha


def mp_edges(n: int, d: int) -> tuple[float, float]:
    """Marchenko–Pastur band (1 − √(n/d))², (1 + √(n/d))² of ``C`` for n independent rows of width d."""
    ratio = math.sqrt(n / d)
    return ((1.0 - ratio) ** 2, (1.0 + ratio) ** 2)


def group_eigenvalues(rows: np.ndarray) -> np.ndarray:
    """Eigenvalues (descending) of each group's row-correlation matrix C = Z Zᵀ / d.

    ``rows``: ``[..., n, d]`` weight rows (batched over leading axes); returns ``[..., n]``.
    """
    return _correlation_eigenvalues(_zscore_rows(_check_rows(rows)))


@dataclass(frozen=True)
class GroupSpectrum:
    """Spectrum statistics of one group's row-correlation matrix (n rows of width d)."""

    eigenvalues: np.ndarray  # [n], descending
    n: int
    d: int
    k: int
    alpha_hill: float
    alpha_mle: float
    stable_rank: float
    spectral_entropy: float  # nats; ln n for a flat spectrum
    mp_lower: float
    mp_upper: float
    n_above_mp: int

    def summary(self) -> dict[str, float | int]:
        """The scalar fields (no eigenvalue array), JSON-safe."""
        return {
            "alpha_hill": self.alpha_hill, "alpha_mle": self.alpha_mle, "stable_rank": self.stable_rank,
            "spectral_entropy": self.spectral_entropy, "mp_lower": self.mp_lower,
            "mp_upper": self.mp_upper, "n_above_mp": self.n_above_mp, "n": self.n, "d": self.d, "k": self.k,
        }


def group_spectrum(rows: np.ndarray, k_fraction: float = 0.1) -> GroupSpectrum:
    """All spectrum statistics of one group's rows ``[n, d]`` (n ≥ 3, d > n, finite)."""
    rows = _check_rows(rows)
    if rows.ndim != 2:
        raise ValueError(f"group_spectrum takes one group's rows [n, d], got shape {rows.shape}")
    n, d = rows.shape
    k = hill_k(n, k_fraction)
    lam = _correlation_eigenvalues(_zscore_rows(rows))
    total = float(lam.sum())
    p = np.clip(lam, 0.0, None) / total
    p = p[p > 0]
    lower, upper = mp_edges(n, d)
    return GroupSpectrum(
        eigenvalues=lam, n=n, d=d, k=k,
        alpha_hill=hill_alpha(lam, k), alpha_mle=mle_alpha(lam),
        stable_rank=total / float(lam[0]), spectral_entropy=float(-np.sum(p * np.log(p))),
        mp_lower=lower, mp_upper=upper, n_above_mp=int(np.sum(lam > upper)),
    )


class RowGroups:
    """The rows ``[n_rows, d]`` of one weight matrix, for the Hill α of many of its row groups.

    Every group's correlation matrix is a sub-matrix of the rows' Gram ``Z Zᵀ / d``: it is computed
    once for up to ``max_gram_rows`` rows (``[n_rows, n_rows]`` float64; 128 MB at the default) and
    gathered per group — one matrix product instead of one per group (numpy's stacked products are
    ≈ 30× slower than one BLAS call). Larger matrices (Pythia-2.8b's 10,240 rows) take the Gram of
    the rows each batch of groups uses.
    """

    def __init__(self, weights: np.ndarray, max_gram_rows: int = 4096):
        weights = _check_rows(weights, what="weights", require_wide=False)
        if weights.ndim != 2:
            raise ValueError(f"weights must be [n_rows, d], got shape {weights.shape}")
        self.n_rows, self.d = weights.shape
        self.max_gram_rows = max_gram_rows
        self._z = _zscore_rows(weights)
        self._gram: np.ndarray | None = None

    def _gram_of(self, rows: np.ndarray) -> np.ndarray:
        """``Z Zᵀ / d`` of ``rows`` (sorted unique row indices); the whole matrix's is kept."""
        if rows.size == self.n_rows:
            if self._gram is None:
                self._gram = self._z @ self._z.T / self.d
            return self._gram
        z = self._z[rows]
        return z @ z.T / self.d

    def hill_alphas(self, groups: np.ndarray, k_fraction: float) -> np.ndarray:
        """Hill α ``[n_groups]`` of the row groups ``groups [n_groups, n]`` (row indices)."""
        groups = np.asarray(groups)
        if groups.ndim != 2 or groups.shape[0] < 1 or not np.issubdtype(groups.dtype, np.integer):
            raise ValueError(f"groups must be an integer index array [n_groups ≥ 1, n], got {groups.dtype} "
                             f"{groups.shape}")
        n = groups.shape[1]
        _check_group_shape(n, self.d, what="null groups")
        if groups.min() < 0 or groups.max() >= self.n_rows:
            raise ValueError(f"group indices must lie in [0, {self.n_rows}) (the rows of weights)")
        k = hill_k(n, k_fraction)
        whole = self.n_rows <= self.max_gram_rows
        batch = groups.shape[0] if whole else max(1, self.max_gram_rows // n)
        step = max(1, _NULL_CHUNK_BYTES // (8 * n * n))  # groups per gathered [step, n, n] block
        alphas = []
        for start in range(0, groups.shape[0], batch):
            chunk = groups[start : start + batch]
            rows, local = (np.arange(self.n_rows), chunk) if whole else np.unique(chunk, return_inverse=True)
            local = np.asarray(local).reshape(chunk.shape)
            gram = self._gram_of(rows)
            for part in range(0, chunk.shape[0], step):
                sub = local[part : part + step]
                alphas.append(hill_alpha(np.linalg.eigvalsh(gram[sub[:, :, None], sub[:, None, :]])[..., ::-1], k))
        return np.concatenate(alphas)


def null_hill_alphas(weights: np.ndarray, groups: np.ndarray, k_fraction: float) -> np.ndarray:
    """Hill α ``[n_groups]`` of the row groups ``groups [n_groups, n]`` (row indices) of ``weights [n_rows, d]``
    (one call; ``RowGroups`` keeps the Gram for many)."""
    return RowGroups(weights).hill_alphas(groups, k_fraction)


def _sorted_descending(eigenvalues: np.ndarray) -> np.ndarray:
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim < 1 or lam.shape[-1] < 2:
        raise ValueError(f"need eigenvalues [..., n] with n >= 2, got shape {lam.shape}")
    if not np.all(np.isfinite(lam)):
        raise ValueError("eigenvalues contain NaN or inf")
    return -np.sort(-lam, axis=-1)


def _check_rows(rows: np.ndarray, what: str = "rows", require_wide: bool = True) -> np.ndarray:
    """Validate finite, non-constant ``[..., n, d]`` weight rows; ``require_wide``: a group's shape."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim < 2:
        raise ValueError(f"{what} must be [..., n, d] (rows = neurons), got shape {rows.shape}")
    if require_wide:
        _check_group_shape(*rows.shape[-2:], what=what)
    if not np.all(np.isfinite(rows)):
        raise ValueError(f"{what} contain NaN or inf")
    if np.any(np.ptp(rows, axis=-1) == 0):
        raise ValueError(f"{what}: a constant row cannot be z-scored")
    return rows


def _check_group_shape(n: int, d: int, what: str) -> None:
    if n < 3:
        raise ValueError(f"{what}: a group needs at least 3 rows (neurons), got n = {n}")
    if d <= n:
        raise ValueError(
            f"{what}: the row width d = {d} must exceed the group size n = {n} "
            "(z-scored rows span at most d - 1 dimensions, so C would be singular)"
        )


def _correlation_eigenvalues(z: np.ndarray) -> np.ndarray:
    """Descending eigenvalues ``[..., n]`` of C = Z Zᵀ / d for z-scored rows ``z [..., n, d]``."""
    corr = z @ np.swapaxes(z, -1, -2) / z.shape[-1]
    return np.linalg.eigvalsh(corr)[..., ::-1]


def _zscore_rows(rows: np.ndarray) -> np.ndarray:
    centred = rows - rows.mean(axis=-1, keepdims=True)
    return centred / centred.std(axis=-1, keepdims=True)


@dataclass(frozen=True)
class MLPWeights:
    """One MLP layer's rows, one per neuron: ``read`` maps a name to ``[d_mlp, d_model]`` — ``"read"`` for
    an ungated MLP, ``"gate"`` and ``"up"`` for a gated one (Llama, Mistral, Gemma: the neuron is
    act(gate·x) · (up·x)) — and ``write`` is ``[d_mlp, d_model]``."""

    read: dict[str, np.ndarray]
    write: np.ndarray

    def matrices(self) -> dict[str, np.ndarray]:
        """Every row matrix by name: the read ones, then ``"write"``."""
        return {**self.read, "write": self.write}

    @property
    def write_norm(self) -> np.ndarray:
        """‖write row‖ of every neuron ``[d_mlp]``."""
        return np.linalg.norm(self.write, axis=1)
