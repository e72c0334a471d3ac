"""Weight-space spectra of neuron groups (HT-SR; claims C8, C9). Pure numpy (+ ``powerlaw``).

A neuron group's weight vectors are its rows of a final-MLP matrix in the project's
convention (see ``harness.weights``): ``W_read [d_mlp, d_model]`` (row i = the vector neuron
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
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np

from harness.groups import random_groups
from harness.stats import empirical_p, summarize_null

MatrixName = Literal["read", "write"]

# The authors' matrix per architecture (HF ``config.model_type``; the zoo's ``arch``).
AUTHORS_MATRIX: dict[str, tuple[MatrixName, str]] = {
    "gpt_neox": ("read", "the authors used W_in rows (read vectors) for GPT-NeoX/Pythia models"),
    "gpt2": ("write", "the authors used W_out rows (write vectors) for GPT-2 models"),
}

_NULL_CHUNK_BYTES = 64 * 2**20  # memory bound of one batch of gathered null groups


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


def null_hill_alphas(weights: np.ndarray, groups: np.ndarray, k_fraction: float) -> np.ndarray:
    """Hill α ``[n_groups]`` of the row groups ``groups [n_groups, n]`` (row indices) of ``weights [n_rows, d]``.

    Vectorised: groups are gathered and eigen-decomposed in batches of bounded memory.
    """
    groups = np.asarray(groups)
    weights = _check_rows(weights, what="weights", require_wide=False)
    if groups.ndim != 2 or groups.shape[0] < 1 or not np.issubdtype(groups.dtype, np.integer):
        raise ValueError(f"groups must be an integer index array [n_groups ≥ 1, n], got {groups.dtype} {groups.shape}")
    if groups.size and (groups.min() < 0 or groups.max() >= weights.shape[0]):
        raise ValueError(f"group indices must lie in [0, {weights.shape[0]}) (the rows of weights)")
    _check_group_shape(groups.shape[1], weights.shape[1], what="null groups")
    k = hill_k(groups.shape[1], k_fraction)
    z = _zscore_rows(weights)
    chunk = max(1, _NULL_CHUNK_BYTES // (8 * groups.shape[1] * weights.shape[1]))
    return np.concatenate([
        hill_alpha(_correlation_eigenvalues(z[groups[start : start + chunk]]), k)
        for start in range(0, groups.shape[0], chunk)
    ])


@dataclass(frozen=True)
class LayerESDAlpha:
    """WeightWatcher-style power-law fit to the ESD (squared singular values) of a whole matrix."""

    alpha: float  # density exponent of the fitted tail, p(λ) ∝ λ^(−alpha)
    sigma: float  # its standard error
    xmin: float  # start of the fitted tail (chosen by minimal KS distance)
    ks_distance: float
    n_tail: int  # eigenvalues ≥ xmin
    n_eigenvalues: int


def layer_esd_alpha(weights: np.ndarray) -> LayerESDAlpha:
    """Power-law α of the ESD of ``weights [rows, cols]`` via ``powerlaw.Fit`` (Clauset x_min).

    Context for C8 (how the group α compares with the whole layer's α), not a claim statistic.
    The ESD is the min(rows, cols) eigenvalues of WᵀW (squared singular values; the fit is
    scale invariant, so WeightWatcher's 1/N normalisation does not change α); as in
    WeightWatcher's default fit, x_max is the largest eigenvalue.
    """
    import powerlaw

    weights = _check_rows(weights, what="weight matrix", require_wide=False)
    esd = np.linalg.svd(weights.astype(np.float64), compute_uv=False) ** 2
    esd = esd[esd > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(esd, xmax=float(esd.max()), verbose=False)
        return LayerESDAlpha(  # powerlaw fits lazily: read the attributes inside the warnings filter
            alpha=float(fit.power_law.alpha), sigma=float(fit.power_law.sigma), xmin=float(fit.xmin),
            ks_distance=float(fit.power_law.D), n_tail=int(np.sum(esd >= fit.xmin)), n_eigenvalues=int(esd.size),
        )


@dataclass(frozen=True)
class MatrixAlphaTest:
    """Specialists vs random groups on one matrix (``read`` or ``write``)."""

    matrix: MatrixName
    spectrum: GroupSpectrum  # the specialists' group
    null_alpha: np.ndarray  # [n_null] Hill α of the random groups
    null_summary: dict[str, float]
    p_lower: float  # one-sided empirical p that the specialists' α is lower
    separation: float  # median α_null − α_spec (C9's statistic)
    layer: LayerESDAlpha | None  # whole-matrix ESD α (context)

    @property
    def alpha_spec(self) -> float:
        """The specialists' Hill α."""
        return self.spectrum.alpha_hill


@dataclass(frozen=True)
class GroupAlphaTest:
    """C8/C9 on one subject: both matrices tested on the same random groups; one decides."""

    read: MatrixAlphaTest
    write: MatrixAlphaTest
    verdict_matrix: MatrixName
    verdict_reason: str
    n_specialists: int
    n_null: int
    k: int
    k_fraction: float
    seed: int
    d_mlp: int
    d_model: int
    null_groups: np.ndarray = field(repr=False)  # [n_null, n_specialists] row indices

    @property
    def verdict(self) -> MatrixAlphaTest:
        """The result on the matrix the verdict uses."""
        return self.read if self.verdict_matrix == "read" else self.write

    def record_fields(self) -> dict[str, dict[str, Any]]:
        """Statistics, p-values, null summaries, sample sizes, seeds, details and series for a ClaimRecord.

        ``series`` holds each matrix's specialist eigenvalues and null α draws (for figures).
        """
        statistics: dict[str, Any] = {"verdict_matrix": self.verdict_matrix}
        details: dict[str, Any] = {"verdict_reason": self.verdict_reason, "hill_k_fraction": self.k_fraction}
        series: dict[str, Any] = {}
        for res in (self.read, self.write):
            m = res.matrix
            statistics[f"alpha_spec_{m}"] = res.alpha_spec
            statistics[f"alpha_null_median_{m}"] = res.null_summary.get("q50", float("nan"))
            statistics[f"separation_{m}"] = res.separation
            details[f"spectrum_{m}"] = res.spectrum.summary()
            if res.layer is not None:
                details[f"layer_esd_{m}"] = vars(res.layer)
            series[f"eigenvalues_{m}"] = res.spectrum.eigenvalues.tolist()
            series[f"null_alpha_{m}"] = res.null_alpha.tolist()
        return {
            "statistics": statistics,
            "p_values": {f"alpha_lower_{m.matrix}": m.p_lower for m in (self.read, self.write)},
            "null": {f"alpha_{m.matrix}": m.null_summary for m in (self.read, self.write)},
            "sample_sizes": {"n_specialists": self.n_specialists, "n_null_groups": self.n_null,
                             "hill_k": self.k, "d_mlp": self.d_mlp, "d_model": self.d_model},
            "seeds": {"null_groups": self.seed},
            "details": details,
            "series": series,
        }


def group_alpha_test(
    W_read: np.ndarray,
    W_write: np.ndarray,
    specialists: Sequence[int] | np.ndarray,
    *,
    n_null: int,
    k_fraction: float,
    seed: int,
    verdict_matrix: str,
    layer_context: bool = True,
) -> GroupAlphaTest:
    """Hill α of the specialists' rows vs ``n_null`` random equal-size groups, on both matrices.

    ``W_read``, ``W_write``: ``[d_mlp, d_model]`` (``harness.weights.final_mlp_weights``).
    ``specialists``: distinct neuron indices (≥ 3, fewer than d_model). Random groups are
    drawn (seeded) from the other neurons; the same groups serve both matrices.
    ``verdict_matrix``: an architecture (``"gpt_neox"``, ``"gpt2"``: the authors' matrix for
    it, reason stated) or ``"read"`` / ``"write"`` (set by the caller). ``layer_context``
    adds the whole matrices' ESD power-law α.
    """
    W_read = _check_rows(W_read, what="W_read", require_wide=False)
    W_write = _check_rows(W_write, what="W_write", require_wide=False)
    if W_read.shape != W_write.shape:
        raise ValueError(f"W_read {W_read.shape} and W_write {W_write.shape} must both be [d_mlp, d_model]")
    d_mlp, d_model = W_read.shape
    spec = np.asarray(specialists)
    if spec.ndim != 1 or not np.issubdtype(spec.dtype, np.integer):
        raise ValueError(f"specialists must be a 1-D array of integer neuron indices, got {spec.dtype} {spec.shape}")
    if np.unique(spec).size != spec.size or spec.min(initial=0) < 0 or spec.max(initial=0) >= d_mlp:
        raise ValueError(f"specialists must be distinct indices in [0, {d_mlp}), got {spec.tolist()}")
    if n_null < 1:
        raise ValueError(f"n_null must be >= 1, got {n_null}")
    matrix, reason = _verdict_choice(verdict_matrix)
    k = hill_k(spec.size, k_fraction)
    groups = random_groups(d_mlp, spec.size, spec, n_null, seed)
    results = {}
    for name, weights in (("read", W_read), ("write", W_write)):
        spectrum = group_spectrum(weights[spec], k_fraction)
        null = null_hill_alphas(weights, groups, k_fraction)
        summary = summarize_null(null)
        results[name] = MatrixAlphaTest(
            matrix=name, spectrum=spectrum, null_alpha=null, null_summary=summary,
            p_lower=empirical_p(spectrum.alpha_hill, null, "less"),
            separation=float(np.nanmedian(null) - spectrum.alpha_hill),
            layer=layer_esd_alpha(weights) if layer_context else None,
        )
    return GroupAlphaTest(
        read=results["read"], write=results["write"], verdict_matrix=matrix, verdict_reason=reason,
        n_specialists=int(spec.size), n_null=int(n_null), k=k, k_fraction=float(k_fraction),
        seed=int(seed), d_mlp=d_mlp, d_model=d_model, null_groups=groups,
    )


def _verdict_choice(verdict_matrix: str) -> tuple[MatrixName, str]:
    if verdict_matrix in AUTHORS_MATRIX:
        return AUTHORS_MATRIX[verdict_matrix]
    if verdict_matrix in ("read", "write"):
        return verdict_matrix, f"the {verdict_matrix} matrix was set by the caller"  # type: ignore[return-value]
    raise ValueError(
        f"verdict_matrix must be an architecture {sorted(AUTHORS_MATRIX)} or 'read' / 'write', got {verdict_matrix!r}"
    )


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
