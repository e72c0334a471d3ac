"""Control groups of neurons and the comparison of a group statistic against them.

Specialists are selected by influence, and influence goes with activation statistics: a
neuron that fires strongly and writes a long vector moves the loss more. A group statistic
(co-activation, effective dimension, weight spectra) that also depends on those statistics
would separate any high-influence group from uniformly drawn neurons without any
specialisation (a global activation factor with influence ∝ variance fools an unmatched test
every time). So the null groups are **matched** and the comparison is **adjusted**:

1. Covariates (``neuron_covariates``): per neuron, activation mean, log variance, sparsity
   (share of positions at or below 0), ln ‖W_out‖ row norm and layer co-activation (mean
   correlation, and mean absolute correlation, with the rest of the layer, specialists left
   out — the second sees neurons that load strongly on factors of either sign, which an
   independent review showed a selection could favour unseen by the others), each turned into
   normal scores of its ranks over the layer.
2. Matching (``matched_groups``): each control group takes, for every specialist, one of its
   ``n_neighbours`` nearest non-specialists in covariate space (Euclidean on normal scores),
   all distinct; a specialist whose pool is used up takes its next nearest free neuron.
3. Balance: the standardised mean difference (SMD) of every covariate between the
   specialists and the matched neurons, in layer SDs of the normal scores. Above the rule's
   limit the specialists cannot be told apart from their activation statistics and the rule
   says so (inconclusive) instead of comparing.
4. Adjustment (``compare_groups``): what is left of the imbalance is removed by regression
   (bias-corrected matching, Abadie & Imbens 2011): the statistic of matched and of uniformly
   drawn groups is regressed on the groups' features (``NeuronCovariates.features``: per
   covariate the mean score, and at ``degree`` 2 also the mean of score² − 1), and every matched
   draw is moved to the specialists' features along that fit. The degree is the claim's, chosen
   by calibration: with means alone, rows whose shared direction's loading grows as the 4th power
   of the write norm, and specialists selected on write norm, fooled C8 in 41–68% of the draws
   (the specialists sit 0.6–1.0 SD beyond their neighbours, and a line extrapolates the convex
   rise too low; with the squares, 2–8%), while for C6's correlation statistics in a layer with
   one global factor the squares moved the centre so far that a truly coordinated group was
   contradicted 32% of the time (0% linear). An ``Adjustment`` may also carry the layer's common
   factors (``harness.analysis.factors``): the groups' mean factor-predicted pair correlation and its
   square join the regressors, in the statistic's own scale. C8 uses them (a row's share of a
   layer-wide direction that follows something no covariate sees, such as the read norm, fooled it
   61–100% of the time without them); for C6 they did not help (module ``harness.claims.activation``).
   A factor feature of the specialists beyond the range of every group the fit saw makes the adjusted
   centre an extrapolation of a line fitted elsewhere (the zoo's planted write rows: 5.5 null SDs past
   the matched mean, effect −3.0 SD where the unadjusted comparison found +5.4), so the comparison names
   it (``beyond_support``) and C8 does not test that matrix. ``GroupComparison.extrapolation`` records
   how far the fit moved the matched centre, in null SDs.
5. Sampling (``sampling_gap``, optional): a statistic estimated from positions (a correlation
   matrix) is noisier for a group whose own activations are heavier-tailed or more dependent
   between positions than its controls', and for a non-linear statistic (the participation
   ratio) the noise is also a bias. The matched groups' spread carries *their* sampling noise,
   not the specialists'. So the statistic of the specialists and of ``SAMPLING_GROUPS`` matched
   groups is recomputed on the same sequence-bootstrap resamples; the specialists' bootstrap bias
   in excess of the controls' is subtracted from the observed value and their excess variance is
   added to the null's (a volatility shared by the specialists' noise, with no shared factor,
   fooled C6 29% of the time without this; measured in the calibration table). A resample on which the
   statistic is undefined for some group is dropped for all (at most ``MAX_UNDEFINED_SHARE``).

The p-value is the empirical one-sided p of the specialists against the adjusted draws; the
effect is (observed − median of the adjusted null) / SD of the adjusted null, oriented so that
positive is the claim's direction, with a location-shift interval (the shifts the adjusted null
does not reject). The unmatched comparison is reported beside it.

Measured on the hard null (tests/test_groups.py and calibration): one global factor with
lognormal loadings, influence ∝ variance, 16 of 512 neurons selected: an unmatched test of
mean correlation rejects 85–100% of the time, matching alone 15–100%, matching with
adjustment ≤ 5%, and the balance check flags the tightly selected cases (SMD ≈ 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Literal, Sequence

import numpy as np
from scipy.stats import norm, rankdata

from harness.analysis.factors import FEATURE_NAMES as FACTOR_FEATURES
from harness.analysis.factors import LayerFactors
from harness.analysis.stats import empirical_p

Direction = Literal["greater", "less"]
CENTRE_SPLITS = 8  # random halvings of the neighbour pools that measure the matched centre's uncertainty
SAMPLING_GROUPS = 20  # matched groups whose bootstrap bias and variance stand for the controls' (step 5)
COVARIATES: tuple[str, ...] = ("mean", "log_variance", "sparsity", "log_write_norm", "layer_coactivation",
                               "layer_abs_coactivation")


def random_groups(n_neurons: int, size: int, exclude: Sequence[int] | np.ndarray, n_groups: int,
                  seed: int) -> np.ndarray:
    """``n_groups`` uniformly drawn groups of ``size`` distinct ids from ``0 … n_neurons-1`` minus ``exclude``.

    Returns int64 ``[n_groups, size]``, each row sorted; rows are independent draws. Raises
    ValueError on ids out of range or too few candidates.
    """
    if n_neurons < 1 or size < 1 or n_groups < 1:
        raise ValueError(f"random_groups needs n_neurons, size and n_groups ≥ 1, got {n_neurons}, {size}, {n_groups}")
    candidates = np.setdiff1d(np.arange(n_neurons), _ids(exclude, n_neurons, "exclude"))
    if candidates.size < size:
        raise ValueError(f"cannot draw groups of {size} neurons: only {candidates.size} of {n_neurons} neurons "
                         f"remain after excluding {n_neurons - candidates.size}")
    rng = np.random.default_rng(seed)
    keys = rng.random((n_groups, candidates.size))
    picks = np.argpartition(keys, size - 1, axis=1)[:, :size]
    return np.sort(candidates[picks], axis=1).astype(np.int64)


def _ids(ids: Sequence[int] | np.ndarray, n_neurons: int, name: str) -> np.ndarray:
    arr = np.unique(np.asarray(ids, dtype=np.int64).ravel())
    if arr.size and (arr[0] < 0 or arr[-1] >= n_neurons):
        raise ValueError(f"{name} holds ids outside 0…{n_neurons - 1}: {arr[(arr < 0) | (arr >= n_neurons)][:5]}")
    return arr


@dataclass(frozen=True)
class NeuronCovariates:
    """Per-neuron covariates of selection: ``values`` ``[d_mlp, n_cov]`` (raw), ``scores`` (normal scores
    of their ranks, each column mean 0 and SD ≈ 1), ``names`` of the columns, and ``usable`` ids
    (neurons that vary over the positions; constant ones can be neither specialists' controls nor tested)."""

    names: tuple[str, ...]
    values: np.ndarray
    scores: np.ndarray
    usable: np.ndarray

    @property
    def n_neurons(self) -> int:
        return int(self.values.shape[0])

    def feature_names(self, degree: int) -> tuple[str, ...]:
        return self.names + (tuple(f"{name}^2" for name in self.names) if degree == 2 else ())

    def features(self, groups: np.ndarray, degree: int) -> np.ndarray:
        """The adjustment's regressors of groups ``[..., size]`` → ``[..., degree·n_cov]``: per covariate the
        group's mean normal score, and at ``degree`` 2 then the group's mean of (score² − 1) (≈ 0 for a
        uniformly drawn group)."""
        if degree not in (1, 2):
            raise ValueError(f"the adjustment's degree must be 1 or 2, got {degree}")
        s = self.scores[np.asarray(groups, dtype=np.int64)]
        return s.mean(-2) if degree == 1 else np.concatenate([s.mean(-2), (s**2 - 1.0).mean(-2)], axis=-1)


@dataclass(frozen=True)
class Adjustment:
    """What the adjustment (step 4) regresses a group statistic on: the ``covariates``' group features at
    ``degree`` 1 or 2 and, when ``factors`` are given, the group's mean factor-predicted correlation and
    squared correlation (``harness.analysis.factors``) — in the statistic's own scale, where a statistic
    built from pairwise correlations is linear in them under the null."""

    covariates: NeuronCovariates
    degree: int = 1
    factors: LayerFactors | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return self.covariates.feature_names(self.degree) + (FACTOR_FEATURES if self.factors is not None else ())

    def features(self, groups: np.ndarray) -> np.ndarray:
        """The regressors of groups ``[..., size]`` → ``[..., n_features]``."""
        x = self.covariates.features(groups, self.degree)
        return x if self.factors is None else np.concatenate([x, self.factors.pair_features(groups)], axis=-1)


def neuron_covariates(acts: np.ndarray, write_norm: np.ndarray, specialists: Sequence[int] | np.ndarray
                      ) -> NeuronCovariates:
    """Covariates of every neuron from activations ``[n_positions, d_mlp]`` and write norms ``[d_mlp]``.

    Layer co-activation is each neuron's mean Pearson correlation with the usable
    non-specialist neurons (itself excluded), so a specialist group's own correlation does not
    leak into its covariate.
    """
    x = np.asarray(acts, dtype=np.float64)
    write_norm = np.asarray(write_norm, dtype=np.float64)
    if x.ndim != 2 or write_norm.shape != (x.shape[1],):
        raise ValueError(f"need acts [n_positions, d_mlp] and write_norm [d_mlp]; got {x.shape} and {write_norm.shape}")
    if x.shape[0] < 3 or not np.all(np.isfinite(x)) or not np.all(np.isfinite(write_norm)):
        raise ValueError("covariates need at least 3 positions and finite activations and write norms")
    mean, sd = x.mean(0), x.std(0)
    usable = np.flatnonzero(sd > 0)
    spec = _ids(specialists, x.shape[1], "specialists")
    pool = np.setdiff1d(usable, spec)
    z = np.zeros_like(x)
    z[:, usable] = (x[:, usable] - mean[usable]) / sd[usable]
    corr = z.T @ z[:, pool] / x.shape[0]           # r_ij for every neuron i and pool neuron j
    in_pool = np.isin(np.arange(x.shape[1]), pool)
    partners = np.maximum(pool.size - in_pool, 1)   # a pool neuron is not its own partner (r_ii = 1)
    coact = (corr.sum(1) - in_pool) / partners
    abs_coact = (np.abs(corr).sum(1) - in_pool) / partners
    values = np.stack([mean, np.log(np.maximum(sd**2, 1e-300)), (x <= 0).mean(0),
                       np.log(np.maximum(write_norm, 1e-300)), coact, abs_coact], axis=1)
    scores = np.zeros_like(values)
    n = usable.size
    for c in range(values.shape[1]):
        scores[usable, c] = norm.ppf((rankdata(values[usable, c]) - 0.5) / n)
    return NeuronCovariates(COVARIATES, values, scores, usable)


@dataclass(frozen=True)
class MatchedGroups:
    """Matched control groups ``groups`` ``[n_groups, size]`` for ``specialists``; ``smd`` the standardised
    mean difference of each covariate (specialists − controls, layer SDs of the scores)."""

    specialists: np.ndarray
    groups: np.ndarray
    smd: dict[str, float]
    n_neighbours: int
    order: np.ndarray          # [K, n_candidates]: every specialist's candidates, nearest first

    @property
    def max_abs_smd(self) -> float:
        return float(max(abs(v) for v in self.smd.values()))

    def split_draws(self, n_groups: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Two sets of ``n_groups`` matched groups drawn from two disjoint random halves of the neurons in the
        specialists' neighbour pools (for the uncertainty of the matched centre, ``fit_controls``). The halves
        split neurons, not each specialist's list: neighbouring specialists share candidates, and a neuron
        on both sides would make the halves agree more than independent pools do (the centre's variance was
        then underestimated by a third)."""
        rng = np.random.default_rng(seed)
        pools = self.order[:, : self.n_neighbours]
        neurons = np.unique(pools)
        first = np.isin(pools, neurons[rng.random(neurons.size) < 0.5])
        return tuple(_draw(self.order, self.n_neighbours, mask, n_groups, rng) for mask in (first, ~first))


def matched_groups(cov: NeuronCovariates, specialists: Sequence[int] | np.ndarray, n_groups: int,
                   n_neighbours: int, seed: int) -> MatchedGroups:
    """``n_groups`` control groups, one nearest-neighbour match per specialist (module docstring)."""
    spec = _ids(specialists, cov.n_neurons, "specialists")
    if not np.all(np.isin(spec, cov.usable)):
        raise ValueError("a specialist neuron is constant over the positions; it cannot be matched")
    candidates = np.setdiff1d(cov.usable, spec)
    if candidates.size < spec.size:
        raise ValueError(f"only {candidates.size} candidate controls for {spec.size} specialists")
    if n_groups < 1 or n_neighbours < 1:
        raise ValueError(f"n_groups and n_neighbours must be ≥ 1, got {n_groups}, {n_neighbours}")
    dist = ((cov.scores[spec][:, None, :] - cov.scores[candidates][None]) ** 2).sum(-1)
    order = candidates[np.argsort(dist, axis=1, kind="stable")]      # [K, n_candidates] nearest first
    k = min(n_neighbours, candidates.size)
    groups = _draw(order, k, np.ones((spec.size, k), dtype=bool), n_groups, np.random.default_rng(seed))
    pooled = order[:, :k].ravel()
    diff = cov.scores[spec].mean(0) - cov.scores[pooled].mean(0)
    layer_sd = cov.scores[cov.usable].std(0)
    smd = {name: float(d / s) if s > 0 else 0.0 for name, d, s in zip(cov.names, diff, layer_sd)}
    return MatchedGroups(spec, groups, smd, k, order)


def _draw(order: np.ndarray, k: int, allowed: np.ndarray, n_groups: int, rng: np.random.Generator) -> np.ndarray:
    """``n_groups`` groups, one neuron per specialist from its ``allowed`` nearest ``k`` (``[K, k]`` mask),
    all distinct; a specialist whose allowed pool is used up takes its next nearest free neuron."""
    size = order.shape[0]
    groups = np.empty((n_groups, size), dtype=np.int64)
    taken = np.zeros((n_groups, int(order.max()) + 1), dtype=bool)   # by neuron id
    rows = np.arange(n_groups)
    orders = np.argsort(rng.random((n_groups, size)), axis=1)   # each group visits the specialists in its own order
    for j in range(size):
        i = orders[:, j]
        pool = order[i, :k]                                      # [n_groups, k]
        free = ~taken[rows[:, None], pool] & allowed[i]
        keys = np.where(free, rng.random(pool.shape), -1.0)
        pick = pool[rows, keys.argmax(1)]
        for g in np.flatnonzero(~free.any(1)):                   # pool used up: next nearest free neuron
            pick[g] = next(int(c) for c in order[i[g]] if not taken[g, c])
        taken[rows, pick] = True
        groups[rows, i] = pick
    return groups


GroupStatistic = Callable[[np.ndarray], np.ndarray]
"""A statistic of neuron groups: ids ``[n_groups, size]`` → values ``[n_groups]``."""


@dataclass(frozen=True)
class ControlFit:
    """A statistic on matched control groups, with the adjustment fitted once.

    ``null`` ``[n]`` the matched groups' values and ``x_null`` ``[n, n_features]`` their features
    (``NeuronCovariates.features``); ``coef`` the regression slope per feature (fitted on matched and
    uniform groups);
    ``uniform`` ``[n]`` the uniform groups' values (the unmatched comparison); ``support`` ``[2, n_features]``
    the least and greatest value of each feature over the groups the fit saw.
    """

    null: np.ndarray
    x_null: np.ndarray
    coef: np.ndarray
    uniform: np.ndarray
    residuals: np.ndarray
    names: tuple[str, ...]
    centre_variance: float
    support: np.ndarray

    def beyond_support(self, x_group: np.ndarray) -> tuple[str, ...]:
        """The factor features (``harness.analysis.factors``) of ``x_group`` outside the range of every group
        the fit saw: there the adjusted centre is an extrapolation of a line fitted elsewhere."""
        return tuple(name for name, value, lo, hi in zip(self.names, x_group, *self.support)
                     if name in FACTOR_FEATURES and not lo <= value <= hi)

    def centre(self, x_group: np.ndarray) -> float:
        """The matched draws' mean moved to features ``x_group`` ``[n_features]`` along the fit."""
        return float(np.mean(self.null + (np.asarray(x_group)[None] - self.x_null) @ self.coef))

    def adjusted(self, x_group: np.ndarray) -> np.ndarray:
        """Null draws for a group with features ``x_group``: the adjusted matched centre plus the
        uniform groups' residuals around the fit, widened by the centre's own uncertainty (module docstring)."""
        spread = np.sqrt(1.0 + self.centre_variance / max(float(np.var(self.residuals, ddof=1)), 1e-300))
        return self.centre(x_group) + spread * self.residuals


def _fit(statistic: GroupStatistic, adjustment: Adjustment, groups: np.ndarray, n_uniform: int,
         exclude: np.ndarray, seed: int) -> ControlFit:
    """The statistic on ``groups`` (matched) and on ``n_uniform`` uniform groups, and the regression on both."""
    uniform_ids = random_groups(adjustment.covariates.n_neurons, groups.shape[1], exclude, n_uniform, seed)
    null = np.asarray(statistic(groups), dtype=float)
    uniform = np.asarray(statistic(uniform_ids), dtype=float)
    if not (np.isfinite(null).all() and np.isfinite(uniform).all()):
        raise ValueError("the group statistic is not finite for every control group")
    x_null, x_uniform = adjustment.features(groups), adjustment.features(uniform_ids)
    design = np.column_stack([np.ones(null.size + uniform.size), np.vstack([x_null, x_uniform])])
    fitted = np.linalg.lstsq(design, np.concatenate([null, uniform]), rcond=None)[0]
    residuals = uniform - fitted[0] - x_uniform @ fitted[1:]
    seen = np.vstack([x_null, x_uniform])
    return ControlFit(null, x_null, fitted[1:], uniform, residuals - residuals.mean(), adjustment.names, 0.0,
                      np.stack([seen.min(0), seen.max(0)]))


def fit_controls(statistic: GroupStatistic, adjustment: Adjustment, matched: MatchedGroups, seed: int) -> ControlFit:
    """Evaluate ``statistic`` on the matched groups and on as many uniform groups (seeded), fit the
    ``adjustment``, and measure how uncertain the adjusted matched centre is (module docstring, step 4).

    The centre rests on a few dozen neighbours and on slopes fitted to noisy group statistics: the whole
    fit is repeated on ``CENTRE_SPLITS`` pairs of disjoint halves of the neighbour pools (each with its own
    uniform groups), and the variance of the two halves' centres' gap, divided by 4, is the centre's.
    """
    cov = adjustment.covariates
    spec, groups = matched.specialists, matched.groups
    exclude = np.union1d(np.setdiff1d(np.arange(cov.n_neurons), cov.usable), spec)
    fit = _fit(statistic, adjustment, groups, groups.shape[0], exclude, seed)
    x_spec = adjustment.features(spec)
    n_half = max(8, groups.shape[0] // 4)
    gaps = []
    for s in range(CENTRE_SPLITS):
        halves = matched.split_draws(n_half, seed + 1 + s)
        centres = [_fit(statistic, adjustment, h, n_half, exclude, seed + 1000 + 2 * s + i).centre(x_spec)
                   for i, h in enumerate(halves)]
        gaps.append(centres[0] - centres[1])
    # each half draws on half the neighbours: Var(half centre) ≈ 2 Var(centre), Var(gap) ≈ 4 Var(centre)
    return replace(fit, centre_variance=float(np.mean(np.square(gaps)) / 4.0))


MAX_UNDEFINED_SHARE = 0.02  # most bootstrap resamples a sampling gap may drop as undefined (``sampling_gap``)


@dataclass(frozen=True)
class SamplingGap:
    """How the specialists' estimate of a statistic differs in sampling from their controls' (step 5).

    ``bias`` the specialists' bootstrap bias (mean of the resampled values − the observed value) minus
    the controls' mean bias, in the statistic's units; ``excess_variance`` the specialists' bootstrap
    variance minus the controls' mean variance, floored at 0 (units²); ``specialists_sd`` and
    ``controls_sd`` the bootstrap SDs (the controls' as the root of their mean variance); ``dropped`` the
    resamples left out because the statistic was undefined on them for some group.
    """

    bias: float
    excess_variance: float
    specialists_sd: float
    controls_sd: float
    dropped: int = 0

    def fields(self) -> dict[str, float]:
        return {"bias": self.bias, "excess_variance": self.excess_variance, "specialists_sd": self.specialists_sd,
                "controls_sd": self.controls_sd, "dropped_resamples": self.dropped}


def sampling_gap(resampled: np.ndarray, observed: np.ndarray, undefined: np.ndarray | None = None) -> SamplingGap:
    """The gap from a statistic of the specialists (column 0) and of control groups (columns 1…) on the
    same bootstrap resamples, ``resampled`` ``[B, 1 + m]``, and on the data, ``observed`` ``[1 + m]``.

    ``undefined`` ``[B]`` marks the resamples on which the statistic is undefined for some group (C6's
    split-half participation ratio where the halves do not align); they are dropped for every group, so the
    groups stay paired. They are the far tail of the statistic (the ratio grows without bound as the
    halves' cross product falls to 0), so dropping them narrows the gap: more than
    ``MAX_UNDEFINED_SHARE`` of them is an error, not a smaller tail. Any other non-finite value is an error.
    """
    resampled, observed = np.asarray(resampled, dtype=float), np.asarray(observed, dtype=float)
    if resampled.ndim != 2 or resampled.shape[0] < 2 or resampled.shape[1] < 2 or observed.shape != resampled.shape[1:]:
        raise ValueError(f"need resampled [B ≥ 2, 1 + m ≥ 2] and observed [1 + m]; got {resampled.shape}, "
                         f"{observed.shape}")
    undefined = np.zeros(resampled.shape[0], bool) if undefined is None else np.asarray(undefined, bool)
    dropped = int(undefined.sum())
    if dropped > MAX_UNDEFINED_SHARE * undefined.size:
        raise ValueError(f"the group statistic is undefined on {dropped} of {undefined.size} resamples (at most "
                         f"{MAX_UNDEFINED_SHARE:.0%} may be dropped)")
    resampled = resampled[~undefined]
    if not np.isfinite(resampled).all():
        raise ValueError("the resampled group statistic is not finite")
    if not np.isfinite(observed).all():
        raise ValueError("the observed group statistic is not finite")
    bias = resampled.mean(0) - observed
    variance = resampled.var(0, ddof=1)
    controls = float(variance[1:].mean())
    return SamplingGap(bias=float(bias[0] - bias[1:].mean()), excess_variance=max(float(variance[0]) - controls, 0.0),
                       specialists_sd=float(np.sqrt(variance[0])), controls_sd=float(np.sqrt(controls)),
                       dropped=dropped)


@dataclass(frozen=True)
class GroupComparison:
    """A group's statistic against matched, adjusted control groups.

    ``observed`` the group's value as measured and ``tested`` the value the test uses (``observed``
    less the sampling bias gap, when ``sampling`` was given); ``adjusted`` ``[n]`` the matched draws
    moved to the group's features (widened by the excess sampling variance); ``p`` one-sided in
    ``direction``; ``effect`` and ``effect_ci`` in SDs of the adjusted null and ``shift_ci`` in the
    statistic's units, positive in the claim's direction (location-shift interval at
    ``ci_level``); ``unmatched_*`` the plain comparison of ``observed`` with uniform groups;
    ``coefficients`` the adjustment slope per feature; ``extrapolation`` how far the fit moved the matched
    centre, |adjusted centre − matched mean| in SDs of the adjusted null; ``beyond_support`` the factor
    features of the group outside every control group's (``ControlFit.beyond_support``).
    """

    observed: float
    tested: float
    direction: Direction
    null: np.ndarray
    adjusted: np.ndarray
    p: float
    effect: float
    effect_ci: tuple[float, float]
    shift_ci: tuple[float, float]
    ci_level: float
    unmatched: np.ndarray
    unmatched_p: float
    unmatched_effect: float
    coefficients: dict[str, float]
    sampling: SamplingGap | None = None
    extrapolation: float = 0.0
    beyond_support: tuple[str, ...] = ()

    def null_band(self) -> tuple[float, float]:
        """The adjusted null's central interval at ``ci_level`` (statistic's units)."""
        tail = (1 - self.ci_level) / 2
        lo, hi = np.quantile(self.adjusted, [tail, 1 - tail])
        return float(lo), float(hi)

    def effect_band(self) -> tuple[float, float]:
        """The adjusted null's central interval at ``ci_level`` in effect units (SDs, claim direction)."""
        sign = 1.0 if self.direction == "greater" else -1.0
        z = sign * (self.adjusted - np.median(self.adjusted)) / np.std(self.adjusted, ddof=1)
        tail = (1 - self.ci_level) / 2
        lo, hi = np.quantile(z, [tail, 1 - tail])
        return float(lo), float(hi)


def _standardised(observed: float, null: np.ndarray, sign: float) -> float:
    sd = float(np.std(null, ddof=1))
    return float(sign * (observed - np.median(null)) / sd) if sd > 0 else float("nan")


def compare(observed: float, x_group: np.ndarray, fit: ControlFit, direction: Direction, level: float,
            sampling: SamplingGap | None = None) -> GroupComparison:
    """Compare one group's ``observed`` statistic (features ``x_group``) with ``fit``, corrected for its
    ``sampling`` gap when given (module docstring, step 5)."""
    if not np.isfinite(observed):
        raise ValueError("the group statistic is not finite for the group under test")
    tested = observed
    if sampling is not None:
        tested = observed - sampling.bias
        fit = replace(fit, centre_variance=fit.centre_variance + sampling.excess_variance)
    adjusted = fit.adjusted(x_group)
    sign = 1.0 if direction == "greater" else -1.0
    tail = (1 - level) / 2
    q_lo, q_hi = np.quantile(adjusted, [tail, 1 - tail])
    shift = sorted((sign * (tested - q_hi), sign * (tested - q_lo)))
    sd = float(np.std(adjusted, ddof=1))
    effect_ci = (shift[0] / sd, shift[1] / sd) if sd > 0 else (float("nan"), float("nan"))
    return GroupComparison(
        observed=float(observed), tested=float(tested), direction=direction, null=fit.null, adjusted=adjusted,
        p=empirical_p(tested, adjusted, direction), effect=_standardised(tested, adjusted, sign),
        effect_ci=(float(effect_ci[0]), float(effect_ci[1])), shift_ci=(float(shift[0]), float(shift[1])),
        ci_level=level, unmatched=fit.uniform, unmatched_p=empirical_p(observed, fit.uniform, direction),
        unmatched_effect=_standardised(observed, fit.uniform, sign),
        coefficients={name: float(c) for name, c in zip(fit.names, fit.coef)}, sampling=sampling,
        extrapolation=float(abs(fit.centre(x_group) - np.mean(fit.null)) / sd) if sd > 0 else float("inf"),
        beyond_support=fit.beyond_support(x_group),
    )


def compare_groups(statistic: GroupStatistic, adjustment: Adjustment, matched: MatchedGroups,
                   direction: Direction, level: float, seed: int, sampling: SamplingGap | None = None
                   ) -> GroupComparison:
    """``statistic`` of ``matched.specialists`` against the matched groups, with the ``adjustment`` (module
    docstring); ``sampling`` the specialists' sampling gap (step 5), when the statistic is estimated from
    positions."""
    fit = fit_controls(statistic, adjustment, matched, seed)
    spec = matched.specialists
    return compare(float(statistic(spec[None])[0]), adjustment.features(spec), fit, direction, level, sampling)
