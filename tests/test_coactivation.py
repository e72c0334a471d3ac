"""Co-activation graphs, Louvain modularity and the C5 equivalence test on planted data."""

from __future__ import annotations

import community as community_louvain
import numpy as np
import pytest
from scipy.stats import binom, norm

from harness.analysis.coactivation import (
    bootstrap_group_correlations,
    bootstrap_normal_ci,
    coactivation_graph,
    group_correlations,
    louvain_modularity,
    modularity_test,
    partition_modularity,
    prepare_activations,
)
from harness.analysis.stats import bootstrap_indices

N_SEQ, SEQ_LEN = 40, 25  # 1,000 positions
N_NEURONS = 120
N_MODULES, MODULE_SIZE = 3, 5
GROUP = np.arange(N_MODULES * MODULE_SIZE)  # the planted specialists: neurons 0…14
SEEDS = range(3)
SMALL = dict(n_null=99, louvain_seeds=2, n_bootstrap=49, delta=0.05, alpha=0.05)
FAST = dict(SMALL, n_null=49, louvain_seeds=1)  # for repeated runs: p resolution 1/50 still < alpha
# Weak planted modules (within-module r = l²/(1 + l²) ≈ 0.08, about 2.5 noise SDs of r at 1,000
# positions): Louvain finds them, and the test checks their Q difference exceeds δ on other data.
PLANTED_LOADING = 0.3
# Tail probability below which a count of repeats counts as incompatible with its expected rate.
RATE_TAIL = 0.001


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labelings (Hubert & Arabie 1985)."""
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(table, (ia, ib), 1)
    pairs = lambda n: n * (n - 1) / 2  # noqa: E731
    index = pairs(table).sum()
    rows, cols, total = pairs(table.sum(1)).sum(), pairs(table.sum(0)).sum(), pairs(len(a))
    expected = rows * cols / total
    return float((index - expected) / ((rows + cols) / 2 - expected))


def activations(seed: int, loading: float = 0.0, n_modules: int = N_MODULES) -> tuple[np.ndarray, np.ndarray]:
    """i.i.d. Gaussian activations ``[positions, neurons]``; with ``loading`` > 0 the group's neurons
    are split into ``n_modules`` blocks, each sharing a latent factor (within-block r = l²/(1 + l²))."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N_SEQ * SEQ_LEN, N_NEURONS))
    if loading:
        modules = np.array_split(GROUP, n_modules)
        for block in modules:
            x[:, block] += loading * rng.standard_normal((x.shape[0], 1))
    return x, np.repeat(np.arange(N_SEQ), SEQ_LEN)


def module_labels(n_modules: int = N_MODULES) -> np.ndarray:
    return np.concatenate([np.full(len(b), i) for i, b in enumerate(np.array_split(GROUP, n_modules))])


def test_group_correlations_equal_numpy_corrcoef():
    x, _ = activations(0, loading=1.0)
    acts = prepare_activations(x, GROUP)
    groups = np.array([[0, 3, 7, 50], [1, 2, 90, 119]])
    want = np.stack([np.corrcoef(x[:, g].T) for g in groups])
    assert np.allclose(group_correlations(acts, groups), want, atol=1e-12)


def test_bootstrap_correlations_equal_correlations_of_the_resampled_rows():
    x, seq = activations(1, loading=1.0)
    acts = prepare_activations(x, GROUP)
    boot = bootstrap_group_correlations(acts, GROUP, seq, n_bootstrap=4, seed=5)
    for b, drawn in enumerate(bootstrap_indices(N_SEQ, 4, 5)):
        rows = np.concatenate([np.flatnonzero(seq == s) for s in drawn])
        assert np.allclose(boot[b], np.corrcoef(x[np.ix_(rows, GROUP)].T), atol=1e-10)


@pytest.mark.parametrize("kind", ["absolute", "thresholded"])
@pytest.mark.parametrize("loading", [0.0, 1.0])
def test_python_louvain_and_networkx_agree_on_q_of_the_same_partition(kind, loading):
    x, _ = activations(2, loading=loading)
    corr = group_correlations(prepare_activations(x, GROUP), GROUP)[0]
    threshold = 0.05  # low enough that i.i.d. data still has edges
    graph = coactivation_graph(corr, kind, threshold)
    partition = community_louvain.best_partition(graph, resolution=1.0, random_state=0)
    labels = np.array([partition[v] for v in range(len(GROUP))])
    assert partition_modularity(corr, labels, kind, threshold) == pytest.approx(
        community_louvain.modularity(partition, graph), abs=1e-12
    )


def test_thresholded_graph_keeps_only_strong_edges():
    corr = np.array([[1.0, 0.5, -0.4], [0.5, 1.0, 0.1], [-0.4, 0.1, 1.0]])
    graph = coactivation_graph(corr, "thresholded", 0.3)
    assert {(u, v): d["weight"] for u, v, d in graph.edges(data=True)} == {(0, 1): 0.5, (0, 2): 0.4}
    assert coactivation_graph(corr, "absolute").number_of_edges() == 3


@pytest.mark.parametrize("n_modules", [2, 3, 5])
def test_louvain_recovers_planted_modules(n_modules):
    x, _ = activations(3, loading=1.0, n_modules=n_modules)
    corr = group_correlations(prepare_activations(x, GROUP), GROUP)[0]
    result = louvain_modularity(corr, seeds=SEEDS)
    assert all(adjusted_rand(labels, module_labels(n_modules)) >= 0.9 for labels in result.labels)


def test_signed_graph_separates_anticorrelated_modules_that_the_absolute_graph_merges():
    rng = np.random.default_rng(4)
    factor = rng.standard_normal((N_SEQ * SEQ_LEN, 1))
    x = rng.standard_normal((N_SEQ * SEQ_LEN, N_NEURONS))
    half = len(GROUP) // 2
    x[:, GROUP[:half]] += 2.0 * factor
    x[:, GROUP[half:]] -= 2.0 * factor
    corr = group_correlations(prepare_activations(x, GROUP), GROUP)[0]
    truth = (np.arange(len(GROUP)) >= half).astype(int)
    signed = louvain_modularity(corr, kind="signed", seeds=SEEDS)
    absolute = louvain_modularity(corr, kind="absolute", seeds=SEEDS)
    assert all(adjusted_rand(labels, truth) >= 0.9 for labels in signed.labels)
    assert signed.q > absolute.q + 0.05  # |r| makes the two halves one dense block


def test_planted_modules_give_q_far_above_the_null_and_fail_c5():
    x, seq = activations(5, loading=1.0)
    result = modularity_test(x, seq, GROUP, rng_seed=0, **SMALL)
    assert result.q_spec > result.q_null.max()
    assert result.p_greater == pytest.approx(1 / (1 + SMALL["n_null"]))
    assert not result.passed
    assert set(result.failed_parts) == {"tost_upper", "no_difference"}
    assert "tost_upper" in result.record_fields()["details"]["failed_parts"]


def test_iid_activations_are_equivalent_to_the_null():
    x, seq = activations(6)
    result = modularity_test(x, seq, GROUP, rng_seed=0, **SMALL)
    assert result.passed, result.message
    lo, hi = result.ci
    assert lo < result.difference < hi


def test_normal_interval_is_centred_on_the_estimate_with_the_bootstrap_sd():
    draws = np.random.default_rng(0).normal(0.3, 0.02, size=500)  # resamples need not centre on it
    lo, hi = bootstrap_normal_ci(0.1, draws, 0.9)
    assert (lo + hi) / 2 == pytest.approx(0.1)
    assert hi - lo == pytest.approx(2 * norm.ppf(0.95) * draws.std(ddof=1))
    assert np.isnan(bootstrap_normal_ci(0.1, np.array([np.nan, 0.2]), 0.9)).all()


def test_bootstrap_sd_of_q_matches_the_spread_of_exchangeable_groups():
    # On i.i.d. data the specialists are one more random group, so the sampling SD of Q_spec is the
    # SD of Q across random groups; an SD from n draws has relative SE ≈ 1/√(2(n − 1)).
    x, seq = activations(7)
    result = modularity_test(x, seq, GROUP, rng_seed=1, **SMALL)
    ratio = np.std(result.q_spec_boot, ddof=1) / np.std(result.q_null, ddof=1)
    relative_se = np.sqrt(sum(1 / (2 * (n - 1)) for n in (SMALL["n_null"], SMALL["n_bootstrap"])))
    assert abs(ratio - 1) < 3 * relative_se


def _c5_runs(loading: float, repeats: int) -> list:
    return [modularity_test(*activations(100 + r, loading=loading), GROUP, rng_seed=r, **FAST) for r in range(repeats)]


def _tost_pass_rate(difference: float, sd: float, delta: float, alpha: float) -> float:
    """P(D̂ ± z·sd inside (−δ, δ)) for D̂ ~ N(difference, sd²): the TOST's expected pass rate."""
    z = norm.ppf(1 - alpha)
    return float(max(0.0, norm.cdf((delta - difference) / sd - z) - norm.cdf((-delta - difference) / sd + z)))


def test_equivalence_rate_without_and_with_a_planted_difference():
    repeats, delta, alpha = 8, FAST["delta"], FAST["alpha"]
    # No difference: the empirical p for a difference is < alpha at rate alpha, and the TOST passes
    # at the rate its interval width allows (the SD of D̂ is the null's SD, measured on other data).
    sd = np.std(modularity_test(*activations(999), GROUP, rng_seed=0, **FAST).q_null, ddof=1)
    expected = _tost_pass_rate(0.0, sd, delta, alpha) * (1 - alpha)
    absent = sum(run.passed for run in _c5_runs(0.0, repeats))
    assert binom.cdf(absent, repeats, expected) > RATE_TAIL, f"{absent}/{repeats} passes, {expected:.2f} expected"
    # Planted weak modules whose difference (measured on other data) exceeds δ: C5 must fail.
    reference = modularity_test(*activations(998, loading=PLANTED_LOADING), GROUP, rng_seed=0, **FAST)
    assert reference.difference > delta
    expected = _tost_pass_rate(reference.difference, np.std(reference.q_spec_boot, ddof=1), delta, alpha)
    present = sum(run.passed for run in _c5_runs(PLANTED_LOADING, repeats))
    assert binom.sf(present - 1, repeats, expected) > RATE_TAIL, f"{present}/{repeats} passes, {expected:.3f} expected"


def test_constant_neurons_are_excluded_with_a_warning_in_the_record():
    x, seq = activations(8)
    x[:, [GROUP[0], 60]] = 0.25
    with pytest.warns(UserWarning, match="constant"):
        result = modularity_test(x, seq, GROUP, rng_seed=0, **SMALL)
    assert GROUP[0] not in result.specialists and result.specialists.size == len(GROUP) - 1
    assert result.excluded_constant.tolist() == [GROUP[0], 60]
    assert not np.isin(result.null_groups, [GROUP[0], 60]).any()
    fields = result.record_fields()
    assert fields["sample_sizes"]["constant_neurons_excluded"] == 2
    assert "constant" in fields["details"]["warnings"][0]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda x, seq, g: (x, seq, g[:2]), "at least 3 neurons"),
        (lambda x, seq, g: (np.where(np.arange(x.shape[1]) == 4, np.nan, x), seq, g), "non-finite"),
        (lambda x, seq, g: (np.where(np.isin(np.arange(x.shape[1]), g[1:]), 1.0, x), seq, g), "only 1 specialist"),
        (lambda x, seq, g: (x, seq, np.r_[g, g[0]]), "repeated"),
        (lambda x, seq, g: (x, seq, np.r_[g, N_NEURONS]), "must lie in"),
        (lambda x, seq, g: (x, seq[:-1], g), "one sequence per position"),
        (lambda x, seq, g: (x, np.zeros_like(seq), g), "at least 2 sequences"),
        (lambda x, seq, g: (x[:, :, None], seq, g), "float array"),
    ],
)
def test_bad_input_raises_clear_errors(mutate, message):
    x, seq = activations(9)
    x, seq, group = mutate(x, seq, GROUP)
    with pytest.raises(ValueError, match=message):
        modularity_test(x, seq, group, **SMALL)


def test_unknown_graph_kind_and_empty_thresholded_graph_are_errors():
    x, seq = activations(10)
    with pytest.raises(ValueError, match="unknown graph kind"):
        modularity_test(x, seq, GROUP, graph="dense", **SMALL)
    with pytest.raises(ValueError, match="no edges"):
        modularity_test(x, seq, GROUP, graph="thresholded", threshold=0.9, **SMALL)


def test_record_fields_fit_a_claim_record():
    from harness.records import ClaimRecord

    x, seq = activations(11)
    result = modularity_test(x, seq, GROUP, rng_seed=3, **SMALL)
    record = ClaimRecord("C5", "synthetic", **result.record_fields())
    record.decide(result.checks, result.message)
    assert record.verdict == ("pass" if result.passed else "fail")
    assert record.to_json()["null"]["q_random"]["B"] == SMALL["n_null"]
    assert record.to_json()["seeds"] == {"null_groups": 3, "bootstrap": 4, "louvain_first": 0}
