"""Head-versus-layer effects of attention ablation (claim C7); numpy only.

Input: the arrays of ``harness.measure.heads.head_ablation`` — per evaluation sequence, sums
over rare- (or common-) target positions of the clean and ablated target cross-entropy
(``*_ce``, nats) and of the specialists' activation: clean Σ|a| (``clean_*_act``) and, when a
head or a whole layer is ablated, Σ|Δa| (``*_dact``). Two effects, in %:

- ``activation``: 100 · Σ|Δa| / Σ|a| over the specialists and positions — how much the
  specialists' input moves (the authors' quantity);
- ``loss``: 100 · (Σ ablated CE − Σ clean CE) / Σ clean CE — the % increase of mean target loss.

Uncertainty: a paired bootstrap over sequences (the same resampled sequences for clean, every
head and every layer); maxima over heads and ratios are taken inside each resample.
Statistics per effect: the largest single-head effect, the ratio of the largest whole-layer
effect to the largest single-head effect, and Pearson's r across heads between rare- and
common-target effects (heads that matter for rare tokens alone would lower it).

Spread over sequences: a percentile bootstrap bounds a head's effect only when the effect is
spread over the sequences; a head whose effect comes from a few rare sequences (per-sequence
effects lognormal with SD 3: the median sequence moves 1/90 of the mean) shows a small sample
effect with a narrow interval in most samples, because the sequences that carry its mean are
missing from them. ``spread`` ``[n_la, n_heads]`` measures it: the Kish effective number of
sequences of the head's per-sequence change, (Σ d)² / Σ d² over the observed sequences, over
the same of the clean quantity (Σ|a| for ``activation``, CE for ``loss``), so that sequences
of unequal length do not count as concentration. ≈ 0.6 for heads with per-sequence noise of
SD 0.5, < 0.25 for most samples of an SD-3 head.

Tail-aware head effects (``activation`` only): a head whose per-sequence effect has a Pareto tail of index
1.3 (infinite variance) spreads over every sequence (spread ≈ 0.5) and still shows a sample mean of 6–8% for
a mean of 12% (C7 v4: supported 31% of the time at a 10% margin), because the bootstrap of a mean does not carry
a tail heavier than the sample shows. ``heads_tail`` ``[n_la, n_heads]`` is Peng's (2001) semi-parametric
estimate of each head's effect: the n sequences are ordered by their per-sequence effect r = Σ|Δa| / Σ|a|; the
top k = ⌈n^``tail_exponent``⌉ of them (≥ 2; 16 of 64 at the default 2/3, 41 of 256) are taken as a Pareto tail
above the next one's effect u, whose Hill
estimate γ̂ = S / k, S = Σ ln(r_top / u), gives the tail's mean u / (1 − γ̂) (γ = 1/index; unbounded, inf, when
γ̂ ≥ 1) in place of the observed top effects (their clean Σ|a| kept). ``tail_index`` is 1/γ̂ on the observed
sequences.

Its upper bound (``heads_tail_hi``, per head) does not come from resampling γ̂: a percentile bootstrap of Hill's
estimate covers γ too rarely (γ̂ is a Gamma variable, right-skewed: at k = 21 the upper end of its resamples
lies below γ in ≈ 10% of samples), and C7 v5, which resampled it with the index floored at 1.2, was supported
29% of the time on a head of index 1.1 and 8% on heads of index 1.3. Above the threshold of a Pareto tail of
any index, S is exactly Gamma(k, γ) (the log-excesses are exponential with mean γ), so γ = S / G with G ~
Gamma(k, 1) is a pivot: each resample b uses its own body and threshold u_b (the paired bootstrap) and
γ_b = S₀ / G_b with S₀ the observed sequences' Hill sum and G_b an independent Gamma(k₀, 1) draw per head —
the 1 − α quantile of γ_b is the exact upper confidence limit S₀ / G_α(k₀). A head's bound is the upper end of
its own resamples' interval (inf when more than α of them have γ_b ≥ 1), and "every head small" asks each
head's bound below the margin — an intersection–union test, valid at α without a correction for the number
of heads. The assumption is what the estimate models: the top k sequences follow a Pareto tail (any index
> 1). A heavy tail that begins higher up, among sequences of the body, is mixed with the body and read as
lighter. k grows more slowly than n (k/n → 0, the condition under which Hill's estimator is consistent for any
regularly varying tail), so such a tail is seen once n is large enough — asymptotically: at the sizes measured it
is not (below); with a fixed share (C7 v5: the top
third) it never is — a head of mean 10.5% whose heaviest 15% of sequences are a Pareto tail of index 1.2
interleaved with a lognormal body has a top-third Peng estimate of 8.6% however many sequences there are. But
no rule sees every tail at a given n: no test bounds a mean without an assumption on its tail (Bahadur &
Savage 1956), and that head is supported 20.5% of the time at 64 test sequences (200 draws), 33% at 256 (60) and 49.5% at 512 (200; the
interval of its mean narrows faster than the top k stops mixing the tail with the body). C7 states this assumption
(``pareto_tail``: above its 1 − 2k/n quantile the effect is a Pareto tail, or one whose local index does not fall
further out) and its calibration measures such heads apart, as breaking it. The factor 2 is what the pivot needs: it
is exact when the sample's threshold u, the (k+1)-th largest effect, lies inside the tail; a Pareto tail that begins
exactly at the 1 − k/n quantile puts u in the body half the time, the top k then hold body sequences with log-excesses
near 0, and a head at the margin with such a tail over a lognormal body is supported 10.5% of 200 times at 512 test
sequences (the review of the stated assumptions: 9.5–12.5% at 512–1,024, not falling with n), the same tail over the
top 2k/n 7.0% [4.2, 11.4] (within α + 2 SE, as a pure Pareto head of index 1.7 there: 7.0% [5.2, 9.3] of 600). A
second review found no head inside the assumption above the bound (heads at the margin spliced over the top 2k/n or
pure Pareto, index 1.2–3, body SD 0.3–1, 64–1,024 test sequences, 200–400 draws each: 0.5–6.5%; the heaviest tails,
index 1.2–1.3, come closest to α, 4.5–6.5% at 128 — the pivot is exact, the bootstrap of the body beside it is not). Light-tailed effects are bounded conservatively (a lognormal
or exponential top third looks like a Pareto tail of γ ≈ 0.3–0.6), so heads with exponential per-sequence
noise need ≈ 4× the sequences of lognormal SD-0.5 noise for the same power.

The estimate keeps each tail sequence's own clean Σ|a|, so it also assumes that, within the tail, how much a
sequence carries (Σ|a|) does not grow with how much the head moves it (r). An independent review broke it there:
with Σ|a| ∝ r^0.5 and r exactly Pareto of index 2 the tail's a-weighted mean is ⅔ of the estimate's, and a head
of mean 10.5% was supported 22–28% of the time at 64–256 test sequences. Fitting the tail of the a-weighted
distribution instead (Hill's sum weighted by Σ|a|) halved that (10–14%) but cost power at the papers' effect
(0.88 → 0.76–0.84), so it is not done: the assumption is stated in the rule (README, C7 v6).

Sequences without rare positions are left out of the ordering. With at most k sequences with rare positions
no tail can be fitted, and a head that moves anything is unbounded (inf; C7 v6's first cut kept the plain
effect, and a review's nulls on 2–6 such sequences were supported 15–51% of the time), as is a resample whose
own tail cannot be fitted while the observed one could. A head with no tail to fit because at most k
sequences move the specialists at all (u ≤ 0) keeps its plain effect — a dead head is 0, not unbounded; a head
whose effect sits in a few sequences is what the spread check judges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from harness.analysis.stats import pearson_rows, percentile_ci, resample_counts, unbounded_ci

GROUPS = ("rare", "common")
METRICS = ("activation", "loss")


@dataclass(frozen=True)
class RoutingEffects:
    """One effect (``metric``) with paired-bootstrap intervals at ``level``.

    ``heads`` ``[n_la, n_heads]`` and ``layers`` ``[n_la]`` rare-target effects (%), with CIs
    ``heads_ci`` ``[n_la, n_heads, 2]`` and ``layers_ci`` ``[n_la, 2]``; ``heads_common`` the
    common-target head effects; ``max_head`` / ``ratio`` / ``corr`` with their CIs; ``spread``
    ``[n_la, n_heads]`` each head's rare-target spread over the sequences; for ``activation``, the
    tail-aware ``heads_tail``, its upper bounds ``heads_tail_hi`` (each head's own 1 − 2α interval's upper end,
    inf where unbounded) and ``tail_index`` ``[n_la, n_heads]``, the largest tail-aware head effect
    ``max_head_tail``, ``heaviest_tail_at`` (layer, head) of the least fitted index, None where no tail was
    fitted, and ``tail_bound_at`` (layer, head) of the largest bound (module docstring; None and NaN for ``loss``
    or without a tail exponent).
    """

    metric: str
    heads: np.ndarray
    heads_ci: np.ndarray
    heads_common: np.ndarray
    layers: np.ndarray
    layers_ci: np.ndarray
    max_head: float
    max_head_ci: tuple[float, float]
    max_head_at: tuple[int, int]
    ratio: float
    ratio_ci: tuple[float, float]
    corr: float
    corr_ci: tuple[float, float]
    level: float
    spread: np.ndarray
    least_spread_at: tuple[int, int]
    heads_tail: np.ndarray | None = None
    tail_index: np.ndarray | None = None
    heads_tail_hi: np.ndarray | None = None
    max_head_tail: float = float("nan")
    heaviest_tail_at: tuple[int, int] | None = None
    tail_bound_at: tuple[int, int] | None = None

    @property
    def least_spread(self) -> float:
        """The smallest head ``spread`` (at ``least_spread_at``, (layer, head))."""
        return float(self.spread.min())

    @property
    def tail_bound(self) -> float:
        """The largest head's tail-aware upper bound (%; inf where unbounded, NaN where none computed): every head
        is below it at level α (intersection–union, module docstring)."""
        return float("nan") if self.heads_tail_hi is None else float(self.heads_tail_hi.max())

    @property
    def least_tail_index(self) -> float:
        """The smallest fitted Hill index (at ``heaviest_tail_at``); inf where no tail was fitted or none computed."""
        if self.tail_index is None or not np.isfinite(self.tail_index).any():
            return float("inf")
        return float(np.nanmin(self.tail_index))


def routing_effects(arrays: dict[str, np.ndarray], sequences: np.ndarray, metric: str, n_bootstrap: int,
                    seed: int, level: float, tail_exponent: float | None = None) -> RoutingEffects:
    """Effects of ``metric`` over the evaluation ``sequences`` (ids), with a paired bootstrap over them. With
    ``tail_exponent`` (``activation`` only) also the tail-aware head effects: the top ⌈n^tail_exponent⌉ sequences
    taken as the Pareto tail, bounded through the Gamma pivot of Hill's sum (module docstring)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    n_seq, n_layers, n_heads = check_arrays(arrays)
    sequences = np.asarray(sequences, dtype=np.int64)
    if sequences.size < 2:
        raise ValueError(f"routing effects need at least 2 sequences, got {sequences.size}")
    rng = np.random.default_rng(seed)
    draws = sequences[rng.integers(0, sequences.size, size=(n_bootstrap, sequences.size))]
    index = np.vstack([sequences[None], draws])                          # row 0: the observed sequences
    weights = resample_counts(index, n_seq)
    heads, layers = _effects(arrays, "rare", metric, weights)            # [B+1, n_la, H], [B+1, n_la]
    heads_c, _ = _effects(arrays, "common", metric, weights)
    flat = heads.reshape(n_bootstrap + 1, -1)
    max_head = flat.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = layers.max(axis=1) / max_head
    corr = pearson_rows(flat, heads_c.reshape(n_bootstrap + 1, -1))
    spread = _spread(arrays, metric, sequences)
    ci = lambda d: percentile_ci(d, level)  # noqa: E731
    tail: dict[str, object] = {}
    if metric == "activation" and tail_exponent is not None:
        tail_heads, alpha = tail_aware_heads(arrays["head_rare_dact"], arrays["clean_rare_act"], index, tail_exponent,
                                             rng)
        hi = np.array([[unbounded_ci(tail_heads[1:, i, h], level)[1] for h in range(n_heads)] for i in range(n_layers)])
        fitted = np.isfinite(alpha)
        tail = {"heads_tail": tail_heads[0], "heads_tail_hi": hi, "tail_index": alpha,
                "max_head_tail": float(tail_heads[0].max()), "tail_bound_at": _head_at(arrays["layers"], hi, np.argmax),
                "heaviest_tail_at": _head_at(arrays["layers"], np.where(fitted, alpha, np.inf), np.argmin)
                if fitted.any() else None}
    return RoutingEffects(
        metric=metric, heads=heads[0], heads_common=heads_c[0],
        heads_ci=np.stack([np.array([ci(heads[1:, i, h]) for h in range(n_heads)]) for i in range(n_layers)]),
        layers=layers[0], layers_ci=np.array([ci(layers[1:, i]) for i in range(n_layers)]),
        max_head=float(max_head[0]), max_head_ci=ci(max_head[1:]),
        max_head_at=_head_at(arrays["layers"], heads[0], np.argmax),
        ratio=float(ratio[0]), ratio_ci=ci(ratio[1:]), corr=float(corr[0]), corr_ci=ci(corr[1:]), level=level,
        spread=spread, least_spread_at=_head_at(arrays["layers"], spread, np.argmin), **tail,
    )


def _head_at(layers: np.ndarray, values: np.ndarray, pick: Callable[[np.ndarray], Any]) -> tuple[int, int]:
    """(model layer, head) of the entry of ``values`` ``[n_la, n_heads]`` that ``pick`` (``np.argmax`` or
    ``np.argmin``) chooses; ``layers`` ``[n_la]`` are the analysed layers' numbers."""
    at = np.unravel_index(int(pick(values)), values.shape)
    return int(layers[at[0]]), int(at[1])


def tail_aware_heads(change: np.ndarray, clean: np.ndarray, index: np.ndarray, exponent: float,
                     rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Peng's tail-aware effect (%) of each head in each resample, and each head's Hill index on row 0.

    ``change`` ``[n_la, n_heads, n_seq]`` per-sequence Σ|Δa|, ``clean`` ``[n_seq]`` Σ|a|, ``index``
    ``[B+1, n]`` the sequence ids of each resample (row 0 the observed ones); of the resample's n_valid sequences
    with rare positions (Σ|a| > 0; the others move nothing and are left out of the ordering) the top
    k = max(2, ⌈n_valid^``exponent``⌉) are taken as the tail. With at most k sequences with rare positions, or
    in a resample whose tail cannot be fitted while the observed one's could, a head that moves anything is
    unbounded (inf); where the observed threshold u ≤ 0 (at most k sequences move the specialists at all: a
    dead head, or one whose effect sits in a few sequences, which the spread check judges) the effect is the
    plain one. Row 0 uses the observed Hill estimate γ̂₀ = S₀ / k₀;
    resample b its own body and threshold with γ_b = S₀ / G_b, G_b ~ Gamma(k₀, 1) drawn from ``rng`` (required
    when B > 0) per head: the pivot of the module docstring. Returns ``[B+1, n_la, n_heads]`` (inf where γ ≥ 1)
    and ``[n_la, n_heads]`` (Hill's index 1/γ̂₀, NaN where no tail was fitted).
    """
    if not 0.0 < exponent < 1.0:
        raise ValueError(f"the tail's exponent must lie in (0, 1), got {exponent}")
    if index.shape[0] > 1 and rng is None:
        raise ValueError("resampled tail-aware effects need a generator for the pivot's Gamma draws")
    n = index.shape[1]
    d = np.moveaxis(change[..., index], 2, 0)                           # [B+1, n_la, H, n]
    a = np.broadcast_to(clean[index][:, None, None, :], d.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(a > 0, d / a, -np.inf)                             # no rare positions: below every effect
    order = np.argsort(r, axis=-1)
    r, d, a = (np.take_along_axis(x, order, axis=-1) for x in (r, d, a))
    n_valid = (clean[index] > 0).sum(-1)                                # [B+1]
    k = np.maximum(2, np.ceil(n_valid.astype(float) ** exponent - 1e-9)).astype(np.int64)
    top = (np.arange(n) >= (n - k)[:, None])[:, None, None, :]          # [B+1, 1, 1, n]
    u = np.take_along_axis(r, np.broadcast_to(np.maximum(n - k - 1, 0)[:, None, None, None], (*r.shape[:-1], 1)),
                           axis=-1)[..., 0]                             # [B+1, n_la, H]
    enough = (n_valid > k)[:, None, None]
    fitted = enough & (u > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        hill_sum = np.where(top[:1], np.log(np.where(top[:1], r[:1], 1.0) / np.where(fitted[:1], u[:1], 1.0)[..., None]),
                            0.0).sum(-1)[0]                             # S₀ [n_la, H]
        gamma = np.empty(u.shape)
        gamma[0] = hill_sum / k[0]
        if index.shape[0] > 1:
            gamma[1:] = hill_sum / rng.gamma(float(k[0]), size=gamma[1:].shape)
        factor = np.where(gamma < 1.0, 1.0 / (1.0 - gamma), np.inf)    # a Pareto tail's mean over its threshold
        tail = np.where(top, 0.0, d).sum(-1) + np.where(top, a, 0.0).sum(-1) * u * factor
        use = fitted & fitted[:1]                                       # the pivot needs the observed tail
        unbounded = (d.sum(-1) > 0) & ((use & ~np.isfinite(factor)) | ~enough | (fitted[:1] & ~fitted))
        effect = np.where(unbounded, np.inf, 100.0 * np.where(use, tail, d.sum(-1)) / a.sum(-1))
        alpha = np.where(fitted[0], k[0] / hill_sum, np.nan)
    return effect, alpha


def _spread(arrays: dict[str, np.ndarray], metric: str, sequences: np.ndarray) -> np.ndarray:
    """Each head's rare-target spread over ``sequences`` ``[n_la, n_heads]`` (module docstring)."""
    if metric == "loss":
        clean = arrays["clean_rare_ce"][sequences]
        change = np.abs(arrays["head_rare_ce"][..., sequences] - clean)
    else:
        clean, change = arrays["clean_rare_act"][sequences], arrays["head_rare_dact"][..., sequences]
    with np.errstate(divide="ignore", invalid="ignore"):
        heads = change.sum(-1) ** 2 / (change ** 2).sum(-1)
        return np.nan_to_num(heads / (clean.sum() ** 2 / (clean ** 2).sum()), nan=1.0)


def _effects(arrays: dict[str, np.ndarray], group: str, metric: str, weights: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """% effects per resample: heads ``[B+1, n_la, n_heads]`` and layers ``[B+1, n_la]``."""
    if metric == "loss":
        base = weights @ arrays[f"clean_{group}_ce"]
        heads = np.moveaxis(arrays[f"head_{group}_ce"] @ weights.T, -1, 0) - base[:, None, None]
        layers = (arrays[f"layer_{group}_ce"] @ weights.T).T - base[:, None]
    else:
        base = weights @ arrays[f"clean_{group}_act"]
        heads = np.moveaxis(arrays[f"head_{group}_dact"] @ weights.T, -1, 0)
        layers = (arrays[f"layer_{group}_dact"] @ weights.T).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * heads / base[:, None, None], 100.0 * layers / base[:, None]


def check_arrays(arrays: dict[str, np.ndarray]) -> tuple[int, int, int]:
    """Validate keys and shapes; return ``(n_seq, n_layers_analysed, n_heads)``."""
    required = ["layers"] + [f"{g}_count" for g in GROUPS] + [
        f"{v}_{g}_{m}" for g in GROUPS for v, m in (("clean", "ce"), ("head", "ce"), ("layer", "ce"),
                                                    ("clean", "act"), ("head", "dact"), ("layer", "dact"))
    ]
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ValueError(f"routing: missing array(s) {missing}; expected the output of heads.head_ablation")
    head = np.asarray(arrays["head_rare_ce"])
    if head.ndim != 3:
        raise ValueError(f"head_rare_ce must be [n_layers_analysed, n_heads, n_seq], got shape {head.shape}")
    n_layers, n_heads, n_seq = head.shape
    shapes = {"layers": (n_layers,), "rare_count": (n_seq,), "common_count": (n_seq,)}
    for g in GROUPS:
        shapes |= {f"clean_{g}_ce": (n_seq,), f"clean_{g}_act": (n_seq,),
                   f"head_{g}_ce": (n_layers, n_heads, n_seq), f"head_{g}_dact": (n_layers, n_heads, n_seq),
                   f"layer_{g}_ce": (n_layers, n_seq), f"layer_{g}_dact": (n_layers, n_seq)}
    wrong = {k: np.shape(arrays[k]) for k, shape in shapes.items() if np.shape(arrays[k]) != shape}
    if wrong:
        raise ValueError(f"routing: inconsistent shapes {wrong}; expected {({k: shapes[k] for k in wrong})}")
    if n_layers * n_heads < 3:
        raise ValueError(f"correlation across heads needs at least 3 heads, got {n_layers * n_heads}")
    not_finite = [k for k in shapes if not np.all(np.isfinite(arrays[k]))]
    if not_finite:
        raise ValueError(f"routing: non-finite values in {not_finite}")
    return n_seq, n_layers, n_heads
