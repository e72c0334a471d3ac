"""Co-activation of neurons: correlation matrices of groups, Louvain on graphs, co-assignment (C5, C6).

Data: final-MLP activations at rare-target positions, ``X [n_positions, d_mlp]``.

- Group correlations (``group_correlations``): Pearson matrices of many neuron groups, batched;
  ``resampled_correlations``: one group's matrices under a bootstrap over sequences (C6's
  sampling gap, ``harness.analysis.groups``).
- The papers' quantity (``louvain_modularity``): Q of the graph *among a group's own neurons*
  (nodes = the group, weights from their correlations: ``"absolute"`` |r| on every pair,
  ``"thresholded"`` |r| ≥ threshold, ``"signed"`` the positive part scored with the signed
  modularity of Gómez, Jensen & Arenas 2009). It cannot see a module: a group that is one
  tight cluster has Q = 0, so C5 reports it only beside its decision.
- Modules beyond one factor (``beyond_one_factor``): what a one-factor model of a group's correlations
  leaves in its off-diagonal entries — sampling noise for a coordinated or an unstructured group, every
  block but one for a group of several modules (C5 takes it, split-half, on covariances of activations
  less the layer's common factors, ``harness.analysis.factors.factor_residuals``).
- The layer's communities (``layer_partitions``): Louvain on the co-activation graph of the
  *whole* layer (every neuron a node, edges |r| ≥ threshold), one partition per seed; and
  ``coassignment``: the share of a group's neuron pairs that fall in one community, averaged
  over the seeds — with the partitions of two halves of the data, the share that falls in one
  community in both (C5). Specialists that form a module are co-assigned far more often than matched
  random groups; dispersed specialists are not.

Louvain is python-louvain's ``best_partition`` (resolution 1.0), seeded; Q is networkx's
``modularity``. Cost: pure Python; one run on a 1,024-node layer graph with ≈ 50k edges took
≈ 1 s on one core, so C5 costs about ``louvain_seeds`` seconds per subject.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import community as community_louvain
import networkx as nx
import numpy as np
from scipy import sparse

from harness.analysis.stats import resample_counts, zscore_columns

GraphKind = Literal["absolute", "thresholded", "signed"]
GRAPH_KINDS: tuple[str, ...] = ("absolute", "thresholded", "signed")
MIN_GROUP_SIZE = 3
# Principal-axis iterations of the one-factor fit (beyond_one_factor): on 16-neuron groups the residual energy
# changes by < 1e-6 of itself between 30 and 100 iterations.
ONE_FACTOR_ITERATIONS = 50
# Elements of one [chunk, n_positions, size] block of gathered activations (bounds memory: ≈ 32 MB per float64 copy).
_CHUNK_ELEMENTS = 4_000_000
# SD (in units of the neuron's SD over all positions) below which a neuron counts as constant in a resample:
# rounding leaves ≈ 1e-9 where the sums cancel exactly.
_CONSTANT_SD = 1e-6


@dataclass(frozen=True)
class GroupActivations:
    """Validated activations for group analyses.

    Attributes:
        x: activations ``[n_positions, d_mlp]`` as given (not copied).
        mean, std: per-neuron mean and population SD over positions ``[d_mlp]``.
        specialists: the specialist ids kept (sorted; constant neurons removed).
        constant: ids of every neuron of the layer that is constant over the positions.
        warnings: human-readable notes for the record (e.g. constant specialists excluded).
    """

    x: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    specialists: np.ndarray
    constant: np.ndarray
    warnings: tuple[str, ...]

    @property
    def n_positions(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_neurons(self) -> int:
        return int(self.x.shape[1])

    @property
    def excluded(self) -> np.ndarray:
        """Neurons no random group may contain: the given specialists and constant neurons."""
        return np.union1d(self.specialists, self.constant)

    def standardized(self, ids: np.ndarray) -> np.ndarray:
        """z-scores over positions of the neurons ``ids`` (any shape ``[...]``) → ``[n_positions, ...]``."""
        ids = np.asarray(ids)
        return (self.x[:, ids] - self.mean[ids]) / np.where(self.std[ids] > 0, self.std[ids], 1.0)

    def subset(self, rows: np.ndarray) -> "GroupActivations":
        """The same neurons and specialists on the positions ``rows`` (a boolean mask or indices); a neuron
        constant there has r = 0 with every other neuron."""
        x = self.x[rows]
        return GroupActivations(x, x.mean(axis=0, dtype=np.float64), x.std(axis=0, dtype=np.float64),
                                self.specialists, self.constant, self.warnings)


def prepare_activations(x: np.ndarray, specialists: Sequence[int] | np.ndarray) -> GroupActivations:
    """Validate ``x [n_positions, d_mlp]`` and the specialist ids; drop constant specialists.

    Raises ValueError for non-2-D or non-finite activations, fewer than 3 positions, specialist
    ids that repeat or lie outside the layer, or fewer than 3 usable (non-constant) specialists.
    Constant specialists are dropped with a warning (in ``warnings`` and as a Python warning).
    """
    x = np.asarray(x)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"activations must be a float array [n_positions, d_mlp], got {x.dtype} {x.shape}")
    n_positions, n_neurons = x.shape
    if n_positions < MIN_GROUP_SIZE:
        raise ValueError(f"need at least {MIN_GROUP_SIZE} positions to correlate neurons, got {n_positions}")
    bad = ~np.isfinite(x)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise ValueError(
            f"activations hold {bad.sum()} non-finite values (NaN/inf), first at position {rows[0]}, "
            f"neuron {cols[0]}; all values must be finite"
        )
    spec = np.asarray(specialists).ravel()
    if spec.size and not np.issubdtype(spec.dtype, np.integer):
        raise ValueError(f"specialists must be integer neuron ids, got dtype {spec.dtype}")
    spec = spec.astype(np.int64)
    if np.unique(spec).size != spec.size:
        raise ValueError("specialists hold repeated neuron ids; pass each neuron once")
    if spec.size and (spec.min() < 0 or spec.max() >= n_neurons):
        raise ValueError(f"specialist ids must lie in 0…{n_neurons - 1}, got {spec[(spec < 0) | (spec >= n_neurons)][:5]}")
    if spec.size < MIN_GROUP_SIZE:
        raise ValueError(f"a group needs at least {MIN_GROUP_SIZE} neurons, got {spec.size}")
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    constant = np.flatnonzero(np.all(x == x[0], axis=0))
    notes: list[str] = []
    dropped = np.intersect1d(spec, constant)
    if dropped.size:
        notes.append(
            f"{dropped.size} specialist neuron(s) are constant over the {n_positions} positions and were "
            f"excluded: {dropped.tolist()}"
        )
        warnings.warn(notes[-1], stacklevel=2)
    kept = np.setdiff1d(spec, constant)
    if kept.size < MIN_GROUP_SIZE:
        raise ValueError(
            f"only {kept.size} specialist neuron(s) vary over the positions; a group needs at least "
            f"{MIN_GROUP_SIZE} non-constant neurons"
        )
    return GroupActivations(x, mean, std, kept, constant, tuple(notes))


def group_correlations(acts: GroupActivations, groups: np.ndarray) -> np.ndarray:
    """Pearson correlation matrices ``[n_groups, size, size]`` of neuron groups ``[n_groups, size]``.

    Batched: activations of a chunk of groups are gathered and multiplied in one stacked matmul.
    """
    groups = np.atleast_2d(np.asarray(groups, dtype=np.int64))
    n_groups, size = groups.shape
    out = np.empty((n_groups, size, size))
    chunk = max(1, _CHUNK_ELEMENTS // (acts.n_positions * size))
    for start in range(0, n_groups, chunk):
        z = acts.standardized(groups[start : start + chunk])  # [T, chunk, size]
        zt = np.ascontiguousarray(z.transpose(1, 2, 0))  # [chunk, size, T]
        out[start : start + chunk] = zt @ zt.transpose(0, 2, 1) / acts.n_positions
    idx = np.arange(size)
    out[:, idx, idx] = 1.0
    return np.clip(out, -1.0, 1.0)


def beyond_one_factor(corr: np.ndarray, halves: tuple[np.ndarray, np.ndarray] | None = None,
                      iterations: int = ONE_FACTOR_ITERATIONS) -> np.ndarray:
    """Off-diagonal energy of correlation matrices ``[..., size, size]`` that one common factor leaves → ``[...]``.

    A one-factor model r_ij ≈ l_i·l_j is fitted to each matrix's off-diagonal entries by principal-axis
    iteration (the diagonal replaced by the communalities l_i², ``iterations`` times from 0), and the statistic
    is Σ_{i≠j} (r_ij − l_i·l_j)². A group whose pairs share one factor (a coordinated group, or nothing) leaves
    only sampling noise; a group that splits into several blocks — modules of its own, or pairs — leaves every
    block but the one the factor takes. With ``halves`` (the same groups' matrices on two disjoint halves of the
    positions) the energy is the split-half cross product Σ_{i≠j} (r^A_ij − l_i·l_j)(r^B_ij − l_i·l_j), whose
    sampling noise has mean ≈ 0 whatever its size, so a group whose correlations are noisier than another's
    (fewer effective positions) does not look more modular. Unitless (summed over ordered pairs).
    """
    corr = np.asarray(corr, dtype=float)
    size = corr.shape[-1]
    off = ~np.eye(size, dtype=bool)
    e = np.where(off, corr, 0.0)
    idx = np.arange(size)
    loading = np.zeros(corr.shape[:-1])
    for _ in range(iterations):
        m = e.copy()
        m[..., idx, idx] = loading**2
        w, v = np.linalg.eigh(m)
        loading = v[..., -1] * np.sqrt(np.maximum(w[..., -1], 0.0))[..., None]
    fitted = loading[..., :, None] * loading[..., None, :]
    a, b = (corr, corr) if halves is None else halves
    return np.where(off, (np.asarray(a) - fitted) * (np.asarray(b) - fitted), 0.0).sum(axis=(-2, -1))


def resampled_correlations(x: np.ndarray, seq: np.ndarray, group: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Pearson matrices ``[B, size, size]`` of one neuron ``group`` ``[size]`` on bootstrap resamples of sequences.

    ``x`` ``[n_positions, d_mlp]`` activations, ``seq`` ``[n_positions]`` their sequence ids, ``draws``
    ``[B, n_units]`` indices into the sorted distinct ids of ``seq`` (one resample of the sequences per
    row, e.g. ``stats.bootstrap_indices``). Computed from per-sequence sums, so the cost is
    B × n_units × size² rather than B × n_positions × size². A neuron constant within a resample has
    r = 0 with every other neuron there.
    """
    x, seq, group = np.asarray(x, dtype=np.float64), np.asarray(seq), np.asarray(group, dtype=np.int64)
    if x.ndim != 2 or seq.shape != (x.shape[0],) or group.ndim != 1:
        raise ValueError(f"need x [n_positions, d_mlp], seq [n_positions] and one group [size]; got {x.shape}, "
                         f"{seq.shape}, {group.shape}")
    units, unit_of = np.unique(seq, return_inverse=True)
    draws = np.asarray(draws, dtype=np.int64)
    if draws.ndim != 2 or draws.size == 0 or draws.min() < 0 or draws.max() >= units.size:
        raise ValueError(f"draws must be [B, n_units] indices into the {units.size} distinct sequences")
    z = x[:, group]
    z = (z - z.mean(0)) / np.where(z.std(0) > 0, z.std(0), 1.0)    # standardised once: no cancellation below
    n_pos, size = z.shape
    member = sparse.csr_matrix((np.ones(n_pos), (unit_of, np.arange(n_pos))), shape=(units.size, n_pos))
    counts = resample_counts(draws, units.size)
    weight = counts @ np.asarray(member.sum(axis=1)).ravel()                          # positions per resample [B]
    mean = counts @ (member @ z) / weight[:, None]                                      # [B, size]
    second = (counts @ (member @ (z[:, :, None] * z[:, None, :]).reshape(n_pos, -1))).reshape(-1, size, size)
    cov = second / weight[:, None, None] - mean[:, :, None] * mean[:, None, :]
    sd = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0.0, None))
    sd = np.where(sd > _CONSTANT_SD, sd, np.inf)                     # constant in the resample: r = 0
    r = cov / (sd[:, :, None] * sd[:, None, :])
    idx = np.arange(size)
    r[:, idx, idx] = 1.0
    return np.clip(r, -1.0, 1.0)


def coactivation_graph(corr: np.ndarray, kind: GraphKind = "absolute", threshold: float = 0.3) -> nx.Graph:
    """The graph Louvain partitions: nodes ``0…size-1``, weights from ``corr [size, size]``.

    ``"absolute"``: |r| on every pair; ``"thresholded"``: |r| where |r| ≥ ``threshold``;
    ``"signed"``: the positive part max(r, 0). Zero-weight edges are left out.
    """
    return _graph_from_weights(_edge_weights(corr, kind, threshold)[0])


def louvain_partitions(graph: nx.Graph, seeds: Sequence[int]) -> np.ndarray:
    """Community labels ``[n_seeds, n_nodes]`` from python-louvain ``best_partition`` (resolution 1.0)."""
    nodes = sorted(graph.nodes)
    labels = np.empty((len(seeds), len(nodes)), dtype=np.int64)
    for row, seed in enumerate(seeds):
        part = community_louvain.best_partition(graph, weight="weight", resolution=1.0, random_state=int(seed))
        labels[row] = [part[v] for v in nodes]
    return labels


def partition_modularity(corr: np.ndarray, labels: np.ndarray, kind: GraphKind = "absolute", threshold: float = 0.3) -> float:
    """networkx modularity of the partition ``labels [size]`` on the co-activation graph of ``corr``.

    For ``"signed"`` the Gómez et al. Q± of the module docstring. NaN when the graph has no edges.
    """
    return _modularity(*_graphs(corr, kind, threshold), labels)


@dataclass(frozen=True)
class LouvainModularity:
    """Louvain modularity of one graph over several seeds.

    Attributes:
        q: mean Q over seeds (NaN when the graph has no edges); q_sd: SD over seeds;
        q_per_seed ``[n_seeds]``; labels ``[n_seeds, size]`` the partitions found.
    """

    q: float
    q_sd: float
    q_per_seed: np.ndarray
    labels: np.ndarray


def louvain_modularity(
    corr: np.ndarray, *, kind: GraphKind = "absolute", threshold: float = 0.3, seeds: Sequence[int] = range(10)
) -> LouvainModularity:
    """Partition the co-activation graph of ``corr [size, size]`` with Louvain once per seed and score it."""
    _check_kind(kind)
    graph, negative, w_pos, w_neg = _graphs(corr, kind, threshold)
    if graph.number_of_edges() == 0:
        nan = np.full(len(seeds), np.nan)
        return LouvainModularity(float("nan"), float("nan"), nan, np.tile(np.arange(len(corr)), (len(seeds), 1)))
    labels = louvain_partitions(graph, list(seeds))
    q = np.array([_modularity(graph, negative, w_pos, w_neg, row) for row in labels])
    return LouvainModularity(float(q.mean()), float(q.std(ddof=1)) if q.size > 1 else 0.0, q, labels)


def louvain_modularity_batch(
    corrs: np.ndarray, *, kind: GraphKind = "absolute", threshold: float = 0.3, seeds: Sequence[int] = range(10)
) -> tuple[np.ndarray, np.ndarray]:
    """Seed-mean Q and seed SD of Q, each ``[n_graphs]``, for correlation matrices ``[n_graphs, size, size]``."""
    results = [louvain_modularity(c, kind=kind, threshold=threshold, seeds=seeds) for c in corrs]
    return np.array([r.q for r in results]), np.array([r.q_sd for r in results])


def layer_partitions(x: np.ndarray, *, kind: GraphKind = "thresholded", threshold: float = 0.3,
                     seeds: Sequence[int] = range(10)) -> np.ndarray:
    """Louvain communities of the whole layer's co-activation graph, one partition per seed.

    ``x`` ``[n_positions, d_mlp]``: activations; nodes are every neuron, edges |r| ≥ ``threshold``
    (``"thresholded"``) or the positive part of r at or above it (``"signed"``). Constant neurons
    are isolated nodes. Returns labels ``[n_seeds, d_mlp]``.
    """
    if kind not in ("thresholded", "signed"):
        raise ValueError(f"unknown graph kind {kind!r} for the layer's graph; use 'thresholded' or 'signed'")
    z = zscore_columns(x)
    corr = z.T @ z / z.shape[0]
    if kind == "signed":
        weight = np.where(corr >= threshold, corr, 0.0)
    else:
        weight = np.where(np.abs(corr) >= threshold, np.abs(corr), 0.0)
    np.fill_diagonal(weight, 0.0)
    graph = _graph_from_weights(weight)
    if graph.number_of_edges() == 0:
        return np.tile(np.arange(x.shape[1]), (len(list(seeds)), 1))
    return louvain_partitions(graph, list(seeds))


def coassignment(labels: np.ndarray | Sequence[np.ndarray], groups: np.ndarray) -> np.ndarray:
    """Share of neuron pairs of each group ``[n_groups, size]`` that Louvain puts in one community,
    averaged over the partitions ``labels`` ``[n_seeds, d_mlp]`` → ``[n_groups]``.

    ``labels`` may also be several such arrays of the same shape — the partitions of disjoint halves of the
    data, seed by seed: a pair then counts only when it shares a community in every one of them, so
    co-assignment that sampling noise makes (edges that one half's correlations cross the threshold with and
    the other's do not) does not count, and a community that the data hold does."""
    groups = np.atleast_2d(np.asarray(groups, dtype=np.int64))
    size = groups.shape[1]
    sets = [labels] if isinstance(labels, np.ndarray) else list(labels)
    if len({np.shape(s) for s in sets}) != 1:
        raise ValueError(f"co-assignment needs partitions of one shape [n_seeds, d_mlp], got "
                         f"{[np.shape(s) for s in sets]}")
    same = np.logical_and.reduce([s[:, groups][..., :, None] == s[:, groups][..., None, :]
                                  for s in sets])                                  # [S, G, size, size]
    pairs = (same.sum(axis=(-2, -1)) - size) / (size * (size - 1))
    return pairs.mean(axis=0)


def community_layout(labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """2-D positions ``(x, y)`` ``[d_mlp]`` for drawing a partition: communities on a circle (larger ones
    first), each a disc of jittered nodes with area ∝ its size; singletons share an outer ring."""
    rng = np.random.default_rng(seed)
    ids, counts = np.unique(labels, return_counts=True)
    order = ids[np.argsort(-counts, kind="stable")]
    big = [c for c in order if np.sum(labels == c) > 1]
    x, y = np.zeros(labels.size), np.zeros(labels.size)
    for k, c in enumerate(big):
        members = np.flatnonzero(labels == c)
        angle = 2 * np.pi * k / max(len(big), 1)
        r = 0.08 * np.sqrt(members.size / 10.0) * np.sqrt(rng.random(members.size))
        t = 2 * np.pi * rng.random(members.size)
        x[members] = np.cos(angle) + r * np.cos(t)
        y[members] = np.sin(angle) + r * np.sin(t)
    lonely = np.flatnonzero(~np.isin(labels, big))
    t = 2 * np.pi * rng.random(lonely.size)
    x[lonely], y[lonely] = 1.6 * np.cos(t), 1.6 * np.sin(t)
    return x, y


def _check_kind(kind: str) -> None:
    if kind not in GRAPH_KINDS:
        raise ValueError(f"unknown graph kind {kind!r}; use one of {GRAPH_KINDS}")


def _edge_weights(corr: np.ndarray, kind: str, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative weight matrices ``[size, size]`` (zero diagonal) of a graph kind."""
    _check_kind(kind)
    corr = np.asarray(corr, dtype=float)
    if corr.ndim != 2 or corr.shape[0] != corr.shape[1]:
        raise ValueError(f"a correlation matrix must be square, got shape {corr.shape}")
    off = ~np.eye(len(corr), dtype=bool)
    if kind == "signed":
        return np.where(off, np.maximum(corr, 0.0), 0.0), np.where(off, np.maximum(-corr, 0.0), 0.0)
    weight = np.where(off, np.abs(corr), 0.0)
    if kind == "thresholded":
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"the co-activation threshold must lie in [0, 1), got {threshold}")
        weight = np.where(weight >= threshold, weight, 0.0)
    return weight, np.zeros_like(weight)


def _graph_from_weights(weight: np.ndarray) -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(range(len(weight)))
    i, j = np.nonzero(np.triu(weight, 1))
    graph.add_weighted_edges_from(zip(i.tolist(), j.tolist(), weight[i, j].tolist()))
    return graph


def _graphs(corr: np.ndarray, kind: str, threshold: float) -> tuple[nx.Graph, nx.Graph, float, float]:
    """Positive graph, negative graph, and their total weights w⁺, w⁻."""
    pos, neg = _edge_weights(corr, kind, threshold)
    return _graph_from_weights(pos), _graph_from_weights(neg), float(np.triu(pos, 1).sum()), float(np.triu(neg, 1).sum())


def _communities(labels: np.ndarray) -> list[set[int]]:
    return [set(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)]


def _modularity(positive: nx.Graph, negative: nx.Graph, w_pos: float, w_neg: float, labels: np.ndarray) -> float:
    if positive.number_of_edges() == 0:
        return float("nan")
    communities = _communities(labels)
    q_pos = nx.community.modularity(positive, communities, weight="weight", resolution=1.0)
    if negative.number_of_edges() == 0:
        return float(q_pos)
    q_neg = nx.community.modularity(negative, communities, weight="weight", resolution=1.0)
    return float((w_pos * q_pos - w_neg * q_neg) / (w_pos + w_neg))
