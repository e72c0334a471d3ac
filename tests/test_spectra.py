"""harness.spectra: Hill α and group spectra find planted shared directions and stay quiet on noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.records import ClaimRecord
from harness.analysis.spectra import (
    group_alpha_test,
    group_eigenvalues,
    group_spectrum,
    hill_alpha,
    hill_k,
    layer_esd_alpha,
    mle_alpha,
    mp_edges,
    null_hill_alphas,
)
from harness.analysis.trends import spearman_trend

N = 50
K_FRACTION = 0.1
LEVEL = 0.05  # significance level of the detector checks
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
    base = 0.7
    lam = base * np.exp(np.array([3.0, 1.0, 0.0, -0.5, -1.0]))  # ln(λ_i/λ_3) = 3, 1 for the top k = 2
    expected = 1.0 / np.mean([3.0, 1.0])
    assert hill_alpha(lam, 2) == pytest.approx(expected)
    assert hill_alpha(np.random.default_rng(0).permutation(lam), 2) == pytest.approx(expected)
    np.testing.assert_allclose(hill_alpha(np.stack([lam, lam * 3]), 2), [expected, expected])


def test_hill_and_mle_recover_a_pareto_tail():
    tail_index, n = 2.0, 20_000  # P(X > x) = x^-2: Hill estimates 2, the MLE the density exponent 3
    x = np.random.default_rng(1).pareto(tail_index, n) + 1.0
    k = hill_k(n, K_FRACTION)
    assert hill_alpha(x, k) == pytest.approx(tail_index, abs=4 * tail_index / math.sqrt(k))
    assert mle_alpha(x) == pytest.approx(tail_index + 1, abs=4 * tail_index / math.sqrt(n))


def test_hill_k_follows_the_fraction_rule():
    assert [hill_k(n, 0.1) for n in (3, 9, 10, 29, 50, 51)] == [1, 1, 1, 2, 5, 5]
    assert hill_k(100, 0.29) == 29  # no floating-point floor error


def test_statistics_are_invariant_to_scaling_the_weights():
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
    rows = np.random.default_rng(3).standard_normal((N, 256))
    k = hill_k(N, K_FRACTION)
    assert group_spectrum(rows, K_FRACTION).alpha_hill == pytest.approx(_reference_hill(rows, k), rel=1e-9)
    assert null_hill_alphas(rows, np.arange(N)[None, :], K_FRACTION)[0] == pytest.approx(_reference_hill(rows, k))


def test_flat_and_spiked_spectra_summaries():
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


# --- Gaussian rows: the range predicted for (n, d) --------------------------------------------

@pytest.mark.parametrize("d", [256, 512])
def test_gaussian_rows_fall_in_their_simulated_range(d):
    band = _gaussian_band(N, d, n_sim=200, seed=10)
    lo, hi = np.quantile(band, [TAIL, 1 - TAIL])
    W = np.random.default_rng(11).standard_normal((1000, d))
    result = group_alpha_test(W, W, np.arange(N), n_null=200, k_fraction=K_FRACTION, seed=12,
                              verdict_matrix="read", layer_context=False)
    assert lo <= result.read.alpha_spec <= hi
    null = result.read.null_alpha
    inside = np.sum((null >= lo) & (null <= hi))
    assert inside >= stats.binom.ppf(0.001, null.size, 1 - 2 * TAIL), f"{inside} of {null.size} in [{lo:.2f}, {hi:.2f}]"
    assert stats.ks_2samp(null, band).pvalue > 0.001
    lower_mp, upper_mp = mp_edges(N, d)
    eigenvalues = result.read.spectrum.eigenvalues  # a Gaussian group fills the MP band
    assert eigenvalues[0] == pytest.approx(upper_mp, rel=0.15)
    assert eigenvalues[-1] == pytest.approx(lower_mp, rel=0.3)


def test_gaussian_range_moves_with_d():
    medians = [np.median(_gaussian_band(N, d, n_sim=50, seed=13)) for d in (64, 256, 1024)]
    assert medians == sorted(medians), f"Gaussian Hill α should grow with d at fixed n: {medians}"


# --- planted shared directions ---------------------------------------------------------------

def test_planted_direction_lowers_alpha_monotonically():
    strengths = [0.0, 0.1, 0.2, 0.4, 0.8]
    rng = np.random.default_rng(20)
    noise = rng.standard_normal((20, N, 256))
    medians = []
    for strength in strengths:
        plant_rng = np.random.default_rng(21)  # the same planted directions at every strength
        medians.append(np.median([group_spectrum(_planted(z, strength, plant_rng)).alpha_hill for z in noise]))
    assert all(a > b for a, b in zip(medians, medians[1:])), f"median α by strength {strengths}: {medians}"


def _weights_with_planted_group(d_mlp: int, d_model: int, group: np.ndarray, strength: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((d_mlp, d_model))
    weights[group] = _planted(weights[group], strength, rng)
    return weights


def test_group_alpha_test_finds_a_planted_group_on_the_matrix_that_has_it():
    d_mlp, d_model, seed = 512, 128, 30
    group = np.random.default_rng(31).choice(d_mlp, size=20, replace=False)
    W_read = _weights_with_planted_group(d_mlp, d_model, group, 0.5, seed)
    W_write = np.random.default_rng(seed + 1).standard_normal((d_mlp, d_model))
    result = group_alpha_test(W_read, W_write, group, n_null=300, k_fraction=K_FRACTION, seed=7, verdict_matrix="gpt_neox")
    assert result.verdict_matrix == "read" and "GPT-NeoX" in result.verdict_reason
    assert result.verdict is result.read
    assert result.read.p_lower < LEVEL and result.read.separation > 0
    assert result.read.p_lower == pytest.approx(1 / (1 + 300))
    assert not np.isin(result.null_groups, group).any()
    assert result.null_groups.shape == (300, 20)
    assert result.read.layer is not None and result.read.layer.n_eigenvalues == d_model
    fields = result.record_fields()
    record = ClaimRecord(claim_id="C8", subject="synthetic", **fields)
    json_record = record.to_json()
    assert set(json_record["p_values"]) == {"alpha_lower_read", "alpha_lower_write"}
    assert json_record["statistics"]["verdict_matrix"] == "read"
    assert len(json_record["series"]["null_alpha_write"]) == 300 and len(json_record["series"]["eigenvalues_read"]) == 20
    again = group_alpha_test(W_read, W_write, group, n_null=300, k_fraction=K_FRACTION, seed=7,
                             verdict_matrix="gpt2", layer_context=False)
    assert again.verdict_matrix == "write" and "GPT-2" in again.verdict_reason
    np.testing.assert_array_equal(again.read.null_alpha, result.read.null_alpha)  # seeded


def test_group_alpha_test_is_calibrated_on_null_weights():
    n_datasets, n_null = 40, 200
    p_values = []
    for i in range(n_datasets):
        rng = np.random.default_rng(100 + i)
        W = rng.standard_normal((256, 96))
        group = rng.choice(256, size=20, replace=False)
        res = group_alpha_test(W, W, group, n_null=n_null, k_fraction=K_FRACTION, seed=i,
                               verdict_matrix="read", layer_context=False)
        p_values.append(res.read.p_lower)
    false_positives = int(np.sum(np.array(p_values) < LEVEL))
    assert false_positives <= stats.binom.ppf(0.999, n_datasets, LEVEL), f"{false_positives} of {n_datasets} null p < {LEVEL}"


def test_separation_trend_detects_a_group_that_sharpens_over_checkpoints():
    d_mlp, d_model = 512, 128
    group = np.arange(0, d_mlp, d_mlp // 20)
    W_write = np.random.default_rng(41).standard_normal((d_mlp, d_model))
    steps, strengths = [1, 2, 4, 8, 16, 32], [0.0, 0.1, 0.2, 0.4, 0.8, 1.6]
    separations = [
        group_alpha_test(_weights_with_planted_group(d_mlp, d_model, group, strength, 40 + i), W_write, group,
                         n_null=200, k_fraction=K_FRACTION, seed=3, verdict_matrix="read",
                         layer_context=False).read.separation
        for i, strength in enumerate(strengths)
    ]
    trend = spearman_trend(separations, steps, n_permutations=2000, seed=0)
    assert trend.rho > 0 and trend.p_value < LEVEL, f"separations {separations}: ρ {trend.rho}, p {trend.p_value}"


# --- whole-layer ESD α (context) --------------------------------------------------------------

def test_layer_esd_alpha_recovers_a_planted_power_law_esd():
    density_exponent, d_mlp, d_model = 2.5, 512, 128
    rng = np.random.default_rng(50)
    esd = rng.pareto(density_exponent - 1, d_model) + 1.0
    u, _ = np.linalg.qr(rng.standard_normal((d_mlp, d_model)))
    v, _ = np.linalg.qr(rng.standard_normal((d_model, d_model)))
    fit = layer_esd_alpha((u * np.sqrt(esd)) @ v.T)
    assert fit.n_eigenvalues == d_model and 0 < fit.n_tail <= d_model
    assert fit.alpha == pytest.approx(density_exponent, abs=4 * fit.sigma)


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
    ],
)
def test_bad_rows_are_rejected(rows, message):
    with pytest.raises(ValueError, match=message):
        group_spectrum(rows)


def test_bad_test_arguments_are_rejected():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((128, 64))
    ok = dict(n_null=10, k_fraction=K_FRACTION, seed=0, verdict_matrix="read", layer_context=False)
    with pytest.raises(ValueError, match="both be"):
        group_alpha_test(W, W[:, :32], np.arange(10), **ok)
    with pytest.raises(ValueError, match="distinct indices"):
        group_alpha_test(W, W, np.array([1, 1, 2, 3]), **ok)
    with pytest.raises(ValueError, match="distinct indices"):
        group_alpha_test(W, W, np.array([1, 2, 128]), **ok)
    with pytest.raises(ValueError, match="integer"):
        group_alpha_test(W, W, np.array([1.0, 2.0, 3.0]), **ok)
    with pytest.raises(ValueError, match="at least 3"):
        group_alpha_test(W, W, np.array([1, 2]), **ok)
    with pytest.raises(ValueError, match="verdict_matrix"):
        group_alpha_test(W, W, np.arange(10), **{**ok, "verdict_matrix": "llama"})
    with pytest.raises(ValueError, match="k_fraction"):
        group_alpha_test(W, W, np.arange(10), **{**ok, "k_fraction": 1.0})
    with pytest.raises(ValueError, match="n_null"):
        group_alpha_test(W, W, np.arange(10), **{**ok, "n_null": 0})
    with pytest.raises(ValueError, match="NaN or inf"):
        group_alpha_test(np.where(W > 3, np.nan, W), W, np.arange(10), **ok)
    with pytest.raises(ValueError, match="NaN or inf"):
        hill_alpha(np.array([3.0, np.nan, 1.0]), 1)
    with pytest.raises(ValueError, match="1 <= k < n"):
        hill_alpha(np.array([3.0, 2.0, 1.0]), 3)
