"""Head-versus-layer statistics of attention ablation (claim C7); numpy only.

Input: the arrays of ``harness.heads.head_ablation`` (per-sequence sums of target CE and
probability at rare / common positions, clean and ablated). Effects are pooled over
positions, so the % increase of mean CE is ``100 · (Σ ablated − Σ clean) / Σ clean`` over the
sequences in hand (the position counts cancel), and the % drop of target probability is
``100 · (Σ p_clean − Σ p_ablated) / Σ p_clean``.

Uncertainty: a paired bootstrap over sequences (the same resampled sequences for clean,
every head and every layer). In each resample the effects are recomputed, the max over heads
is taken inside the resample, and so are the correlations and Gini coefficients. Intervals
are percentile intervals at level ``1 − 2·alpha``, so "lower bound > 0" is a one-sided test
at ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from harness.stats import bootstrap_indices, pearson_rows, percentile_ci

_GROUPS = ("rare", "common")
_METRICS = ("ce", "prob")


@dataclass(frozen=True)
class RoutingResult:
    """Per-head and whole-layer ablation effects with paired-bootstrap intervals.

    Shapes: ``n_la`` analysed layers, ``n_heads`` heads per layer. ``*_pct`` effects are the %
    increase of mean target CE; ``*_prob_drop_pct`` the % drop of mean target probability.
    CIs are ``(low, high)`` at ``ci_level``; arrays of CIs end in a dimension of 2.
    """

    layers: np.ndarray                     # [n_la] model layer indices
    head_rare_pct: np.ndarray              # [n_la, n_heads]
    head_common_pct: np.ndarray            # [n_la, n_heads]
    layer_rare_pct: np.ndarray             # [n_la]
    layer_common_pct: np.ndarray           # [n_la]
    layer_rare_ci: np.ndarray              # [n_la, 2]
    head_rare_prob_drop_pct: np.ndarray    # [n_la, n_heads]
    head_common_prob_drop_pct: np.ndarray  # [n_la, n_heads]
    layer_rare_prob_drop_pct: np.ndarray   # [n_la]
    layer_common_prob_drop_pct: np.ndarray  # [n_la]
    max_head_pct: float                    # largest single-head rare effect over all analysed heads
    max_head: tuple[int, int]              # its (model layer, head)
    max_head_ci: tuple[float, float]       # max over heads taken inside each resample
    max_head_prob_drop_pct: float          # largest single-head rare probability drop
    layer_max_head_pct: np.ndarray         # [n_la] largest single-head rare effect of each layer
    gap_pct: np.ndarray                    # [n_la] layer_rare_pct − layer_max_head_pct
    gap_ci: np.ndarray                     # [n_la, 2] paired bootstrap, max inside each resample
    pearson: float                         # across all analysed heads, rare vs common effects
    pearson_ci: tuple[float, float]
    spearman: float
    spearman_ci: tuple[float, float]
    gini_rare: float                       # Gini of |per-head rare effects| over all analysed heads
    gini_common: float
    gini_diff_ci: tuple[float, float]      # CI of gini_rare − gini_common
    n_seq: int
    n_rare: int                            # rare-target positions
    n_common: int
    n_bootstrap: int
    seed: int
    ci_level: float


def routing_test(arrays: dict[str, np.ndarray], *, n_bootstrap: int, seed: int, alpha: float) -> RoutingResult:
    """Head-vs-layer effects, their gap, rare/common head-effect correlation and Gini.

    ``arrays`` holds the keys and shapes documented in ``harness.heads.head_ablation``.
    """
    n_seq, n_layers, n_heads = _check_arrays(arrays)
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha}")
    level = 1.0 - 2.0 * alpha
    # weights[b, s]: how often sequence s is drawn in resample b; row 0 is the data itself
    weights = np.zeros((n_bootstrap + 1, n_seq))
    weights[0] = 1.0
    idx = bootstrap_indices(n_seq, n_bootstrap, seed)
    np.add.at(weights, (np.arange(1, n_bootstrap + 1)[:, None], idx), 1.0)

    eff = {(g, m): _effects(arrays, g, m, weights) for g in _GROUPS for m in _METRICS}
    head_r, layer_r = eff[("rare", "ce")]            # [B+1, n_la, n_heads], [B+1, n_la]
    head_c, layer_c = eff[("common", "ce")]
    layer_max = head_r.max(axis=2)                    # [B+1, n_la]
    gap = layer_r - layer_max
    overall_max = layer_max.max(axis=1)               # [B+1]
    flat_r = head_r.reshape(n_bootstrap + 1, -1)
    flat_c = head_c.reshape(n_bootstrap + 1, -1)
    pearson = pearson_rows(flat_r, flat_c)
    spearman = pearson_rows(_ranks_rows(flat_r), _ranks_rows(flat_c))
    gini_r, gini_c = _gini_rows(np.abs(flat_r)), _gini_rows(np.abs(flat_c))
    best_layer, best_head = np.unravel_index(int(np.argmax(head_r[0])), head_r[0].shape)

    def ci(draws: np.ndarray) -> tuple[float, float]:
        return percentile_ci(draws, level)

    def ci_cols(draws: np.ndarray) -> np.ndarray:
        return np.array([ci(draws[:, i]) for i in range(draws.shape[1])])

    return RoutingResult(
        layers=np.asarray(arrays["layers"], dtype=np.int64),
        head_rare_pct=head_r[0], head_common_pct=head_c[0],
        layer_rare_pct=layer_r[0], layer_common_pct=layer_c[0],
        layer_rare_ci=ci_cols(layer_r[1:]),
        head_rare_prob_drop_pct=eff[("rare", "prob")][0][0],
        head_common_prob_drop_pct=eff[("common", "prob")][0][0],
        layer_rare_prob_drop_pct=eff[("rare", "prob")][1][0],
        layer_common_prob_drop_pct=eff[("common", "prob")][1][0],
        max_head_pct=float(overall_max[0]),
        max_head=(int(arrays["layers"][best_layer]), int(best_head)),
        max_head_ci=ci(overall_max[1:]),
        max_head_prob_drop_pct=float(eff[("rare", "prob")][0][0].max()),
        layer_max_head_pct=layer_max[0], gap_pct=gap[0], gap_ci=ci_cols(gap[1:]),
        pearson=float(pearson[0]), pearson_ci=ci(pearson[1:]),
        spearman=float(spearman[0]), spearman_ci=ci(spearman[1:]),
        gini_rare=float(gini_r[0]), gini_common=float(gini_c[0]), gini_diff_ci=ci((gini_r - gini_c)[1:]),
        n_seq=n_seq, n_rare=int(arrays["rare_count"].sum()), n_common=int(arrays["common_count"].sum()),
        n_bootstrap=n_bootstrap, seed=seed, ci_level=level,
    )


def _effects(arrays: dict[str, np.ndarray], group: str, metric: str, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """% effects per resample: heads ``[B+1, n_la, n_heads]`` and layers ``[B+1, n_la]``.

    CE: % increase of the pooled mean; probability: % drop of the pooled mean.
    """
    clean = weights @ arrays[f"clean_{group}_{metric}"]                         # [B+1]
    heads = np.moveaxis(arrays[f"head_{group}_{metric}"] @ weights.T, -1, 0)    # [B+1, n_la, n_heads]
    layers = arrays[f"layer_{group}_{metric}"] @ weights.T                       # [n_la, B+1]
    sign = 1.0 if metric == "ce" else -1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        head_pct = sign * 100.0 * (heads - clean[:, None, None]) / clean[:, None, None]
        layer_pct = sign * 100.0 * (layers.T - clean[:, None]) / clean[:, None]
    return head_pct, layer_pct


def _ranks_rows(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank) along the last axis of ``[B, n]``."""
    return rankdata(x, axis=1)


def _gini_rows(x: np.ndarray) -> np.ndarray:
    """Gini coefficient of each row of non-negative ``[B, n]`` (0 = equal, (n−1)/n = one unit holds all)."""
    n = x.shape[1]
    s = np.sort(x, axis=1)
    ranks = np.arange(1, n + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * (s * ranks).sum(axis=1) / (n * s.sum(axis=1)) - (n + 1.0) / n


def _check_arrays(arrays: dict[str, np.ndarray]) -> tuple[int, int, int]:
    """Validate keys and shapes; return ``(n_seq, n_layers_analysed, n_heads)``."""
    required = ["layers"] + [f"{g}_count" for g in _GROUPS] + [
        f"{v}_{g}_{m}" for v in ("clean", "head", "layer") for g in _GROUPS for m in _METRICS
    ]
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ValueError(f"routing_test: missing array(s) {missing}; expected the output of heads.head_ablation")
    head = np.asarray(arrays["head_rare_ce"])
    if head.ndim != 3:
        raise ValueError(f"head_rare_ce must be [n_layers_analysed, n_heads, n_seq], got shape {head.shape}")
    n_layers, n_heads, n_seq = head.shape
    shapes = {"layers": (n_layers,), "rare_count": (n_seq,), "common_count": (n_seq,)}
    for g in _GROUPS:
        for m in _METRICS:
            shapes |= {f"clean_{g}_{m}": (n_seq,), f"head_{g}_{m}": (n_layers, n_heads, n_seq),
                       f"layer_{g}_{m}": (n_layers, n_seq)}
    wrong = [k for k, shape in shapes.items() if np.shape(arrays[k]) != shape]
    if wrong:
        got = {k: np.shape(arrays[k]) for k in wrong}
        raise ValueError(f"routing_test: inconsistent shapes {got}; expected {({k: shapes[k] for k in wrong})}")
    if n_seq < 2:
        raise ValueError(f"routing_test needs at least 2 sequences to bootstrap, got {n_seq}")
    if n_layers * n_heads < 3:
        raise ValueError(f"correlation across heads needs at least 3 heads, got {n_layers * n_heads}")
    for g in _GROUPS:
        if np.sum(arrays[f"{g}_count"]) == 0:
            raise ValueError(f"no {g}-target positions: every {g}_count is 0")
    not_finite = [k for k in shapes if not np.all(np.isfinite(arrays[k]))]
    if not_finite:
        raise ValueError(f"routing_test: non-finite values in {not_finite}")
    return n_seq, n_layers, n_heads
