"""Claims C8–C9: specialists' weight spectra are more heavy-tailed, and the separation grows in training.

The statistic is the authors' group Hill index (``harness.analysis.spectra``) of the
specialists' rows of every final-MLP matrix — the read rows (``read``, or ``gate`` and ``up`` for
a gated MLP) and the write rows: one rule for every architecture, Holm across the matrices.
Its scale depends on n, d and k, so it is never compared raw: the specialists stand against
matched control groups of the same size (``harness.analysis.groups``), and the effect is in
null SDs. WeightWatcher's α of each whole matrix and the raw index are reported beside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.analysis.factors import layer_factors
from harness.analysis.groups import Adjustment, ControlFit, compare, fit_controls
from harness.analysis.spectra import RowGroups, hill_k
from harness.analysis.stats import bootstrap_indices, holm, summarize_null
from harness.claims.activation import group_setting
from harness.claims.evidence import Evidence, Trajectory, memoized, settings_key
from harness.claims.influence import trend_record
from harness.claims.registry import CLAIMS, claim, headline
from harness.claims.settings import ci_level
from harness.claims.specialists import select_specialists, top_k_size
from harness.records import ClaimRecord

# The adjustment for the matched groups is quadratic in the covariate scores (harness.analysis.groups, step 4):
# a row's share of a layer-wide direction can grow faster than linearly with its write norm, and a line
# fitted to the controls then under-corrects specialists selected on write norm (C8 v3: 41–68% supported).
# It also regresses on the row correlations the matrix's own common directions predict for a group
# (harness.analysis.factors): a share that follows something no covariate sees (the read norm, a power of
# the activation variance) fooled C8 v4 61–100% of the time.
ADJUSTMENT_DEGREE = 2
_SETTINGS = ("alpha", "seed", "n_null", "hill_k_fraction", "selection_fraction", "specialist_fraction",
             "min_specialists", "match_neighbours", "match_max_smd", "layer_factors")


def _tail_statistic(rows: np.ndarray, k_fraction: float):
    """γ = 1/α of the groups' Hill index: the mean log gap of the top eigenvalues over the (k+1)-th. α itself
    is very heavy-tailed for small groups (k = 1 at 16 neurons: α = 1/ln(λ₁/λ₂) explodes when the two top
    eigenvalues meet), which wrecks a linear adjustment and a SD; γ is a bounded mean of logs. Larger γ is a
    heavier tail."""
    row_groups = RowGroups(rows)

    def statistic(groups: np.ndarray) -> np.ndarray:
        return 1.0 / row_groups.hill_alphas(groups, k_fraction)
    return statistic


@claim(
    "C8", "specialists_heavy_tailed", scope="subject", rule_version=5,
    statement="Specialist weight spectra are more heavy-tailed than those of comparable neurons.",
    rule="the tail index γ = 1/α of the group Hill estimate of the specialists' rows of every final-MLP matrix "
         "(read or gate+up, and write) against matched control groups of the same size, adjusted quadratically in "
         "their covariate scores and linearly in the row correlations the matrix's common directions predict for "
         "them (cross-fitted, at most layer_factors); a matrix whose specialists' predicted correlations lie outside "
         "those of every control group is not tested (the adjusted null would be an extrapolation): supported when "
         "the specialists' γ is higher (α lower) with Holm-adjusted empirical p < alpha on at least one matrix; "
         "contradicted when every matrix is tested and on each the 1 − 2α location-shift interval of the effect lies "
         "below c8_min_z null SDs; inconclusive otherwise, when no matrix is tested or when matching fails.",
    effect="tail index γ = 1/α above matched groups by ≥ c8_min_z null SDs",
    paper="α = 1.57–4.30 vs control 6.37–9.33 (abstract; the raw index, whose scale depends on n, d and k)",
    settings=(*_SETTINGS, "c8_min_z"),
)
def specialists_heavy_tailed(source: Evidence, settings: dict[str, Any]) -> ClaimRecord:
    from harness.claims.activation import start_group_record

    record, group = start_group_record("C8", source, settings)
    if group is None:
        return record
    level, alpha, minimum = ci_level(settings), settings["alpha"], settings["c8_min_z"]
    matrices = source.mlp_weights().matrices()
    spec = group.matched.specialists
    width = min(rows.shape[1] for rows in matrices.values())
    if width <= spec.size:
        record.undecided("rows too narrow for the group",
                         f"{source.label}: the rows are {width} wide, not wider than the {spec.size} specialists: "
                         "their group spectrum has no tail to estimate (the Hill index needs d > n)")
        return record
    comps = {}
    for name in matrices:
        comps[name] = compare_groups_on(source, name, group, settings)[3]
        c = comps[name]
        record.statistics.update({f"alpha_{name}": 1.0 / c.observed,
                                  f"alpha_{name}_null_median": 1.0 / float(np.median(c.adjusted)),
                                  f"gamma_{name}": c.observed, f"alpha_{name}_effect": c.effect,
                                  f"alpha_{name}_extrapolation": c.extrapolation})
        record.ci[f"alpha_{name}_effect"] = list(c.effect_ci)
        record.ci_levels[f"alpha_{name}_effect"] = level
        record.p_values.update({f"alpha_{name}": c.p, f"alpha_{name}_unmatched": c.unmatched_p})
        record.null[f"alpha_{name}"] = summarize_null(c.adjusted)
        record.series.update({f"null_alpha_{name}": (1.0 / c.adjusted).tolist(), f"observed_alpha_{name}": 1.0 / c.observed})
    inside = {k: c for k, c in comps.items() if not c.beyond_support}
    record.details["beyond_support"] = {k: list(c.beyond_support) for k, c in comps.items() if c.beyond_support}
    record.details.update(hill_k=hill_k(spec.size, settings["hill_k_fraction"]),
                          weightwatcher_layer_alpha=source.layer_alphas(),
                          note="raw Hill index (no +1), comparable with the papers only at equal n, d and k")
    record.sample_sizes.update(d_model=int(next(iter(matrices.values())).shape[1]))
    if not inside:
        record.undecided("the specialists' rows share the layer's common directions beyond every control group",
                         f"{source.label}: on every matrix the row correlations the layer's common directions predict "
                         "for the specialists lie outside those of every control group, so the adjusted null would "
                         f"be an extrapolation ({record.details['beyond_support']})")
        return record
    holm_p = dict(zip(inside, holm([c.p for c in inside.values()])))
    record.details["holm_across_matrices"] = holm_p
    best = min(inside, key=lambda k: holm_p[k])
    c = comps[best]
    record.headline = headline(f"Hill α of the {best} rows below matched groups", c.effect, c.effect_ci, level,
                               null_band=c.effect_band(), smallest_effect=minimum, paper=CLAIMS["C8"].paper,
                               scale_note=f"null SDs of γ = 1/α; raw α {1 / c.observed:.2f} vs matched median "
                                          f"{1 / np.median(c.adjusted):.2f} (n = {spec.size}) — the papers' raw values "
                                          "are on another n and d", units="null SDs")
    record.decide(
        {"lower_alpha_holm": min(holm_p.values()) < alpha},
        {"every_matrix_below_smallest_effect": len(inside) == len(comps)
         and all(v.effect_ci[1] < minimum for v in comps.values())},
        f"{source.label}: Hill α of {spec.size} specialists vs matched groups — " + "; ".join(
            f"{k}: {1 / v.observed:.2f} vs {1 / np.median(v.adjusted):.2f} ({v.effect:+.2f} SD, Holm p {holm_p[k]:.3g})"
            if k in inside else f"{k}: not tested (its common-direction features lie beyond every control group)"
            for k, v in comps.items()) + f"; paper: {CLAIMS['C8'].paper}",
    )
    return record


def compare_groups_on(source: Evidence, name: str, group, settings: dict[str, Any]):
    """The specialists' tail index γ on the rows ``[d_mlp, d]`` of ``source``'s final-MLP matrix ``name`` against the
    group setting's matched groups: the statistic, the adjustment, the fitted controls and the comparison (memoized
    per matrix and group, so C8 and C9 at one checkpoint fit the controls once)."""
    def make():
        rows = source.mlp_weights().matrices()[name]
        statistic = _tail_statistic(rows, settings["hill_k_fraction"])
        pool = np.setdiff1d(group.covariates.usable, spec)
        adjustment = Adjustment(group.covariates, ADJUSTMENT_DEGREE,
                                layer_factors(rows.T, pool, settings["layer_factors"], settings["seed"]))
        fit = fit_controls(statistic, adjustment, group.matched, settings["seed"])
        comparison = compare(float(statistic(spec[None])[0]), adjustment.features(spec), fit, "greater",
                             ci_level(settings))
        return statistic, adjustment, fit, comparison
    spec = group.matched.specialists
    key = settings_key(f"tail_comparison:{name}:{group.specialists.rule}:{spec.tolist()}", settings)
    return memoized(source, key, make)


def standardised_separation(source: Evidence, settings: dict[str, Any]) -> tuple[float, np.ndarray]:
    """The specialists' Hill-α effect (mean over the matrices where the adjustment does not extrapolate — whose
    factor features lie within the control groups' — null SDs, positive = heavier-tailed) at one checkpoint with
    the group size fixed, and its bootstrap: the selection half's sequences are
    resampled (the same draws at every checkpoint), the top-K reselected, and each resampled group
    compared with the same matched null moved to its covariates."""
    d_mlp = source.mlp_weights().write.shape[0]
    spec = select_specialists(source, settings, fixed_size=top_k_size(d_mlp, settings))
    group = group_setting(source, settings, spec)
    level = ci_level(settings)
    fits: dict[str, tuple[Any, Adjustment, ControlFit]] = {}
    effects = []
    for name in source.mlp_weights().matrices():
        statistic, adjustment, fit, comparison = compare_groups_on(source, name, group, settings)
        if not comparison.beyond_support:
            fits[name] = (statistic, adjustment, fit)
            effects.append(comparison.effect)
    if not fits:
        raise ValueError("on every matrix the specialists' common-direction features lie beyond every control group")
    influence = source.rare_influence()
    a = spec.selection_sequences
    draws = a[bootstrap_indices(a.size, settings["n_bootstrap"], settings["seed"])]
    curves = influence.resampled(draws)                                     # [B, d_mlp]
    usable = np.isin(np.arange(curves.shape[1]), group.covariates.usable)
    ranked = np.argsort(-np.where(np.isfinite(curves) & usable[None], curves, -np.inf), axis=1, kind="stable")
    ids = np.sort(ranked[:, : spec.size], axis=1)                          # [B, K] reselected groups
    boot = np.zeros(ids.shape[0])
    for statistic, adjustment, fit in fits.values():
        adjusted = np.stack([fit.adjusted(x) for x in adjustment.features(ids)])            # [B, n_null]
        boot += (statistic(ids) - np.median(adjusted, axis=1)) / np.std(adjusted, axis=1, ddof=1)
    boot /= len(fits)
    return float(np.mean(effects)), boot


@claim(
    "C9", "tails_grow_in_training", scope="trajectory", rule_version=6,
    statement="The spectral separation between specialists and comparable neurons grows through training.",
    rule="at each checkpoint the top-K specialists (K fixed along the trajectory) are compared with matched "
         "groups and their Hill-tail effect standardised (mean over the matrices C8's rule tests, null SDs; a "
         "checkpoint where it tests none is dropped); supported when the "
         "1 − 2α CI of the late − early change (bootstrap resampling the selection sequences jointly across "
         "checkpoints widened by the null variance, or t over training seeds) lies above 0, C8 is not "
         "supported at the first checkpoint (the separation arose in training) and C8 is supported at the last; "
         "contradicted when the CI lies below c9_min_change or C8 is contradicted at the last; "
         "inconclusive with fewer than min_checkpoints distinct checkpoints.",
    effect="late − early change of the standardised separation ≥ c9_min_change (null SDs)",
    paper="\"grows throughout training\" (abstract)",
    settings=(*_SETTINGS, "n_bootstrap", "trend_fraction", "c9_min_change", "min_checkpoints", "c8_min_z"),
)
def tails_grow_in_training(trajectory: Trajectory, settings: dict[str, Any]) -> ClaimRecord:
    record = CLAIMS["C9"].new_record(trajectory.label, settings)
    return trend_record(record, trajectory, settings, standardised_separation, "c9_min_change",
                        "standardised spectral separation", CLAIMS["C9"].paper, "C8")
