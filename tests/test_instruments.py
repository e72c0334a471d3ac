"""Correlations beyond the layer's factors (harness.analysis.instruments): planted factor models with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis import instruments
from harness.analysis.instruments import bridges, excess_correlations, layer_instruments, outlying_partners

N_NEURONS, N_COMMUNITIES, GROUP = 512, 8, 16


def layer(seed: int, n_obs: int, private: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Activations ``[n_obs, 512]`` of one weak global factor (ln λ ~ N(−2, 0.8²)) and 8 community factors
    (loading 0.6); the group is the 16 neurons of largest λ (the hard null's selection), sharing a private
    factor with loading ``private``. Returns the activations, the group, and the true correlations ``[512, 512]``
    through the layer's factors and through the private one."""
    rng = np.random.default_rng(seed)
    lam = np.exp(-2.0 + 0.8 * rng.standard_normal(N_NEURONS))
    community = rng.integers(0, N_COMMUNITIES, N_NEURONS)
    group = np.sort(np.argsort(lam)[-GROUP:])
    beta = np.zeros(N_NEURONS)
    beta[group] = private
    x = (lam * rng.standard_normal(n_obs)[:, None] + 0.6 * rng.standard_normal((n_obs, N_COMMUNITIES))[:, community]
         + beta * rng.standard_normal(n_obs)[:, None] + rng.standard_normal((n_obs, N_NEURONS)))
    scale = np.outer(*(2 * [np.sqrt(lam**2 + 0.36 + beta**2 + 1.0)]))
    shared = np.outer(lam, lam) + 0.36 * (community[:, None] == community[None])
    return x, group, shared / scale, np.outer(beta, beta) / scale


def group_excess(x: np.ndarray, group: np.ndarray, n_fit: int) -> np.ndarray:
    """The group's correlations beyond the factors on positions ``n_fit…``, instruments fitted on ``…n_fit``."""
    pool = np.setdiff1d(np.arange(x.shape[1]), group)
    inst = layer_instruments(x[:n_fit], x[n_fit:], pool, 16, seed=3)
    return inst.excess(np.corrcoef(x[n_fit:, group].T)[None], group[None])[0]


def off_mean(m: np.ndarray) -> float:
    return float(m[~np.eye(m.shape[0], dtype=bool)].mean())


def test_the_top_loaders_of_a_weak_layer_factor_have_no_excess_correlation():
    """The hard null: the 16 top loaders correlate by λ_i λ_j (mean r > 0.15) while the rest of the layer
    carries the factor only weakly. Their excess correlation is within 0.01 of 0 (a twentieth of it)."""
    x, group, shared, _ = layer(seed=11, n_obs=4000)
    assert off_mean(shared[np.ix_(group, group)]) > 0.15
    assert abs(off_mean(group_excess(x, group, 2000))) < 0.01


def test_a_private_factor_survives_the_subtraction():
    """A factor only the group shares (loading 0.5) is not the layer's: its correlation stays, to within 15%."""
    x, group, _, private = layer(seed=12, n_obs=4000, private=0.5)
    want = off_mean(private[np.ix_(group, group)])
    assert off_mean(group_excess(x, group, 2000)) == pytest.approx(want, rel=0.15)


def test_a_layer_without_factors_subtracts_almost_nothing():
    """Independent neurons: noise directions pass the edge now and then and the bridge keeps weak ones (its
    bias–variance choice), but what is subtracted stays well below the sampling noise of one correlation
    (SD 1/√300 ≈ 0.058): mean absolute change under 0.03."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((600, 120))
    inst = layer_instruments(x[:300], x[300:], np.arange(8, 120), 16, seed=0)
    group = np.arange(8)
    corr = np.corrcoef(x[300:, group].T)
    assert np.abs(inst.excess(corr[None], group[None])[0] - corr).mean() < 0.03


def two_groups(seed: int, instrument_seed: int, control_seed: int):
    """A 1,200-position layer, its instruments fitted on the first 600 positions and used on the rest, the
    top-loading group and one random pool group ``[2, 16]``, and their correlations on the used positions."""
    x, group, _, _ = layer(seed=seed, n_obs=1200)
    pool = np.setdiff1d(np.arange(N_NEURONS), group)
    inst = layer_instruments(x[:600], x[600:], pool, 16, seed=instrument_seed)
    groups = np.stack([group, np.sort(np.random.default_rng(control_seed).choice(pool, GROUP, replace=False))])
    return x, inst, groups, np.stack([np.corrcoef(x[600:, g].T) for g in groups])


def test_the_batched_path_equals_the_path_of_one_group_and_its_columns():
    """``LayerInstruments.excess`` (block formulas, batched over groups and with bridges batched over them)
    equals ``excess_correlations`` on the plain correlation matrix of one group's neurons and instruments
    (``columns``), the path the bootstrap takes."""
    x, inst, groups, corr = two_groups(seed=13, instrument_seed=1, control_seed=0)
    batched = inst.excess(corr, groups)
    for g, ids in enumerate(groups):
        full = np.corrcoef(np.hstack([x[600:, ids], inst.columns(ids)]).T)
        link = bridges(full[GROUP:, GROUP:], inst.sizes, inst.n_obs)
        alone = excess_correlations(full[:GROUP, :GROUP], full[:GROUP, GROUP:], inst.part[ids], link)
        assert np.allclose(batched[g], alone, atol=1e-9)


def test_the_implied_correlations_do_not_depend_on_the_whitening(monkeypatch):
    """``bridges`` whitens each part's instruments by a Cholesky factor (≈ 5× faster than an eigendecomposition);
    the excess correlations equal those from the symmetric inverse square root to 1e-10, and a batch holding a
    singular Gram matrix falls back to the symmetric route (Wᵀ G W = I on the positive definite ones)."""
    _, inst, groups, corr = two_groups(seed=21, instrument_seed=2, control_seed=1)
    cholesky = inst.excess(corr, groups)
    monkeypatch.setattr(instruments, "_whitening", instruments._inverse_sqrt)
    np.testing.assert_allclose(cholesky, inst.excess(corr, groups), atol=1e-10)
    monkeypatch.undo()
    rng = np.random.default_rng(0)
    grams = np.stack([np.cov(rng.standard_normal((4, 30))) for _ in range(3)])
    for w, g in zip(instruments._whitening(grams), grams):
        np.testing.assert_allclose(w.T @ g @ w, np.eye(4), atol=1e-10)
    singular = grams.copy()
    singular[1] = np.outer(*(2 * [np.arange(1.0, 5.0)]))
    np.testing.assert_allclose(instruments._whitening(singular), instruments._inverse_sqrt(singular))


def partner_screen(private: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top-loading group's first 12 neurons as the specialists; the candidates are its other 4 (the
    members a top-K cut missed) and the next 12 loaders of the weak global factor, screened on 1,200 positions
    (weights fitted on the first 600). Returns the missed members, the partners found and the candidates' z."""
    x, group, _, _ = layer(seed=seed, n_obs=1200, private=private)
    rng = np.random.default_rng(seed)
    missed = np.sort(rng.choice(group, 4, replace=False))
    specialists = np.setdiff1d(group, missed)
    loaders = np.argsort(-np.abs(np.corrcoef(x.T)[group].mean(0)))
    next_loaders = loaders[~np.isin(loaders, group)][:12]
    candidates = np.concatenate([missed, next_loaders])
    pool = np.setdiff1d(np.arange(N_NEURONS), np.union1d(group, next_loaders))
    partners, z = outlying_partners(x[:600], x[600:], specialists, candidates, pool, 16, seed=3, z_limit=4.0)
    return missed, partners, z


def test_the_members_a_cut_missed_are_found_and_the_layers_top_loaders_are_not():
    """A group sharing a private factor (loading 0.5) of which a top-K cut kept 12: its 4 missed members stand
    out of the pool by more than 5 robust SDs (6.0–7.9 here), the 12 next loaders of the layer's weak global factor
    stay below 4 (the pool's correlation with the group comes from that factor, and the instruments carry it).
    Without the private factor no candidate is a partner."""
    missed, partners, z = partner_screen(private=0.5, seed=31)
    assert np.array_equal(np.sort(partners), missed) and z[:4].min() > 5 and z[4:].max() < 4
    _, partners, z = partner_screen(private=0.0, seed=31)
    assert partners.size == 0 and z.max() < 4


@pytest.mark.parametrize("fit_rows, pool, message", [
    (2, np.arange(100), "≥ 3 positions"),
    (300, np.arange(4), "pool of at least"),
])
def test_bad_input_is_refused(fit_rows, pool, message):
    x = np.random.default_rng(0).standard_normal((600, 100))
    with pytest.raises(ValueError, match=message):
        layer_instruments(x[:fit_rows], x[300:], pool, 16, seed=0)
