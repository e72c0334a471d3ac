"""Weight-space spectra of neuron groups: Hill α, the power-law MLE, Marchenko–Pastur edges, batched
null α, scale invariance, planted shared directions, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.analysis.spectra import (
    MLPWeights,
    RowGroups,
    group_eigenvalues,
    group_spectrum,
    hill_alpha,
    hill_k,
    mle_alpha,
    mp_edges,
    null_hill_alphas,
)

N = 50
K_FRACTION = 0.1
TAIL = 0.005  # two-sided 99% simulated band


def _reference_hill(rows: np.ndarray, k: int) -> float:
    """Independent implementation: Pearson correlation of the rows, eigenvalues, Hill's formula."""
    lam = np.sort(np.linalg.eigvalsh(np.corrcoef(rows)))[::-1]
    return 1.0 / np.mean(np.log(lam[:k] / lam[k]))


def _gaussian_band(n: int, d: int, n_sim: int, seed: int) -> np.ndarray:
    """Simulated Hill α of n independent Gaussian rows of width d (reference implementation)."""
    rng = np.random.default_rng(seed)
    k = max(1, math.floor(K_FRACTION * n))
    return np.array([_reference_hill(rng.standard_normal((n, d)), k) for _ in range(n_sim)])


def _planted(noise: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Rows ``noise [n, d]`` plus a shared direction with per-row Gaussian loadings times ``strength``."""
    n, d = noise.shape
    return noise + strength * np.outer(rng.standard_normal(n), rng.standard_normal(d))


# --- estimators -----------------------------------------------------------------------------

def test_hill_alpha_matches_its_formula_in_any_order():
    """ln(λ_i/λ_3) = 3, 1 for the top k = 2: α = 1/2, whatever the order of the eigenvalues, batched."""
    base = 0.7
    lam = base * np.exp(np.array([3.0, 1.0, 0.0, -0.5, -1.0]))  # ln(λ_i/λ_3) = 3, 1 for the top k = 2
    expected = 1.0 / np.mean([3.0, 1.0])
    assert hill_alpha(lam, 2) == pytest.approx(expected)
    assert hill_alpha(np.random.default_rng(0).permutation(lam), 2) == pytest.approx(expected)
    np.testing.assert_allclose(hill_alpha(np.stack([lam, lam * 3]), 2), [expected, expected])


def test_hill_and_mle_recover_a_pareto_tail():
    """20,000 Pareto draws with tail index 2: Hill α ≈ 2 and the density-exponent MLE ≈ 3 (4 SEs)."""
    tail_index, n = 2.0, 20_000  # P(X > x) = x^-2: Hill estimates 2, the MLE the density exponent 3
    x = np.random.default_rng(1).pareto(tail_index, n) + 1.0
    k = hill_k(n, K_FRACTION)
    assert hill_alpha(x, k) == pytest.approx(tail_index, abs=4 * tail_index / math.sqrt(k))
    assert mle_alpha(x) == pytest.approx(tail_index + 1, abs=4 * tail_index / math.sqrt(n))


def test_hill_k_follows_the_fraction_rule():
    """k = max(1, ⌊fraction·n⌋) without a floating-point floor error."""
    assert [hill_k(n, 0.1) for n in (3, 9, 10, 29, 50, 51)] == [1, 1, 1, 2, 5, 5]
    assert hill_k(100, 0.29) == 29  # no floating-point floor error


def test_statistics_are_invariant_to_scaling_the_weights():
    """Rows are z-scored: scaling the eigenvalues, the whole matrix or each row changes no statistic."""
    rng = np.random.default_rng(2)
    rows = _planted(rng.standard_normal((N, 256)), 0.5, rng)
    k = hill_k(N, K_FRACTION)
    lam = group_eigenvalues(rows)
    assert hill_alpha(1e-3 * lam, k) == pytest.approx(hill_alpha(lam, k))
    assert mle_alpha(1e3 * lam) == pytest.approx(mle_alpha(lam))
    reference = group_spectrum(rows).summary()
    for scaled in (rows * 1e-3, rows * rng.uniform(0.1, 10.0, size=(N, 1))):  # whole matrix, each row
        assert group_spectrum(scaled).summary() == pytest.approx(reference)


def test_module_alpha_equals_the_reference_implementation():
    """Hill α of one group equals an independent implementation (np.corrcoef, eigvalsh), single and batched."""
    rows = np.random.default_rng(3).standard_normal((N, 256))
    k = hill_k(N, K_FRACTION)
    assert group_spectrum(rows, K_FRACTION).alpha_hill == pytest.approx(_reference_hill(rows, k), rel=1e-9)
    assert null_hill_alphas(rows, np.arange(N)[None, :], K_FRACTION)[0] == pytest.approx(_reference_hill(rows, k))


def test_flat_and_spiked_spectra_summaries():
    """Orthonormal centred rows (C = I): stable rank n, entropy ln n, no spike; a strong shared
    direction: lower stable rank and entropy, at least one eigenvalue above the MP edge, trace n."""
    n, d = 10, 64
    columns = np.random.default_rng(4).standard_normal((d, n))
    flat_rows = np.linalg.qr(columns - columns.mean(axis=0))[0].T  # centred, orthonormal: C = I
    flat = group_spectrum(flat_rows)
    assert flat.stable_rank == pytest.approx(n) and flat.spectral_entropy == pytest.approx(math.log(n))
    assert flat.n_above_mp == 0
    spiked = group_spectrum(_planted(np.random.default_rng(5).standard_normal((n, d)), 3.0, np.random.default_rng(6)))
    assert spiked.stable_rank < flat.stable_rank / 2
    assert spiked.spectral_entropy < flat.spectral_entropy
    assert spiked.n_above_mp >= 1
    assert np.sum(spiked.eigenvalues) == pytest.approx(n)  # trace of a correlation matrix


def test_mp_edges_are_the_marchenko_pastur_band():
    """(1 ± √(n/d))²: n = 16, d = 64 gives 0.25 and 2.25; n = d gives 0 and 4."""
    assert mp_edges(16, 64) == pytest.approx((0.25, 2.25))
    assert mp_edges(64, 64) == pytest.approx((0.0, 4.0))


# --- Gaussian rows: the range predicted for (n, d) --------------------------------------------

@pytest.mark.parametrize("d", [256, 512])
def test_gaussian_groups_fall_in_their_simulated_range_and_fill_the_mp_band(d):
    """200 groups of 50 independent Gaussian rows of a random matrix (batched ``null_hill_alphas``) have
    the Hill α distribution of the reference implementation's simulation (KS p > 0.001, ≥ the binomial
    0.1% quantile inside its 99% band), and one such group's eigenvalues span the MP band."""
    band = _gaussian_band(N, d, n_sim=200, seed=10)
    lo, hi = np.quantile(band, [TAIL, 1 - TAIL])
    rng = np.random.default_rng(11)
    W = rng.standard_normal((1000, d))
    groups = np.stack([rng.choice(1000, N, replace=False) for _ in range(200)])
    null = null_hill_alphas(W, groups, K_FRACTION)
    inside = np.sum((null >= lo) & (null <= hi))
    assert inside >= stats.binom.ppf(0.001, null.size, 1 - 2 * TAIL), f"{inside} of {null.size} in [{lo:.2f}, {hi:.2f}]"
    assert stats.ks_2samp(null, band).pvalue > 0.001
    lower_mp, upper_mp = mp_edges(N, d)
    eigenvalues = group_spectrum(W[groups[0]]).eigenvalues
    assert eigenvalues[0] == pytest.approx(upper_mp, rel=0.15)
    assert eigenvalues[-1] == pytest.approx(lower_mp, rel=0.3)


def test_gaussian_range_moves_with_d():
    """At fixed n the Gaussian Hill α grows with the row width d (so C8 compares equal shapes)."""
    medians = [np.median(_gaussian_band(N, d, n_sim=50, seed=13)) for d in (64, 256, 1024)]
    assert medians == sorted(medians), f"Gaussian Hill α should grow with d at fixed n: {medians}"


# --- planted shared directions ---------------------------------------------------------------

def test_planted_direction_lowers_alpha_monotonically():
    """A shared direction of growing strength in 20 groups of 50 rows: the median Hill α falls at each step."""
    strengths = [0.0, 0.1, 0.2, 0.4, 0.8]
    rng = np.random.default_rng(20)
    noise = rng.standard_normal((20, N, 256))
    medians = []
    for strength in strengths:
        plant_rng = np.random.default_rng(21)  # the same planted directions at every strength
        medians.append(np.median([group_spectrum(_planted(z, strength, plant_rng)).alpha_hill for z in noise]))
    assert all(a > b for a, b in zip(medians, medians[1:])), f"median α by strength {strengths}: {medians}"


def test_null_alphas_of_a_batch_equal_each_groups_spectrum():
    """Batched α of 30 overlapping groups (planted and random rows of one matrix) equals
    ``group_spectrum`` of each group alone; a planted group's α is below every random group's."""
    rng = np.random.default_rng(30)
    weights = rng.standard_normal((300, 96)) * rng.uniform(0.5, 2.0, size=(300, 1))
    planted = np.arange(20)
    weights[planted] = _planted(weights[planted], 0.6, rng)
    groups = np.vstack([planted, [rng.choice(300, 20, replace=False) for _ in range(29)]])
    batch = null_hill_alphas(weights, groups, K_FRACTION)
    single = [group_spectrum(weights[g], K_FRACTION).alpha_hill for g in groups]
    np.testing.assert_allclose(batch, single, rtol=1e-9)
    assert batch[0] < batch[1:].min()
    # a matrix too large for one Gram: batches of groups take the Gram of the rows they use
    np.testing.assert_allclose(RowGroups(weights, max_gram_rows=45).hill_alphas(groups, K_FRACTION), batch, rtol=1e-12)
    kept = RowGroups(weights)
    np.testing.assert_array_equal(kept.hill_alphas(groups, K_FRACTION), kept.hill_alphas(groups, K_FRACTION))


def test_mlp_weights_name_their_matrices_and_write_norms():
    """A gated MLP's rows: ``matrices`` lists gate, up, then write; ``write_norm`` is each write row's norm."""
    rng = np.random.default_rng(40)
    gate, up, write = (rng.standard_normal((8, 4)) for _ in range(3))
    weights = MLPWeights(read={"gate": gate, "up": up}, write=write)
    assert list(weights.matrices()) == ["gate", "up", "write"]
    np.testing.assert_allclose(weights.write_norm, np.sqrt((write**2).sum(1)))


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "rows, message",
    [
        (np.random.default_rng(0).standard_normal((2, 64)), "at least 3 rows"),
        (np.random.default_rng(0).standard_normal((20, 20)), "must exceed the group size"),
        (np.random.default_rng(0).standard_normal((20, 10)), "must exceed the group size"),
        (np.where(np.eye(5, 64) > 0, np.nan, 1.0) + np.arange(64), "NaN or inf"),
        (np.vstack([np.ones(64), np.random.default_rng(0).standard_normal((4, 64))]), "constant row"),
        (np.arange(64.0), r"\[\.\.\., n, d\]"),
        (np.random.default_rng(0).standard_normal((2, 5, 64)), r"one group's rows \[n, d\]"),
    ],
)
def test_bad_rows_are_rejected(rows, message):
    """Too few rows, too narrow, NaN, a constant row, a vector, a batch: ValueError."""
    with pytest.raises(ValueError, match=message):
        group_spectrum(rows)


def test_bad_estimator_and_null_arguments_are_rejected():
    """Hill k outside [1, n), NaN eigenvalues, a k fraction outside (0, 1), and null groups that are
    not an integer matrix of row indices in range: ValueError."""
    W = np.random.default_rng(0).standard_normal((128, 64))
    with pytest.raises(ValueError, match="NaN or inf"):
        hill_alpha(np.array([3.0, np.nan, 1.0]), 1)
    with pytest.raises(ValueError, match="1 <= k < n"):
        hill_alpha(np.array([3.0, 2.0, 1.0]), 3)
    with pytest.raises(ValueError, match="n >= 2"):
        mle_alpha(np.array([3.0]))
    with pytest.raises(ValueError, match="k_fraction"):
        hill_k(10, 1.0)
    with pytest.raises(ValueError, match="integer index array"):
        null_hill_alphas(W, np.array([[1.0, 2.0, 3.0]]), K_FRACTION)
    with pytest.raises(ValueError, match="integer index array"):
        null_hill_alphas(W, np.arange(10), K_FRACTION)
    with pytest.raises(ValueError, match=r"\[0, 128\)"):
        null_hill_alphas(W, np.array([[1, 2, 128]]), K_FRACTION)
    with pytest.raises(ValueError, match="must exceed the group size"):
        null_hill_alphas(W, np.arange(64)[None], K_FRACTION)
