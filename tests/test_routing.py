"""harness.routing: head-vs-layer statistics on synthetic ablation arrays with planted effects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

from harness.claims.registry import SETTINGS
from harness.analysis.routing import routing_test
from harness.analysis.stats import bootstrap_indices, percentile_ci

MAX_HEAD = SETTINGS["max_single_head_pct"].default
MIN_LAYER = SETTINGS["min_layer_pct"].default
CORR_MIN = SETTINGS["head_corr_min"].default
ALPHA = SETTINGS["alpha"].default
N_BOOT = 300


def synthetic(head_pct, layer_pct, *, common_scale=1.0, noise=0.0, n_seq=40, seed=0, prob_ratio=0.5):
    """Ablation arrays in ``heads.head_ablation``'s layout with planted % effects.

    ``head_pct`` ``[n_la, n_heads]`` and ``layer_pct`` ``[n_la]`` are the % CE increases at
    rare positions; common effects are ``common_scale`` times them; the probability drop is
    ``prob_ratio`` times the CE increase. ``noise`` is the SD of a per-sequence multiplicative
    perturbation of each ablated sum (fraction of the clean sum).
    """
    rng = np.random.default_rng(seed)
    head_pct, layer_pct = np.asarray(head_pct, float), np.asarray(layer_pct, float)
    n_la, n_heads = head_pct.shape
    out = {"layers": np.arange(10 - n_la, 10)}
    for g, scale in (("rare", 1.0), ("common", common_scale)):
        count = rng.integers(5, 20, n_seq)
        out[f"{g}_count"] = count
        clean = {"ce": count * rng.uniform(3.0, 6.0, n_seq), "prob": count * rng.uniform(0.05, 0.3, n_seq)}
        for m, sign, ratio in (("ce", 1.0, 1.0), ("prob", -1.0, prob_ratio)):
            out[f"clean_{g}_{m}"] = clean[m]
            heads = 1 + sign * ratio * scale * head_pct[..., None] / 100 + noise * rng.normal(size=(n_la, n_heads, n_seq))
            layers = 1 + sign * ratio * scale * layer_pct[:, None] / 100 + noise * rng.normal(size=(n_la, n_seq))
            out[f"head_{g}_{m}"] = clean[m] * heads
            out[f"layer_{g}_{m}"] = clean[m] * layers
    return out


def run(arrays, seed=0):
    return routing_test(arrays, n_bootstrap=N_BOOT, seed=seed, alpha=ALPHA)


def test_noise_free_effects_are_recovered_exactly():
    head = np.array([[2.0, 5.0, 3.0, 1.0], [4.0, -1.0, 6.0, 0.5]])
    layer = np.array([30.0, 45.0])
    r = run(synthetic(head, layer))
    np.testing.assert_allclose(r.head_rare_pct, head, atol=1e-9)
    np.testing.assert_allclose(r.head_common_pct, head, atol=1e-9)
    np.testing.assert_allclose(r.layer_rare_pct, layer, atol=1e-9)
    np.testing.assert_allclose(r.head_rare_prob_drop_pct, head / 2, atol=1e-9)
    np.testing.assert_allclose(r.layer_common_prob_drop_pct, layer / 2, atol=1e-9)
    assert r.max_head == (9, 2) and r.max_head_pct == pytest.approx(head.max())
    assert r.max_head_prob_drop_pct == pytest.approx(head.max() / 2)
    np.testing.assert_allclose(r.layer_max_head_pct, head.max(axis=1))
    np.testing.assert_allclose(r.gap_pct, layer - head.max(axis=1), atol=1e-9)
    # without noise every resample gives the same ratio: the intervals collapse to the point
    np.testing.assert_allclose(r.gap_ci, np.stack([r.gap_pct, r.gap_pct], axis=1), atol=1e-9)
    assert r.ci_level == pytest.approx(1 - 2 * ALPHA)
    assert r.n_rare == synthetic(head, layer)["rare_count"].sum() and r.n_seq == 40


def test_distributed_processing_passes_every_bound():
    rng = np.random.default_rng(1)
    head = rng.uniform(1.0, MAX_HEAD * 0.6, size=(1, 8))
    r = run(synthetic(head, [MIN_LAYER + 5.0], noise=0.03))
    assert r.max_head_pct <= MAX_HEAD
    assert r.layer_rare_pct[0] >= MIN_LAYER
    assert r.gap_ci[0, 0] > 0
    assert r.pearson >= CORR_MIN and r.spearman >= CORR_MIN


def test_planted_routing_head_is_found_and_the_gap_vanishes():
    head = np.full((1, 8), 1.0)
    head[0, 5] = 4 * MAX_HEAD
    arrays = synthetic(head, [4 * MAX_HEAD], noise=0.03)
    arrays["layer_rare_ce"][0] = arrays["head_rare_ce"][0, 5]  # the whole layer's effect is that head's
    r = run(arrays)
    assert r.max_head == (9, 5)
    assert r.max_head_pct > MAX_HEAD and r.max_head_ci[0] > MAX_HEAD
    assert r.gap_pct[0] == pytest.approx(0.0, abs=1e-9) and not r.gap_ci[0, 0] > 0


def test_gap_ci_takes_the_max_over_heads_inside_each_resample():
    """Equal true head effects plus noise: the max per resample differs from a fixed argmax."""
    arrays = synthetic(np.full((2, 4), 5.0), [20.0, 25.0], noise=0.2, n_seq=12, seed=3)
    r = run(arrays, seed=7)
    gaps, max_heads = [], []
    for rows in bootstrap_indices(12, N_BOOT, 7):
        clean = arrays["clean_rare_ce"][rows].sum()
        head = 100 * (arrays["head_rare_ce"][:, :, rows].sum(axis=2) - clean) / clean
        layer = 100 * (arrays["layer_rare_ce"][:, rows].sum(axis=1) - clean) / clean
        gaps.append(layer - head.max(axis=1))
        max_heads.append(head.max())
    gaps = np.array(gaps)
    for i in range(2):
        np.testing.assert_allclose(r.gap_ci[i], percentile_ci(gaps[:, i], r.ci_level), rtol=1e-10)
    np.testing.assert_allclose(r.max_head_ci, percentile_ci(max_heads, r.ci_level), rtol=1e-10)


def test_correlations_match_scipy_and_track_the_planted_relation():
    rng = np.random.default_rng(4)
    head = rng.uniform(0, 8, size=(2, 6))
    arrays = synthetic(head, [40.0, 50.0], noise=0.02, seed=5)
    r = run(arrays)
    assert r.pearson == pytest.approx(pearsonr(r.head_rare_pct.ravel(), r.head_common_pct.ravel())[0])
    assert r.spearman == pytest.approx(spearmanr(r.head_rare_pct.ravel(), r.head_common_pct.ravel())[0])
    assert r.pearson_ci[0] <= r.pearson_ci[1] and r.spearman_ci[0] <= r.spearman_ci[1]
    exact = run(synthetic(head, [40.0, 50.0], common_scale=0.5))
    assert exact.pearson == pytest.approx(1.0) and exact.spearman == pytest.approx(1.0)
    reversed_ = run(synthetic(head, [40.0, 50.0], common_scale=-1.0))
    assert reversed_.pearson == pytest.approx(-1.0) and reversed_.spearman == pytest.approx(-1.0)


def test_gini_of_equal_and_concentrated_effects():
    equal = run(synthetic(np.full((1, 8), 5.0), [40.0]))
    assert equal.gini_rare == pytest.approx(0.0, abs=1e-9)
    one = np.zeros((1, 8))
    one[0, 3] = 20.0
    concentrated = run(synthetic(one, [40.0]))
    assert concentrated.gini_rare == pytest.approx(7 / 8)
    rng = np.random.default_rng(6)
    head = rng.uniform(-3, 10, size=(1, 10))
    r = run(synthetic(head, [40.0]))
    x = np.abs(r.head_rare_pct.ravel())
    mean_abs_diff = np.abs(x[:, None] - x[None, :]).mean()
    assert r.gini_rare == pytest.approx(mean_abs_diff / (2 * x.mean()))


def test_same_seed_same_intervals_other_seed_other_draws():
    arrays = synthetic(np.full((1, 4), 3.0), [40.0], noise=0.1)
    a, b, c = run(arrays, seed=1), run(arrays, seed=1), run(arrays, seed=2)
    np.testing.assert_array_equal(a.gap_ci, b.gap_ci)
    assert a.pearson_ci == b.pearson_ci and a.seed == 1
    assert not np.array_equal(a.gap_ci, c.gap_ci)


def test_bad_input_raises_clear_errors():
    good = synthetic(np.full((1, 4), 3.0), [40.0])
    with pytest.raises(ValueError, match="missing array"):
        run({k: v for k, v in good.items() if k != "layer_rare_prob"})
    with pytest.raises(ValueError, match="inconsistent shapes"):
        run(good | {"clean_common_ce": good["clean_common_ce"][:-1]})
    with pytest.raises(ValueError, match="at least 2 sequences"):
        run(synthetic(np.full((1, 4), 3.0), [40.0], n_seq=1))
    with pytest.raises(ValueError, match="no rare-target positions"):
        run(good | {"rare_count": np.zeros_like(good["rare_count"])})
    with pytest.raises(ValueError, match="non-finite"):
        run(good | {"layer_common_ce": np.full_like(good["layer_common_ce"], np.nan)})
    with pytest.raises(ValueError, match="at least 3 heads"):
        run(synthetic(np.full((1, 2), 3.0), [40.0]))
    with pytest.raises(ValueError, match="alpha"):
        routing_test(good, n_bootstrap=10, seed=0, alpha=0.7)
