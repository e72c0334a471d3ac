"""Random control groups of neurons: the draws every null distribution over groups is built from.

A control group is a set of distinct neuron ids from one layer, of the size of the group under
test, drawn uniformly from the layer's neurons minus an excluded set (the specialists, and
neurons an analysis cannot use). Optionally the draw is stratified so that each group matches
a target group's distribution of a per-neuron value (e.g. mean activation).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def random_groups(
    n_neurons: int,
    size: int,
    exclude: Sequence[int] | np.ndarray,
    n_groups: int,
    seed: int,
    match_on: np.ndarray | None = None,
    *,
    match_to: Sequence[int] | np.ndarray | None = None,
    n_bins: int = 10,
) -> np.ndarray:
    """Draw ``n_groups`` random neuron groups of ``size`` distinct ids, never from ``exclude``.

    Args:
        n_neurons: neurons in the layer; ids are ``0 … n_neurons-1``.
        size: neurons per group.
        exclude: ids no group may contain (e.g. the specialists).
        n_groups: number of groups.
        seed: seed of the draw (same seed, same groups).
        match_on: optional per-neuron value ``[n_neurons]`` (e.g. mean activation). When given,
            the candidates are split into ``n_bins`` quantile bins of this value and every group
            takes, from each bin, as many neurons as the target group ``match_to`` has there.
        match_to: ids of the target group whose ``match_on`` distribution groups reproduce;
            defaults to ``exclude`` (the usual case: match the specialists); needs
            ``len(match_to) == size``.
        n_bins: quantile bins of the matched draw.

    Returns:
        int64 array ``[n_groups, size]``; each row sorted ascending, ids distinct within a row
        (rows may share ids: groups are independent draws).

    Raises:
        ValueError: on ids out of range, too few candidates, or an inconsistent matching spec.
    """
    if n_neurons < 1 or size < 1 or n_groups < 1:
        raise ValueError(
            f"random_groups needs n_neurons, size and n_groups ≥ 1, got {n_neurons}, {size}, {n_groups}"
        )
    excluded = _ids(exclude, n_neurons, "exclude")
    candidates = np.setdiff1d(np.arange(n_neurons), excluded)
    if candidates.size < size:
        raise ValueError(
            f"cannot draw groups of {size} neurons: only {candidates.size} of {n_neurons} neurons "
            f"remain after excluding {excluded.size}"
        )
    rng = np.random.default_rng(seed)
    if match_on is None:
        if match_to is not None:
            raise ValueError("match_to was given without match_on: pass the per-neuron values to match")
        groups = np.stack([rng.choice(candidates, size=size, replace=False) for _ in range(n_groups)])
    else:
        groups = _matched_groups(candidates, size, n_groups, rng, match_on, match_to, excluded, n_neurons, n_bins)
    return np.sort(groups, axis=1).astype(np.int64)


def _ids(ids: Sequence[int] | np.ndarray, n_neurons: int, name: str) -> np.ndarray:
    arr = np.unique(np.asarray(ids, dtype=np.int64).ravel())
    if arr.size and (arr[0] < 0 or arr[-1] >= n_neurons):
        raise ValueError(f"{name} holds ids outside 0…{n_neurons - 1}: {arr[(arr < 0) | (arr >= n_neurons)][:5]}")
    return arr


def _matched_groups(
    candidates: np.ndarray,
    size: int,
    n_groups: int,
    rng: np.random.Generator,
    match_on: np.ndarray,
    match_to: Sequence[int] | np.ndarray | None,
    excluded: np.ndarray,
    n_neurons: int,
    n_bins: int,
) -> np.ndarray:
    values = np.asarray(match_on, dtype=float)
    if values.shape != (n_neurons,):
        raise ValueError(f"match_on must have one value per neuron, shape ({n_neurons},), got {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("match_on holds non-finite values")
    target = excluded if match_to is None else _ids(match_to, n_neurons, "match_to")
    if target.size != size:
        raise ValueError(f"matching needs a target group of the group size {size}, got {target.size} ids")
    if not 1 <= n_bins <= candidates.size:
        raise ValueError(f"n_bins must lie in 1…{candidates.size} (the candidates), got {n_bins}")
    inner_edges = np.quantile(values[candidates], np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    candidate_bin = np.searchsorted(inner_edges, values[candidates], side="right")
    need = np.bincount(np.searchsorted(inner_edges, values[target], side="right"), minlength=n_bins)
    pools = [candidates[candidate_bin == b] for b in range(n_bins)]
    short = [(b, int(need[b]), pools[b].size) for b in range(n_bins) if need[b] > pools[b].size]
    if short:
        raise ValueError(
            "matched draw impossible: (bin, neurons needed, candidates) = "
            f"{short}; use fewer bins or an unmatched draw"
        )
    used = [b for b in range(n_bins) if need[b] > 0]
    return np.stack(
        [np.concatenate([rng.choice(pools[b], size=need[b], replace=False) for b in used]) for _ in range(n_groups)]
    )
