"""Co-activation: group correlations, graphs and Louvain modularity of a group (the papers' quantity),
and the layer's communities with the co-assignment of groups (C5's quantity), on planted data."""

from __future__ import annotations

import community as community_louvain
import numpy as np
import pytest

from harness.analysis.coactivation import (
    beyond_one_factor,
    coactivation_graph,
    coassignment,
    community_layout,
    group_correlations,
    layer_partitions,
    louvain_modularity,
    partition_modularity,
    prepare_activations,
    resampled_correlations,
)
from harness.analysis.groups import random_groups
from synthetic import factor_activations

N_POSITIONS = 1000
N_NEURONS = 120
N_MODULES, MODULE_SIZE = 3, 5
GROUP = np.arange(N_MODULES * MODULE_SIZE)  # the planted specialists: neurons 0…14
SEEDS = range(3)
# The layer's communities: 4 blocks of 25 neurons and 20 neurons in none (within-block r = 0.5).
COMMUNITIES = np.r_[np.repeat(np.arange(4), 25), np.full(20, -1)]


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


def module_labels(n_modules: int = N_MODULES) -> np.ndarray:
    """The group's planted module of each of its neurons (``GROUP`` split into ``n_modules`` blocks)."""
    return np.concatenate([np.full(len(b), i) for i, b in enumerate(np.array_split(GROUP, n_modules))])


def activations(seed: int, loading: float = 0.0, n_modules: int = N_MODULES) -> np.ndarray:
    """iid Gaussian activations ``[N_POSITIONS, N_NEURONS]``; with ``loading`` > 0 the group's neurons are
    split into ``n_modules`` blocks, each sharing a latent factor (within-block r = l²/(1 + l²))."""
    blocks = np.full(N_NEURONS, -1)
    blocks[GROUP] = module_labels(n_modules)
    return factor_activations(seed, N_POSITIONS, N_NEURONS, blocks=blocks, block_loading=loading)


def layer_activations(seed: int) -> np.ndarray:
    """The layer with ``COMMUNITIES`` planted (loading 1: within-block r = 0.5, across blocks 0)."""
    return factor_activations(seed, N_POSITIONS, N_NEURONS, blocks=COMMUNITIES, block_loading=1.0)


# --- within-group correlations and modularity (the papers' Q) -----------------------------------


def test_one_factor_leaves_noise_and_several_modules_leave_all_but_one():
    """``beyond_one_factor``: an exact one-factor matrix leaves 0; on 1,000 positions a group of 15 sharing one
    factor (r = 0.5) or nothing leaves sampling noise (at most 2·105/1000 ≈ 0.2), and 3 modules of 5 or 5 of 3
    (within-module r = 0.5) leave every module but one: (m − 1)/m of the modules' Σ r² over ordered pairs, 10
    and 6."""
    loading = np.linspace(0.2, 0.9, 6)
    exact = np.outer(loading, loading)
    np.fill_diagonal(exact, 1.0)
    assert beyond_one_factor(exact) == pytest.approx(0.0, abs=1e-10)
    one = factor_activations(5, N_POSITIONS, N_NEURONS, blocks=np.r_[np.zeros(15), np.full(105, -1)],
                             block_loading=1.0)
    noise = [one, activations(5, loading=0.0)]
    modules = [activations(5, loading=1.0, n_modules=k) for k in (3, 5)]
    energy = [beyond_one_factor(group_correlations(prepare_activations(x, GROUP), GROUP[None]))[0]
              for x in noise + modules]
    assert max(energy[:2]) < 0.4 and min(energy[2:]) > 5.0
    stacked = group_correlations(prepare_activations(modules[0], GROUP), np.stack([GROUP, GROUP + 20]))
    np.testing.assert_allclose(beyond_one_factor(stacked), [beyond_one_factor(c) for c in stacked])
    np.testing.assert_allclose(beyond_one_factor(stacked, halves=(stacked, stacked)), beyond_one_factor(stacked))


def test_the_split_half_energy_does_not_grow_with_the_groups_noise():
    """Noise only, 15 neurons: one sample's energy grows as the positions fall (≈ 2·105/n: 1.5 at 100 positions,
    0.16 at 1,000), the split-half cross product over two halves of the positions does not (it falls: the fitted
    factor takes some of both halves' noise, ≈ −0.6 at 100 and −0.06 at 1,000; 40 draws each), so noisier
    correlations never look more modular; 3 modules of 5 keep it above 5 at 1,000 positions."""
    def energies(n: int, loading: float = 0.0, draws: int = 40) -> tuple[float, float]:
        one, split = [], []
        for seed in range(draws):
            acts = prepare_activations(factor_activations(seed, n, 15, blocks=np.arange(15) // 5,
                                                          block_loading=loading), np.arange(15))
            halves = [acts.subset(np.arange(n) % 2 == k) for k in (0, 1)]
            corr = [group_correlations(a, np.arange(15)[None]) for a in (acts, *halves)]
            one.append(beyond_one_factor(corr[0])[0])
            split.append(beyond_one_factor(corr[0], halves=(corr[1], corr[2]))[0])
        return float(np.mean(one)), float(np.mean(split))
    (few_one, few_split), (many_one, many_split) = energies(100), energies(1000)
    assert few_one > 4 * many_one and few_split < many_split < 0.0
    assert energies(1000, loading=1.0, draws=3)[1] > 5.0


def test_group_correlations_equal_numpy_corrcoef():
    """Batched Pearson matrices of two groups equal ``np.corrcoef`` of their columns."""
    x = activations(0, loading=1.0)
    acts = prepare_activations(x, GROUP)
    groups = np.array([[0, 3, 7, 50], [1, 2, 90, 119]])
    want = np.stack([np.corrcoef(x[:, g].T) for g in groups])
    assert np.allclose(group_correlations(acts, groups), want, atol=1e-12)


@pytest.mark.parametrize("kind", ["absolute", "thresholded"])
@pytest.mark.parametrize("loading", [0.0, 1.0])
def test_python_louvain_and_networkx_agree_on_q_of_the_same_partition(kind, loading):
    """Q of one partition: networkx (ours) equals python-louvain's own modularity."""
    x = activations(2, loading=loading)
    corr = group_correlations(prepare_activations(x, GROUP), GROUP)[0]
    threshold = 0.05  # low enough that i.i.d. data still has edges
    graph = coactivation_graph(corr, kind, threshold)
    partition = community_louvain.best_partition(graph, resolution=1.0, random_state=0)
    labels = np.array([partition[v] for v in range(len(GROUP))])
    assert partition_modularity(corr, labels, kind, threshold) == pytest.approx(
        community_louvain.modularity(partition, graph), abs=1e-12
    )


def test_thresholded_graph_keeps_only_strong_edges():
    """|r| ≥ 0.3 keeps two of three edges (weights |r|); the absolute graph keeps all three."""
    corr = np.array([[1.0, 0.5, -0.4], [0.5, 1.0, 0.1], [-0.4, 0.1, 1.0]])
    graph = coactivation_graph(corr, "thresholded", 0.3)
    assert {(u, v): d["weight"] for u, v, d in graph.edges(data=True)} == {(0, 1): 0.5, (0, 2): 0.4}
    assert coactivation_graph(corr, "absolute").number_of_edges() == 3


@pytest.mark.parametrize("n_modules", [2, 3, 5])
def test_louvain_recovers_planted_modules(n_modules):
    """Planted modules inside the group (r = 0.5): every seed's partition matches them (ARI ≥ 0.9)."""
    x = activations(3, loading=1.0, n_modules=n_modules)
    corr = group_correlations(prepare_activations(x, GROUP), GROUP)[0]
    result = louvain_modularity(corr, seeds=SEEDS)
    assert all(adjusted_rand(labels, module_labels(n_modules)) >= 0.9 for labels in result.labels)
    assert result.q_per_seed.shape == (len(SEEDS),) and result.q == pytest.approx(result.q_per_seed.mean())


def test_signed_graph_separates_anticorrelated_modules_that_the_absolute_graph_merges():
    """Two halves loading +2 and −2 on one factor: the signed graph splits them, |r| merges them."""
    rng = np.random.default_rng(4)
    factor = rng.standard_normal((N_POSITIONS, 1))
    x = rng.standard_normal((N_POSITIONS, N_NEURONS))
    half = len(GROUP) // 2
    x[:, GROUP[:half]] += 2.0 * factor
    x[:, GROUP[half:]] -= 2.0 * factor
    corr = group_correlations(prepare_activations(x, GROUP), GROUP)[0]
    truth = (np.arange(len(GROUP)) >= half).astype(int)
    signed = louvain_modularity(corr, kind="signed", seeds=SEEDS)
    absolute = louvain_modularity(corr, kind="absolute", seeds=SEEDS)
    assert all(adjusted_rand(labels, truth) >= 0.9 for labels in signed.labels)
    assert signed.q > absolute.q + 0.05  # |r| makes the two halves one dense block


def test_a_group_graph_without_edges_has_no_modularity():
    """iid neurons at threshold 0.9: no edge, Q is NaN and every neuron is its own community."""
    corr = group_correlations(prepare_activations(activations(5), GROUP), GROUP)[0]
    result = louvain_modularity(corr, kind="thresholded", threshold=0.9, seeds=SEEDS)
    assert np.isnan(result.q) and np.isnan(result.q_per_seed).all()
    np.testing.assert_array_equal(result.labels, np.tile(np.arange(len(GROUP)), (len(SEEDS), 1)))


def test_unknown_graph_kind_is_an_error():
    """A graph kind other than absolute / thresholded / signed: ValueError."""
    with pytest.raises(ValueError, match="unknown graph kind"):
        louvain_modularity(np.eye(4), kind="dense")


# --- the layer's communities and co-assignment --------------------------------------------------


def test_layer_partitions_recover_planted_communities():
    """Four planted blocks of 25 neurons (r = 0.5 ≥ threshold 0.3, noise |r| ≈ 0.03): every seed's
    partition has the four blocks as communities (ARI 1 on the block neurons) and leaves each of
    the 20 unattached neurons alone."""
    labels = layer_partitions(layer_activations(6), threshold=0.3, seeds=SEEDS)
    assert labels.shape == (len(SEEDS), N_NEURONS)
    block = COMMUNITIES >= 0
    for row in labels:
        assert adjusted_rand(row[block], COMMUNITIES[block]) == pytest.approx(1.0)
        loners = row[~block]
        assert np.unique(loners).size == loners.size and not np.isin(loners, row[block]).any()


def test_layer_partitions_of_an_edgeless_graph_are_singletons():
    """iid neurons at threshold 0.9 (and one constant neuron): every neuron is its own community."""
    x = factor_activations(7, N_POSITIONS, N_NEURONS)
    x[:, 10] = 1.0
    labels = layer_partitions(x, threshold=0.9, seeds=SEEDS)
    np.testing.assert_array_equal(labels, np.tile(np.arange(N_NEURONS), (len(SEEDS), 1)))


def test_layer_partitions_refuse_an_unknown_graph_kind():
    """Only 'thresholded' and 'signed' graphs partition the layer; another kind is an error, not
    silently a thresholded graph."""
    with pytest.raises(ValueError, match="graph kind"):
        layer_partitions(layer_activations(6), kind="absolute", seeds=SEEDS)


def test_coassignment_is_the_share_of_pairs_in_one_community():
    """Brute force over pairs and partitions: a group inside one community scores 1, a group split
    2 + 1 scores 1/3 in the first partition and 1 in the second, so 2/3 on average."""
    labels = np.array([[0, 0, 0, 1, 1, 2], [0, 0, 0, 0, 0, 0]])
    groups = np.array([[0, 1, 2], [1, 2, 3], [0, 4, 5]])
    np.testing.assert_allclose(coassignment(labels, groups), [1.0, (1 / 3 + 1) / 2, (0 + 1) / 2])


def test_coassignment_over_two_halves_counts_pairs_that_share_a_community_in_both():
    """With the partitions of two halves of the data (seed by seed), a pair counts only when it shares a community
    in both: neurons 0–2 are together in both halves' first seed, neurons 3 and 4 only in the first half's."""
    first = np.array([[0, 0, 0, 1, 1, 2], [0, 0, 0, 0, 0, 0]])
    second = np.array([[0, 0, 0, 1, 2, 2], [0, 0, 1, 1, 1, 1]])
    groups = np.array([[0, 1, 2], [2, 3, 4]])
    np.testing.assert_allclose(coassignment((first, second), groups), [(1 + 1 / 3) / 2, (0 + 1) / 2])
    np.testing.assert_allclose(coassignment((first, first), groups), coassignment(first, groups))
    with pytest.raises(ValueError, match="one shape"):
        coassignment((first, second[:1]), groups)


def test_coassignment_of_groups_inside_a_community_and_of_random_groups():
    """On the recovered planted partition: a group of 8 inside one block is co-assigned in every pair
    (1); 2,000 uniformly drawn groups of 8 average the chance rate Σ n_c(n_c − 1) / (N(N − 1)) of the
    partition found (to 0.01: its Monte-Carlo SE is < 0.002)."""
    labels = layer_partitions(layer_activations(6), threshold=0.3, seeds=SEEDS)
    inside = np.flatnonzero(COMMUNITIES == 2)[:8]
    assert coassignment(labels, inside[None])[0] == pytest.approx(1.0)
    uniform = random_groups(N_NEURONS, 8, [], 2000, seed=0)
    chance = np.mean([(np.unique(row, return_counts=True)[1] * (np.unique(row, return_counts=True)[1] - 1)).sum()
                      / (N_NEURONS * (N_NEURONS - 1)) for row in labels])
    assert coassignment(labels, uniform).mean() == pytest.approx(chance, abs=0.01)
    assert chance == pytest.approx(4 * 25 * 24 / (N_NEURONS * (N_NEURONS - 1)))


def test_community_layout_places_communities_on_a_circle_and_singletons_outside():
    """Positions ``[d_mlp]`` each; community members lie near their community's point on the unit circle
    (within its disc), singletons on the ring of radius 1.6; the same seed gives the same layout."""
    labels = np.r_[np.repeat([7, 3], [30, 10]), np.arange(100, 105)]  # two communities, 5 singletons
    x, y = community_layout(labels, seed=1)
    assert x.shape == y.shape == labels.shape
    radius = np.hypot(x, y)
    np.testing.assert_allclose(radius[40:], 1.6)
    for c, size in ((7, 30), (3, 10)):
        members = labels == c
        centre = np.array([x[members].mean(), y[members].mean()])
        assert np.linalg.norm(centre) == pytest.approx(1.0, abs=0.1)
        disc = 0.08 * np.sqrt(size / 10.0)
        assert np.all(np.hypot(x[members] - centre[0], y[members] - centre[1]) <= 2 * disc)
    again = community_layout(labels, seed=1)
    np.testing.assert_array_equal(x, again[0])
    np.testing.assert_array_equal(y, again[1])


# --- bad input --------------------------------------------------------------------------------


def test_constant_specialists_are_dropped_with_a_warning():
    """A constant specialist is removed from the group and named; constant neurons are excluded."""
    x = activations(8)
    x[:, [GROUP[0], 60]] = 0.25
    with pytest.warns(UserWarning, match="constant"):
        acts = prepare_activations(x, GROUP)
    assert GROUP[0] not in acts.specialists and acts.specialists.size == len(GROUP) - 1
    np.testing.assert_array_equal(acts.constant, [GROUP[0], 60])
    np.testing.assert_array_equal(acts.excluded, np.union1d(GROUP, [60]))
    assert "constant" in acts.warnings[0]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda x, g: (x, g[:2]), "at least 3 neurons"),
        (lambda x, g: (np.where(np.arange(x.shape[1]) == 4, np.nan, x), g), "non-finite"),
        (lambda x, g: (np.where(np.isin(np.arange(x.shape[1]), g[1:]), 1.0, x), g), "only 1 specialist"),
        (lambda x, g: (x, np.r_[g, g[0]]), "repeated"),
        (lambda x, g: (x, np.r_[g, N_NEURONS]), "must lie in"),
        (lambda x, g: (x, g.astype(float)), "integer"),
        (lambda x, g: (x[:2], g), "at least 3 positions"),
        (lambda x, g: (x[:, :, None], g), "float array"),
    ],
)
@pytest.mark.filterwarnings("ignore:.*constant over the:UserWarning")  # warned before the 'only 1' error
def test_bad_input_raises_clear_errors(mutate, message):
    """Too small a group, NaN, constant specialists, repeated or out-of-range or float ids, too few
    positions, a 3-D array: ValueError naming the problem."""
    x, group = mutate(activations(9), GROUP)
    with pytest.raises(ValueError, match=message):
        prepare_activations(x, group)


def test_resampled_correlations_equal_the_correlations_of_the_resampled_positions():
    """Each bootstrap resample of sequences gives the Pearson matrix of the positions of the drawn sequences
    (repeated as drawn), by brute force with numpy; the identity draw gives the sample's own matrix; a neuron
    constant within a resample has r = 0 there."""
    rng = np.random.default_rng(0)
    x = factor_activations(0, 300, 30)
    seq = np.sort(rng.integers(0, 40, 300))
    units = np.unique(seq)
    group = np.array([2, 7, 11, 19])
    draws = np.vstack([np.arange(units.size), rng.integers(0, units.size, (3, units.size))])
    r = resampled_correlations(x, seq, group, draws)
    for b, d in enumerate(draws):
        rows = np.concatenate([np.flatnonzero(seq == units[u]) for u in d])
        np.testing.assert_allclose(r[b], np.corrcoef(x[np.ix_(rows, group)].T), atol=1e-10)
    x_const = x.copy()
    x_const[np.isin(seq, units[:5]), 7] = 0.25
    one = resampled_correlations(x_const, seq, group, np.zeros((1, 5), dtype=int) + np.arange(5))[0]
    np.testing.assert_array_equal(one[1], [0.0, 1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="distinct sequences"):
        resampled_correlations(x, seq, group, draws + units.size)
