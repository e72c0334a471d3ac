"""Head-versus-layer routing effects (C7) on constructed ablation arrays with planted % effects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr

from harness.analysis.routing import check_arrays, routing_effects, tail_aware_heads
from harness.analysis.stats import percentile_ci, unbounded_ci
from synthetic import assert_rate_at_least

LEVEL = 0.9
N_BOOT = 300
ACTIVATION_PER_LOSS = 2.0  # planted activation effects are twice the loss effects
TAIL_EXPONENT = 2 / 3   # C7's default
HEAD = np.array([[2.0, 5.0, 3.0, 1.0], [4.0, -1.0, 9.0, 0.5]])  # % loss increase per head, max at (1, 2)
LAYER = np.array([30.0, 45.0])


def ablation_arrays(head_pct, layer_pct, *, common_scale=1.0, noise=0.0, n_seq=40, seed=0):
    """Arrays in ``heads.head_ablation``'s layout with planted effects.

    ``head_pct`` ``[n_la, n_heads]`` and ``layer_pct`` ``[n_la]``: the % increase of rare-target loss;
    the specialists' activation moves by ``ACTIVATION_PER_LOSS`` times as many % of their clean Σ|a|;
    common-target effects are ``common_scale`` times the rare ones. Each sequence's ablated quantity is
    clean·(1 + effect·(1 + noise·ε)) for the loss and clean·effect·(1 + noise·ε) for Σ|Δa|, with ε
    standard normal per sequence, so the population effect is exactly the planted one.
    """
    rng = np.random.default_rng(seed)
    head_pct, layer_pct = np.asarray(head_pct, float), np.asarray(layer_pct, float)
    n_la, n_heads = head_pct.shape
    out = {"layers": np.arange(10 - n_la, 10)}
    for group, scale in (("rare", 1.0), ("common", common_scale)):
        count = rng.integers(5, 20, n_seq)
        out[f"{group}_count"] = count
        clean_ce, clean_act = count * rng.uniform(3.0, 6.0, n_seq), count * rng.uniform(1.0, 2.0, n_seq)
        out[f"clean_{group}_ce"], out[f"clean_{group}_act"] = clean_ce, clean_act
        for kind, pct in (("head", head_pct[..., None]), ("layer", layer_pct[:, None])):
            effect = scale * pct / 100 * (1 + noise * rng.standard_normal(pct.shape[:-1] + (n_seq,)))
            out[f"{kind}_{group}_ce"] = clean_ce * (1 + effect)
            out[f"{kind}_{group}_dact"] = clean_act * ACTIVATION_PER_LOSS * effect
    return out


def effects(arrays, metric="loss", seed=0, sequences=None, n_boot=N_BOOT):
    sequences = np.arange(len(arrays["clean_rare_ce"])) if sequences is None else sequences
    return routing_effects(arrays, sequences, metric, n_boot, seed, LEVEL, TAIL_EXPONENT)


@pytest.mark.parametrize("metric, factor", [("loss", 1.0), ("activation", ACTIVATION_PER_LOSS)])
def test_noise_free_effects_are_recovered_exactly(metric, factor):
    """Without noise every head and layer effect is the planted %, the largest head is L9H2 (layer
    index 1 of layers 8–9), the ratio is max layer / max head, rare and common heads correlate
    perfectly, and every bootstrap interval collapses to its point."""
    r = effects(ablation_arrays(HEAD, LAYER), metric)
    assert r.metric == metric and r.level == LEVEL
    np.testing.assert_allclose(r.heads, factor * HEAD, atol=1e-9)
    np.testing.assert_allclose(r.heads_common, factor * HEAD, atol=1e-9)
    np.testing.assert_allclose(r.layers, factor * LAYER, atol=1e-9)
    assert r.max_head == pytest.approx(factor * HEAD.max()) and r.max_head_at == (9, 2)
    assert r.ratio == pytest.approx(LAYER.max() / HEAD.max()) and r.corr == pytest.approx(1.0)
    np.testing.assert_allclose(r.heads_ci, np.stack([r.heads, r.heads], axis=-1), atol=1e-9)
    np.testing.assert_allclose(r.layers_ci, np.stack([r.layers, r.layers], axis=-1), atol=1e-9)
    np.testing.assert_allclose([r.max_head_ci, r.ratio_ci], [[r.max_head] * 2, [r.ratio] * 2], atol=1e-9)


def test_only_the_given_sequences_count():
    """Effects over a subset of sequences equal the effects of the arrays cut to that subset."""
    arrays = ablation_arrays(HEAD, LAYER, noise=0.3, seed=1)
    subset = np.arange(0, 40, 3)
    cut = {k: (v if k == "layers" else v[..., subset]) for k, v in arrays.items()}
    a, b = effects(arrays, sequences=subset), effects(cut)
    np.testing.assert_allclose(a.heads, b.heads)
    np.testing.assert_allclose(a.layers, b.layers)
    assert a.ratio == pytest.approx(b.ratio)


def test_spread_is_one_for_a_proportional_change_and_falls_when_few_sequences_carry_it():
    """A head whose per-sequence change is a fixed share of the clean quantity has spread 1 (as even as the
    clean quantity), for either metric; one whose whole change sits in one sequence has spread
    1 / (Kish effective sequences of the clean activation)."""
    arrays = ablation_arrays(HEAD, LAYER, noise=0.0, seed=2)
    for metric in ("loss", "activation"):
        np.testing.assert_allclose(effects(arrays, metric).spread, 1.0, rtol=1e-12)
    clean = arrays["clean_rare_act"]
    arrays["head_rare_dact"][1, 3] = 0.0
    arrays["head_rare_dact"][1, 3, 7] = 5.0
    r = effects(arrays, "activation")
    assert r.least_spread == pytest.approx((clean ** 2).sum() / clean.sum() ** 2, rel=1e-12)
    assert r.least_spread_at == (int(arrays["layers"][1]), 3)


def test_max_head_and_ratio_are_taken_inside_each_resample():
    """Equal true head effects plus noise: the interval of the largest head is the percentile interval
    of the per-resample maximum (not of a fixed argmax), rebuilt from the same resampled sequences."""
    arrays = ablation_arrays(np.full((2, 4), 5.0), [20.0, 25.0], noise=0.5, n_seq=12, seed=3)
    r = effects(arrays, seed=7)
    rng = np.random.default_rng(7)
    draws = rng.integers(0, 12, size=(N_BOOT, 12))
    max_heads, ratios = [], []
    for rows in draws:
        clean = arrays["clean_rare_ce"][rows].sum()
        head = 100 * (arrays["head_rare_ce"][:, :, rows].sum(axis=2) - clean) / clean
        layer = 100 * (arrays["layer_rare_ce"][:, rows].sum(axis=1) - clean) / clean
        max_heads.append(head.max())
        ratios.append(layer.max() / head.max())
    np.testing.assert_allclose(r.max_head_ci, percentile_ci(max_heads, LEVEL), rtol=1e-10)
    np.testing.assert_allclose(r.ratio_ci, percentile_ci(ratios, LEVEL), rtol=1e-10)


def test_max_head_and_ratio_intervals_cover_the_truth():
    """Noisy sequences (ε SD 1, 40 sequences): over 100 independent data sets the 90% intervals of the
    largest head (9%) and of the ratio (45 / 9 = 5) cover the truth at a rate compatible with ≥ 85%
    (percentile intervals of ratios run a little short at 40 sequences; spurious failure ≤ 1e-3)."""
    hits = {"max_head": 0, "ratio": 0}
    for seed in range(100):
        r = effects(ablation_arrays(HEAD, LAYER, noise=1.0, seed=100 + seed), seed=seed, n_boot=200)
        hits["max_head"] += r.max_head_ci[0] <= HEAD.max() <= r.max_head_ci[1]
        hits["ratio"] += r.ratio_ci[0] <= LAYER.max() / HEAD.max() <= r.ratio_ci[1]
    for name, count in hits.items():
        assert_rate_at_least(count, 100, 0.85, 1e-3, f"coverage of {name}")


def test_correlation_across_heads_matches_scipy_and_the_planted_relation():
    """r of rare vs common head effects equals scipy's Pearson; common = 0.5·rare gives 1, −rare −1."""
    rng = np.random.default_rng(4)
    head = rng.uniform(0, 8, size=(2, 6))
    r = effects(ablation_arrays(head, [40.0, 50.0], noise=0.2, seed=5))
    assert r.corr == pytest.approx(pearsonr(r.heads.ravel(), r.heads_common.ravel())[0])
    assert r.corr_ci[0] <= r.corr_ci[1]
    assert effects(ablation_arrays(head, [40.0, 50.0], common_scale=0.5)).corr == pytest.approx(1.0)
    assert effects(ablation_arrays(head, [40.0, 50.0], common_scale=-1.0)).corr == pytest.approx(-1.0)


def test_same_seed_same_intervals_other_seed_other_draws():
    """Seeding: equal bootstrap seeds give equal intervals, another seed other intervals."""
    arrays = ablation_arrays(HEAD, LAYER, noise=0.3)
    a, b, c = effects(arrays, seed=1), effects(arrays, seed=1), effects(arrays, seed=2)
    np.testing.assert_array_equal(a.heads_ci, b.heads_ci)
    assert a.ratio_ci == b.ratio_ci and a.corr_ci == b.corr_ci
    assert not np.array_equal(a.heads_ci, c.heads_ci)


def test_bad_input_raises_clear_errors():
    """Missing key, inconsistent shapes, non-finite values, fewer than 3 heads or 2 sequences, an
    unknown metric: ValueError naming the problem."""
    good = ablation_arrays(np.full((1, 4), 3.0), [40.0])
    assert check_arrays(good) == (40, 1, 4)
    with pytest.raises(ValueError, match=r"missing array\(s\) \['layer_rare_dact'\]"):
        effects({k: v for k, v in good.items() if k != "layer_rare_dact"})
    with pytest.raises(ValueError, match="inconsistent shapes.*clean_common_ce"):
        effects(good | {"clean_common_ce": good["clean_common_ce"][:-1]})
    with pytest.raises(ValueError, match=r"head_rare_ce must be \[n_layers_analysed, n_heads, n_seq\]"):
        effects(good | {"head_rare_ce": good["head_rare_ce"][0]})
    with pytest.raises(ValueError, match="non-finite values in \\['layer_common_ce'\\]"):
        effects(good | {"layer_common_ce": np.full_like(good["layer_common_ce"], np.nan)})
    with pytest.raises(ValueError, match="at least 3 heads"):
        effects(ablation_arrays(np.full((1, 2), 3.0), [40.0]))
    with pytest.raises(ValueError, match="at least 2 sequences"):
        effects(good, sequences=np.array([3]))
    with pytest.raises(ValueError, match="metric"):
        effects(good, metric="probability")


def test_tail_aware_effect_is_the_plain_effect_when_every_sequence_moves_alike():
    """A head whose per-sequence change is a fixed share of the clean activation has no tail (Hill index
    inf): its tail-aware effect is its plain effect, in every resample."""
    head = np.abs(HEAD)
    r = effects(ablation_arrays(head, LAYER, noise=0.0, seed=6), "activation")
    np.testing.assert_allclose(r.heads_tail, r.heads, rtol=1e-12)
    assert (r.tail_index > 1e12).all() and r.max_head_tail == pytest.approx(r.max_head)   # inf up to rounding
    np.testing.assert_allclose(r.heads_tail_hi, r.heads, rtol=1e-12)
    assert r.tail_bound == pytest.approx(r.max_head) and r.tail_bound_at == r.max_head_at
    assert effects(ablation_arrays(head, LAYER, seed=6), "loss").heads_tail is None


def test_tail_aware_effect_by_hand():
    """Eight sequences, the top ⌈8^(1/3)⌉ = 2 as the tail: the two largest per-sequence effects r = Σ|Δa| / Σ|a|
    are replaced by u·α̂/(α̂ − 1) with u the third largest and α̂ = 2 / Σ ln(r_top / u), their Σ|a| kept."""
    clean = np.array([1.0, 2.0, 1.0, 4.0, 1.0, 2.0, 1.0, 3.0])
    r = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.10])
    change = (r * clean)[None, None, :]
    effect, alpha = tail_aware_heads(change, clean, np.arange(8)[None], 1 / 3)
    a_hat = 2 / (np.log(0.08 / 0.06) + np.log(0.10 / 0.06))   # 2.50
    expected = 100 * ((r * clean)[:6].sum() + (1.0 + 3.0) * 0.06 * a_hat / (a_hat - 1)) / clean.sum()
    assert alpha[0, 0] == pytest.approx(a_hat) and effect[0, 0, 0] == pytest.approx(expected, rel=1e-12)


def test_a_tail_of_index_below_one_leaves_the_effect_unbounded_and_its_interval_open():
    """Per-sequence effects on exact Pareto quantiles of index 0.8 (no finite mean): Hill's index on the top
    ⌈40^(2/3)⌉ = 12 is below 1, so the observed tail-aware effect is inf; an interval keeps infinite draws."""
    n = 40
    quantiles = (1 - (np.arange(n) + 0.5) / n) ** (-1 / 0.8)
    effect, alpha = tail_aware_heads(quantiles[None, None, :], np.ones(n), np.arange(n)[None], 2 / 3)
    assert alpha[0, 0] < 1 and np.isinf(effect[0, 0, 0])
    assert unbounded_ci(np.array([1.0, 2.0, 3.0, np.inf]), 0.9) == (1.0, np.inf)
    assert unbounded_ci(np.array([np.nan, 1.0, 2.0, 3.0, np.inf]), 0.9) == (1.0, np.inf)   # NaN: no rare position
    assert np.isnan(unbounded_ci(np.array([np.nan, np.nan]), 0.9)).all()


def test_the_resampled_tail_uses_the_gamma_pivot_so_its_upper_end_is_the_exact_limit():
    """With every resample equal to the observed sequences only the pivot varies: γ_b = S₀ / G_b, G_b ~
    Gamma(k, 1), so the 95th percentile of the resampled effects is Peng's effect at the exact upper confidence
    limit γ = S₀ / G₀.₀₅(k) (Hill's sum is Gamma(k, γ) above a Pareto tail's threshold); the observed row keeps
    γ̂ = S₀ / k. 4,000 resamples: the percentile's relative Monte Carlo error is ≈ 1%, the tolerance 4%."""
    from scipy.stats import gamma as gamma_dist
    n, k = 60, 16                                                       # ⌈60^(2/3)⌉
    effects = np.sort(np.random.default_rng(3).pareto(3.0, n) + 1.0)
    index = np.tile(np.arange(n), (4001, 1))
    effect, alpha = tail_aware_heads(effects[None, None, :], np.ones(n), index, 2 / 3, np.random.default_rng(4))
    u, hill_sum = effects[-k - 1], np.log(effects[-k:] / effects[-k - 1]).sum()
    peng = lambda g: 100 * (effects[:-k].sum() + k * u / (1 - g)) / n  # noqa: E731
    assert alpha[0, 0] == pytest.approx(k / hill_sum) and effect[0, 0, 0] == pytest.approx(peng(hill_sum / k))
    upper = unbounded_ci(effect[1:, 0, 0], 0.9)[1]
    assert upper == pytest.approx(peng(hill_sum / gamma_dist.ppf(0.05, k)), rel=0.04)
    with pytest.raises(ValueError, match="generator"):
        tail_aware_heads(effects[None, None, :], np.ones(n), index, 2 / 3)


def test_a_dead_head_and_sequences_without_rare_positions_do_not_make_the_effect_unbounded():
    """A head that moves nothing keeps its plain effect 0 (no tail to fit), as does a head that moves fewer
    sequences than the tail holds (the spread check judges those); sequences with Σ|a| = 0 move nothing and
    are left out of the ordering, so adding them changes no tail-aware effect (k counts the others only)."""
    rng = np.random.default_rng(8)
    n = 40
    clean = rng.uniform(1.0, 2.0, n)
    change = clean * rng.lognormal(np.log(0.03), 0.5, size=(1, 3, n))
    change[0, 0] = 0.0
    change[0, 1, 5:] = 0.0
    effect, alpha = tail_aware_heads(change, clean, np.arange(n)[None], 2 / 3)
    assert effect[0, 0, 0] == 0.0 and np.isnan(alpha[0, :2]).all()
    assert effect[0, 0, 1] == pytest.approx(100 * change[0, 1].sum() / clean.sum())
    padded_change = np.concatenate([change, np.zeros((1, 3, 60))], axis=-1)
    padded, _ = tail_aware_heads(padded_change, np.r_[clean, np.zeros(60)], np.arange(n + 60)[None], 2 / 3)
    np.testing.assert_allclose(padded, effect, rtol=1e-12)


def test_a_moving_head_on_too_few_sequences_with_rare_positions_is_unbounded():
    """Review break of C7 v6's first cut: with at most k sequences with rare positions no tail can be fitted and
    the effect fell back to the plain one (nulls supported 15–51% on 2–6 such sequences). Now a head that moves
    anything is unbounded there — in the observed row and in any resample whose own tail cannot be fitted while
    the observed one could — and a dead head stays 0. Three of 40 sequences with rare positions: k = 3."""
    n = 40
    clean = np.zeros(n)
    clean[:3] = [1.0, 2.0, 1.5]
    change = np.stack([clean * 0.03, np.zeros(n)])[None]               # [1 layer, 2 heads, n]
    effect, alpha = tail_aware_heads(change, clean, np.arange(n)[None], 2 / 3)
    assert np.isinf(effect[0, 0, 0]) and effect[0, 0, 1] == 0.0 and np.isnan(alpha).all()
    clean = np.ones(n)
    r = np.r_[np.zeros(n - 10), np.linspace(0.01, 0.1, 10)]           # 10 sequences move, k = ⌈40^(2/3)⌉ = 12:
    change = (r * clean)[None, None, :]                               # u = 0, the plain effect (spread judges it)
    effect, _ = tail_aware_heads(change, clean, np.arange(n)[None], 2 / 3)
    assert effect[0, 0, 0] == pytest.approx(100 * r.sum() / n)
    r = np.r_[np.zeros(n - 20), np.linspace(0.01, 0.1, 20)]           # 20 move: fitted on the observed row
    index = np.vstack([np.arange(n), np.r_[np.arange(n - 20), np.arange(10), np.arange(n - 10, n)]])
    effect, _ = tail_aware_heads((r * clean)[None, None, :], clean, index, 2 / 3, np.random.default_rng(0))
    assert np.isfinite(effect[0, 0, 0]) and np.isinf(effect[1, 0, 0])  # the resample holds 10 movers: no tail


@pytest.mark.parametrize("exponent", [0.0, 1.0, -0.5, 1.5])
def test_a_tail_exponent_outside_zero_one_is_refused(exponent):
    with pytest.raises(ValueError, match="tail"):
        tail_aware_heads(np.ones((1, 1, 8)), np.ones(8), np.arange(8)[None], exponent)


def test_the_heaviest_tail_is_named_by_the_models_layer_and_is_none_without_a_fitted_tail():
    """Layers 8–9 are analysed: the head of least Hill index is reported with its layer number, as the largest
    head is; when no head has a tail to fit (every head moves nothing) there is none."""
    arrays = ablation_arrays(np.abs(HEAD), LAYER, noise=0.4, seed=9)
    arrays["head_rare_dact"] = np.abs(arrays["head_rare_dact"])
    r = effects(arrays, "activation")
    at = np.unravel_index(int(np.nanargmin(r.tail_index)), r.tail_index.shape)
    assert r.heaviest_tail_at == (int(arrays["layers"][at[0]]), int(at[1])) and r.heaviest_tail_at[0] in (8, 9)
    arrays["head_rare_dact"] = np.zeros_like(arrays["head_rare_dact"])
    assert effects(arrays, "activation").heaviest_tail_at is None
