"""Co-activation graphs of neuron groups, Louvain modularity, and the C5 equivalence test.

Data: the final-MLP activations at rare-target positions, ``X [n_positions, d_mlp]``, the
evaluation sequence of every row, ``seq_ids [n_positions]``, and a neuron group (the
specialists). The group's co-activation graph has the group's neurons as nodes and Pearson
correlations over positions as edge weights:

- ``"absolute"``: complete graph, weight |r|;
- ``"thresholded"``: weight |r|, only edges with |r| ≥ threshold;
- ``"signed"``: Louvain runs on the positive part (weights max(r, 0)); the partition is scored
  with the signed modularity of Gómez, Jensen & Arenas (2009), Q± = (w⁺Q⁺ − w⁻Q⁻)/(w⁺ + w⁻),
  Q⁺/Q⁻ the modularities of the positive/negative parts and w⁺/w⁻ their total weights.

Louvain is python-louvain's ``best_partition`` (resolution 1.0), one run per seed; Q of each
partition is networkx's ``modularity``; a graph's Q is the mean over seeds. A graph without
edges has no defined modularity (NaN). Modularity is dimensionless.

``modularity_test`` is the C5 entry: Q of the specialists against ≥ 1,000 random groups of the
same size from the same layer (seeded, specialists excluded), a bootstrap over sequences of
Q_spec for its standard error, and two one-sided tests (TOST) that Q_spec − median(Q_null) lies
inside (−δ, δ).

Cost: python-louvain is pure Python and dominates. One run (with networkx's Q) on a complete
graph took ≈ 1 ms for 15 nodes, ≈ 3 ms for 30 and ≈ 9 ms for 50 on one core of a shared machine;
the null and the bootstrap each cost n_graphs × louvain_seeds runs (1,000 × 10 at 50 nodes
≈ 90 s). Correlations are cheap: batched matmuls for the null, per-sequence moments for the
bootstrap.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import community as community_louvain
import networkx as nx
import numpy as np
from scipy.stats import norm

from harness.groups import random_groups
from harness.stats import bootstrap_indices, empirical_p, summarize_null

GraphKind = Literal["absolute", "thresholded", "signed"]
GRAPH_KINDS: tuple[str, ...] = ("absolute", "thresholded", "signed")
MIN_GROUP_SIZE = 3
# Elements of one [chunk, n_positions, size] block of gathered activations (bounds memory: ≈ 32 MB per float64 copy).
_CHUNK_ELEMENTS = 4_000_000


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
        return (self.x[:, ids] - self.mean[ids]) / self.std[ids]


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


def bootstrap_group_correlations(
    acts: GroupActivations, ids: np.ndarray, seq_ids: np.ndarray, n_bootstrap: int, seed: int
) -> np.ndarray:
    """Correlation matrices ``[n_bootstrap, size, size]`` of the neurons ``ids`` over bootstrap samples.

    Each resample draws the evaluation sequences with replacement (``harness.stats.bootstrap_indices``)
    and takes all rows of every drawn sequence, as often as it was drawn. Computed exactly from
    per-sequence moments. A neuron constant within a resample gets correlation 0 with the others.
    """
    seq_ids = np.asarray(seq_ids)
    if seq_ids.shape != (acts.n_positions,):
        raise ValueError(f"seq_ids must give one sequence per position, shape ({acts.n_positions},), got {seq_ids.shape}")
    _, seq_index = np.unique(seq_ids, return_inverse=True)
    n_seq = int(seq_index.max()) + 1
    z = acts.standardized(np.asarray(ids))  # [T, size], centred: moments stay well conditioned
    size = z.shape[1]
    counts_per_seq = np.bincount(seq_index, minlength=n_seq).astype(float)
    sum1 = np.zeros((n_seq, size))
    np.add.at(sum1, seq_index, z)
    sum2 = np.stack([z[seq_index == s].T @ z[seq_index == s] for s in range(n_seq)]).reshape(n_seq, -1)
    draws = bootstrap_indices(n_seq, n_bootstrap, seed)
    weights = np.zeros((n_bootstrap, n_seq))
    np.add.at(weights, (np.repeat(np.arange(n_bootstrap), n_seq), draws.ravel()), 1.0)
    n = weights @ counts_per_seq  # [B]
    mean = (weights @ sum1) / n[:, None]
    cov = (weights @ sum2).reshape(n_bootstrap, size, size) / n[:, None, None] - mean[:, :, None] * mean[:, None, :]
    var = np.diagonal(cov, axis1=1, axis2=2).copy()
    varies = var > 1e-12 * np.maximum(1.0, var.max(axis=1, keepdims=True))
    scale = np.where(varies, 1.0 / np.sqrt(np.where(varies, var, 1.0)), 0.0)
    corr = cov * scale[:, :, None] * scale[:, None, :]
    idx = np.arange(size)
    corr[:, idx, idx] = 1.0
    return np.clip(corr, -1.0, 1.0)


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


@dataclass
class ModularityResult:
    """Everything the C5 record needs. Q is dimensionless; all arrays are plain numpy.

    ``ci`` is the (1 − 2α) normal bootstrap interval of Q_spec − median(Q_null) (90% at α = 0.05;
    ``bootstrap_normal_ci``); the TOST passes when it lies inside (−δ, δ). ``p_difference`` is the two-sided
    empirical p of Q_spec against the null; ``p_greater`` the one-sided p for Q_spec above it.
    On a thresholded graph some random groups (or resamples) may have no edge: their Q is NaN,
    they are left out of the null (and the SD), and ``record_fields`` counts the defined ones.
    """

    graph: str
    threshold: float
    delta: float
    alpha: float
    q_spec: float
    q_spec_seed_sd: float
    q_spec_per_seed: np.ndarray
    spec_labels: np.ndarray
    q_null: np.ndarray
    q_null_seed_sd: np.ndarray
    null_median: float
    difference: float
    ci: tuple[float, float]
    ci_level: float
    q_spec_boot: np.ndarray
    p_difference: float
    p_greater: float
    specialists: np.ndarray
    null_groups: np.ndarray
    excluded_constant: np.ndarray
    n_positions: int
    n_sequences: int
    n_neurons: int
    louvain_seeds: list[int]
    null_seed: int
    bootstrap_seed: int
    matched_on_mean: bool
    timings_s: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    @property
    def checks(self) -> dict[str, bool]:
        """The decision's parts: both one-sided tests of the TOST, and no significant difference."""
        lo, hi = self.ci
        return {
            "tost_lower": bool(lo > -self.delta),
            "tost_upper": bool(hi < self.delta),
            "no_difference": bool(self.p_difference > self.alpha),
        }

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    @property
    def failed_parts(self) -> list[str]:
        return [name for name, ok in self.checks.items() if not ok]

    @property
    def message(self) -> str:
        lo, hi = self.ci
        return (
            f"Q_spec = {self.q_spec:.3f} vs median Q_random = {self.null_median:.3f} ({self.graph} graph, "
            f"{self.q_null.size} random groups of {self.specialists.size}); difference {self.difference:+.3f}, "
            f"{self.ci_level:.0%} CI [{lo:+.3f}, {hi:+.3f}] vs δ = {self.delta}; p(difference) = {self.p_difference:.3f}"
        )

    def record_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``ClaimRecord`` (statistics, ci, p_values, null, sample sizes, seeds, …)."""
        finite_null = self.q_null[np.isfinite(self.q_null)]
        return {
            "statistics": {
                "q_spec": self.q_spec,
                "q_spec_seed_sd": self.q_spec_seed_sd,
                "q_null_median": self.null_median,
                "q_null_seed_sd_mean": float(np.nanmean(self.q_null_seed_sd)) if finite_null.size else float("nan"),
                "q_difference": self.difference,
            },
            "ci": {"q_difference": [self.ci[0], self.ci[1]]},
            "p_values": {"difference_two_sided": self.p_difference, "spec_greater": self.p_greater},
            "null": {"q_random": summarize_null(self.q_null)},
            "sample_sizes": {
                "positions": self.n_positions,
                "sequences": self.n_sequences,
                "layer_neurons": self.n_neurons,
                "group_size": int(self.specialists.size),
                "null_groups": int(self.q_null.size),
                "null_groups_defined": int(finite_null.size),
                "bootstrap": int(self.q_spec_boot.size),
                "bootstrap_defined": int(np.isfinite(self.q_spec_boot).sum()),
                "louvain_seeds": len(self.louvain_seeds),
                "constant_neurons_excluded": int(self.excluded_constant.size),
            },
            "seeds": {"null_groups": self.null_seed, "bootstrap": self.bootstrap_seed, "louvain_first": self.louvain_seeds[0]},
            "thresholds": {
                "modularity_delta": self.delta,
                "alpha": self.alpha,
                "ci_level": self.ci_level,
                "graph": self.graph,
                "coactivation_threshold": self.threshold,
                "matched_on_mean_activation": self.matched_on_mean,
            },
            "details": {
                "louvain": "python-louvain best_partition, resolution 1.0; Q by networkx modularity, mean over seeds",
                "louvain_seeds": self.louvain_seeds,
                "failed_parts": self.failed_parts,
                "timings_s": self.timings_s,
                "excluded_constant_neurons": self.excluded_constant.tolist(),
                "warnings": self.warnings,
                "specialists": self.specialists.tolist(),
            },
            "series": {
                "null_Q": self.q_null.tolist(),
                "observed_Q": self.q_spec,
                "q_spec_per_seed": self.q_spec_per_seed.tolist(),
                "spec_communities": self.spec_labels[int(np.nanargmax(self.q_spec_per_seed))].tolist()
                if np.isfinite(self.q_spec_per_seed).any()
                else [],
            },
        }


def modularity_test(
    x: np.ndarray,
    seq_ids: np.ndarray,
    specialists: Sequence[int] | np.ndarray,
    *,
    n_null: int = 1000,
    louvain_seeds: int = 10,
    graph: GraphKind = "absolute",
    threshold: float = 0.3,
    delta: float = 0.05,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    rng_seed: int = 0,
    match_mean_activation: bool = False,
) -> ModularityResult:
    """C5: is the specialists' co-activation modularity equivalent to random groups'?

    Args:
        x: activations ``[n_positions, d_mlp]`` at rare-target positions.
        seq_ids: evaluation sequence of every row ``[n_positions]`` (bootstrap unit).
        specialists: neuron ids of the group under test (≥ 3 non-constant neurons).
        n_null: random groups of the specialists' size (specialists and constant neurons excluded).
        louvain_seeds: Louvain runs per graph (seeds ``0 … louvain_seeds-1``), Q averaged.
        graph: ``"absolute"``, ``"thresholded"`` or ``"signed"`` (module docstring).
        threshold: |r| cut of the thresholded graph.
        delta: equivalence margin δ on Q_spec − median(Q_null).
        n_bootstrap: resamples of sequences for the CI of Q_spec.
        alpha: level of each one-sided test; the TOST uses the (1 − 2α) CI.
        rng_seed: null groups use ``rng_seed``, the bootstrap ``rng_seed + 1``.
        match_mean_activation: draw null groups matched on mean activation (10 quantile bins).

    Raises:
        ValueError: on invalid input (see ``prepare_activations``), fewer than 2 sequences, an
            unknown graph kind, or a specialist graph without edges.
    """
    _check_kind(graph)
    if n_null < 1 or louvain_seeds < 1 or n_bootstrap < 1:
        raise ValueError(f"n_null, louvain_seeds and n_bootstrap must be ≥ 1, got {n_null}, {louvain_seeds}, {n_bootstrap}")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5) for a (1 − 2α) interval, got {alpha}")
    if delta <= 0:
        raise ValueError(f"the equivalence margin delta must be > 0, got {delta}")
    start = time.perf_counter()
    acts = prepare_activations(x, specialists)
    seq_ids = np.asarray(seq_ids)
    n_sequences = int(np.unique(seq_ids).size)
    if n_sequences < 2:
        raise ValueError(f"the bootstrap over sequences needs at least 2 sequences, got {n_sequences}")
    seeds = list(range(louvain_seeds))
    spec = acts.specialists
    spec_result = louvain_modularity(group_correlations(acts, spec)[0], kind=graph, threshold=threshold, seeds=seeds)
    if not np.isfinite(spec_result.q):
        raise ValueError(
            f"the specialists' {graph} graph has no edges (no |r| ≥ {threshold}); its modularity is undefined — "
            "use the absolute graph or a lower threshold"
        )
    t_null = time.perf_counter()
    null_groups = random_groups(
        acts.n_neurons, spec.size, acts.excluded, n_null, rng_seed,
        match_on=acts.mean if match_mean_activation else None,
        match_to=spec if match_mean_activation else None,
    )
    null_corrs = group_correlations(acts, null_groups)
    q_null, q_null_sd = louvain_modularity_batch(null_corrs, kind=graph, threshold=threshold, seeds=seeds)
    if not np.isfinite(q_null).any():
        raise ValueError(f"no random group's {graph} graph has an edge; modularity is undefined for the null")
    t_boot = time.perf_counter()
    boot_corr = bootstrap_group_correlations(acts, spec, seq_ids, n_bootstrap, rng_seed + 1)
    q_boot, _ = louvain_modularity_batch(boot_corr, kind=graph, threshold=threshold, seeds=seeds)
    t_end = time.perf_counter()
    null_median = float(np.nanmedian(q_null))
    ci_level = 1.0 - 2.0 * alpha
    return ModularityResult(
        graph=graph,
        threshold=threshold,
        delta=delta,
        alpha=alpha,
        q_spec=spec_result.q,
        q_spec_seed_sd=spec_result.q_sd,
        q_spec_per_seed=spec_result.q_per_seed,
        spec_labels=spec_result.labels,
        q_null=q_null,
        q_null_seed_sd=q_null_sd,
        null_median=null_median,
        difference=spec_result.q - null_median,
        ci=bootstrap_normal_ci(spec_result.q - null_median, q_boot, ci_level),
        ci_level=ci_level,
        q_spec_boot=q_boot,
        p_difference=empirical_p(spec_result.q, q_null, "two-sided"),
        p_greater=empirical_p(spec_result.q, q_null, "greater"),
        specialists=spec,
        null_groups=null_groups,
        excluded_constant=acts.constant,
        n_positions=acts.n_positions,
        n_sequences=n_sequences,
        n_neurons=acts.n_neurons,
        louvain_seeds=seeds,
        null_seed=rng_seed,
        bootstrap_seed=rng_seed + 1,
        matched_on_mean=match_mean_activation,
        timings_s={
            "specialists": t_null - start,
            "null": t_boot - t_null,
            "bootstrap": t_end - t_boot,
            "total": t_end - start,
        },
        warnings=list(acts.warnings),
    )


def bootstrap_normal_ci(estimate: float, draws: np.ndarray, level: float) -> tuple[float, float]:
    """Normal bootstrap interval ``estimate ± z·SD(draws)``, z the ``(1 + level)/2`` normal quantile.

    Used for Q because percentile-type intervals mis-centre: a resample repeats whole sequences,
    which adds noise to the correlations, and Louvain's Q (a maximum over partitions) moves with
    noise — down when real modules get blurred, towards the typical noise-fitting value when there
    are none. The SD of the resampled Q still tracks the sampling SD, so the interval is centred on
    the full-data estimate and only its width comes from the bootstrap. Non-finite draws are
    dropped; (NaN, NaN) when fewer than 2 remain.
    """
    draws = np.asarray(draws, dtype=float)
    draws = draws[np.isfinite(draws)]
    if draws.size < 2 or not np.isfinite(estimate):
        return (float("nan"), float("nan"))
    half = norm.ppf(0.5 + level / 2.0) * draws.std(ddof=1)
    return (float(estimate - half), float(estimate + half))


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
