"""Claims C5–C6: specialists in activation space — dispersed across the layer's communities, yet coordinated.

Both read the final-MLP activations at rare-target positions of the *test* half of the
sequences (specialists were selected on the other half, ``harness.claims.specialists``) and
compare the specialists with matched control groups, adjusted for what remains of the
covariate imbalance (``harness.analysis.groups``). When the specialists' covariates cannot be
matched (an SMD above ``match_max_smd``) the claim is inconclusive: the specialists cannot be
told apart from their activation statistics.

C5 asks whether the specialists share the layer's Louvain communities more than matched groups do (κ), and
contradicts the claim only when that concentration also replicates: co-assignment counted on the partitions of
two halves of the test sequences, a pair counting when it shares a community in both
(``harness.analysis.coactivation.coassignment``). Specialists whose noise shares a volatility
(``harness.calibration.groups``; no structure planted, the claim true) cross the edge threshold together by chance,
Louvain co-assigns them, and C5 v6, on one partition, *contradicted* them in 5 of 30 draws (16% of 200); in the
halves the chance edges do not recur. Support replicates too (C5 v8): κ's interval must lie inside the margin in
the layer's partition *and* in each half's own partition. One partition of the layer sometimes misses a weak
module whose edges sit at the threshold (a cohesive module of 16 at module loading 0.5: v7 supported 7.0% of 200
draws), and a half's partition misses it independently: asking both brought that to 1%. Deciding κ on the halves
alone instead lost weak modules (the same module supported 7 of 20 times against 1 of 20 on one partition), whose
edges the halves' noisier correlations break too.

C6 tests coordination beyond the layer's common factors: each pair's correlation less the one the
layer's factors imply (``harness.analysis.instruments``, the triad estimate with instruments from the
rest of the layer, their weights fitted on the selection half of the sequences). Raw correlations failed the second
review's unsaturated global loadings (ln λ ≈ −2, −3: top-loading specialists correlate by λ_i λ_j, convexly
beyond every matched control; C6 v4 supported 67.5% and 82.5%), and so did regressing on factor-predicted
correlations or the layer's mean direction (their span misses the part of the factor the specialists
share: 15–62%); the excess correlation is ≈ 0 for any group the null describes, whatever its loadings.
The instruments leave out the group's partners: neurons ranked just below the top-K cut whose own excess
correlation with the specialists, on the selection half, stands out from the pool's. Kept, a planted member the
noisy selection missed is an instrument for the group's own factor, and the triad estimate counts the
group's coordination as the layer's (C6 v6: power 0.94 at coordination 0.3 but 0.64 at 0.5 and 0.7;
supported 15 of 15 times with ≤ 1 planted neuron missed, 11 of 25 with more).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.analysis.coactivation import (
    GroupActivations,
    beyond_one_factor,
    community_layout,
    coassignment,
    group_correlations,
    layer_partitions,
    louvain_modularity,
    prepare_activations,
    resampled_correlations,
)
from harness.analysis.dimension import (
    eigenvalues,
    mean_offdiagonal,
    n_components,
    participation_ratio,
    split_half_participation_ratio,
)
from harness.analysis.factors import factor_residuals
from harness.analysis.instruments import (
    LayerInstruments,
    bridges,
    excess_correlations,
    layer_instruments,
    outlying_partners,
)
from harness.analysis.groups import (
    SAMPLING_GROUPS,
    Adjustment,
    GroupComparison,
    GroupStatistic,
    MatchedGroups,
    NeuronCovariates,
    SamplingGap,
    compare_groups,
    matched_groups,
    neuron_covariates,
    sampling_gap,
)
from harness.analysis.stats import bootstrap_indices, empirical_p, inside_margin, summarize_null
from harness.claims.evidence import Evidence, memoized, settings_key
from harness.claims.registry import CLAIMS, claim, headline
from harness.claims.settings import ci_level
from harness.claims.specialists import Specialists, planted_recovery, seeded_split, select_specialists
from harness.records import ClaimRecord

_GROUP_SETTINGS = ("seed", "n_null", "selection_fraction", "specialist_fraction", "min_specialists",
                   "match_neighbours", "match_max_smd")


@dataclass(frozen=True)
class GroupSetting:
    """Everything a group claim compares with: the specialists, the test-half activations ``x``
    ``[n_test_positions, d_mlp]`` with their sequence ids ``seq`` ``[n_test_positions]``, the covariates,
    the matched control groups, and the selection half's activations ``x_selection``
    ``[n_selection_positions, d_mlp]`` (C6 fits its instruments' weights there, on data the test does not use)."""

    specialists: Specialists
    x: np.ndarray
    seq: np.ndarray
    covariates: NeuronCovariates
    matched: MatchedGroups
    x_selection: np.ndarray
    seq_selection: np.ndarray

    def balance_fields(self) -> dict[str, Any]:
        return {"smd": self.matched.smd, "max_abs_smd": self.matched.max_abs_smd,
                "match_neighbours": self.matched.n_neighbours}


def group_setting(source: Evidence, settings: dict[str, Any], specialists: Specialists | None = None) -> GroupSetting:
    """Specialists, test-half activations ``[n_test_positions, d_mlp]``, covariates and matched groups (memoized per
    size rule and ids, so that C8 and C9 at a checkpoint share one setting when they select the same neurons)."""
    spec = specialists or select_specialists(source, settings)

    def make() -> GroupSetting:
        x, seq = source.rare_activations()
        in_test = np.isin(seq, spec.test_sequences)
        x_test = x[in_test]
        cov = neuron_covariates(x_test, source.mlp_weights().write_norm, spec.ids)
        usable = spec.ids[np.isin(spec.ids, cov.usable)]
        matched = matched_groups(cov, usable, settings["n_null"], settings["match_neighbours"], settings["seed"])
        seq = np.asarray(seq)
        return GroupSetting(spec, x_test, seq[in_test], cov, matched, x[~in_test], seq[~in_test])
    return memoized(source, settings_key(f"group_setting:{spec.rule}:{spec.ids.tolist()}", settings), make)


def start_group_record(claim_id: str, source: Evidence, settings: dict[str, Any]) -> tuple[ClaimRecord, GroupSetting | None]:
    """A record with the specialists, positions and balance filled in, and the group setting; the setting
    is None (and the record inconclusive) with fewer than 2 test sequences (C5 and C6 split them in two) or when
    matching fails the balance check."""
    record = CLAIMS[claim_id].new_record(source.label, settings)
    group = group_setting(source, settings)
    record.sample_sizes.update(source.sample_sizes(), group_size=group.specialists.size,
                               test_positions=int(group.x.shape[0]), null_groups=int(group.matched.groups.shape[0]),
                               layer_neurons=int(group.x.shape[1]))
    record.seeds.update(split=settings["seed"], null_groups=settings["seed"])
    record.details.update(specialists=group.specialists.describe(), balance=group.balance_fields())
    found = planted_recovery(source, group.specialists)
    if found is not None:
        record.details["planted_recovery"] = found
    record.statistics["max_abs_smd"] = group.matched.max_abs_smd
    n_test = int(np.unique(group.seq).size)
    record.sample_sizes["test_sequences"] = n_test
    if n_test < 2:
        record.undecided("fewer than 2 test sequences",
                         f"{source.label}: the test half holds {n_test} sequence: C5 and C6 compare two halves of "
                         f"the test sequences (selection_fraction {settings['selection_fraction']} of "
                         f"{source.n_sequences} sequences)")
        return record, None
    if group.matched.max_abs_smd > settings["match_max_smd"]:
        worst = max(group.matched.smd, key=lambda k: abs(group.matched.smd[k]))
        record.undecided(
            "the specialists cannot be matched on their activation statistics",
            f"{source.label}: the specialists' {worst} differs from their nearest matched controls by "
            f"{group.matched.smd[worst]:+.2f} layer SDs (limit {settings['match_max_smd']}): their "
            f"{CLAIMS[claim_id].name.replace('_', ' ')} cannot be separated from their activation statistics",
        )
        return record, None
    return record, group


def comparison_fields(record: ClaimRecord, name: str, comp: GroupComparison) -> None:
    """Put one comparison into a record: value, effect with CI, p raw and unmatched, null summary, figure data."""
    record.statistics.update({name: comp.observed, f"{name}_effect": comp.effect,
                              f"{name}_unmatched_effect": comp.unmatched_effect})
    record.ci[f"{name}_effect"] = list(comp.effect_ci)
    record.ci_levels[f"{name}_effect"] = comp.ci_level
    record.p_values.update({name: comp.p, f"{name}_unmatched": comp.unmatched_p})
    record.null[name] = summarize_null(comp.adjusted)
    record.details[f"{name}_adjustment"] = comp.coefficients
    record.statistics[f"{name}_extrapolation"] = comp.extrapolation
    if comp.sampling is not None:
        record.statistics[f"{name}_tested"] = comp.tested
        record.details[f"{name}_sampling"] = comp.sampling.fields()
    record.series.update({f"null_{name}": comp.adjusted.tolist(), f"observed_{name}": comp.observed,
                          f"unmatched_{name}": comp.unmatched.tolist()})


# -- C5 -----------------------------------------------------------------------------------------
@claim(
    "C5", "specialists_not_modular", scope="subject", rule_version=8,
    statement="Specialist neurons are spatially dispersed across the final layer, not a module.",
    rule="Louvain communities of the whole layer's co-activation graph (test-half activations, edges |r| ≥ "
         "coactivation_threshold, louvain_seeds runs); κ = chance-corrected co-assignment of the specialists "
         "(0 = as matched random groups, 1 = one community). Modules of their own: the specialists' residual "
         "covariances beyond the layer's common factors (cross-fitted on the other neurons, at most c5_factors per "
         "part) less one factor of their own leave an off-diagonal energy (a split-half cross product over the test "
         "sequences) that several small modules, which the layer's partition cannot resolve, raise and one "
         "coordinated group does not. Supported when the 1 − 2α interval "
         "of κ lies inside ±c5_margin, in the layer's partition and in the partition of each of two halves of the "
         "test sequences, and that energy is not above the matched groups' (one-sided p ≥ alpha; a "
         "guard on support only); contradicted when specialists are significantly concentrated (p < alpha) and "
         "not equivalent, both in the layer's partition and in the co-assignment that replicates in the partitions "
         "of two halves of the test sequences (a pair counting when it shares a community in both); inconclusive "
         "otherwise, when the layer has a single community, or when matching fails. The papers' within-group Q is "
         "reported beside it.",
    effect="|κ| < c5_margin (equivalence)",
    paper="Q = 0.05–0.11 vs control 0.04–0.09, p > 0.4 (abstract)",
    settings=("alpha", "louvain_seeds", "coactivation_threshold", "coactivation_graph", "c5_margin",
              "c5_factors", "n_null_within_q", *_GROUP_SETTINGS),
)
def specialists_not_modular(source: Evidence, settings: dict[str, Any]) -> ClaimRecord:
    record, group = start_group_record("C5", source, settings)
    if group is None:
        return record
    level, alpha, margin = ci_level(settings), settings["alpha"], settings["c5_margin"]

    def concentration(labels: np.ndarray | list[np.ndarray]) -> GroupComparison:
        return compare_groups(lambda g: coassignment(labels, g), Adjustment(group.covariates), group.matched,
                              "greater", level, settings["seed"])

    labels = layer_communities(group, settings)
    comp = concentration(labels)
    expected = float(np.mean(comp.adjusted))
    n_communities = float(np.mean([np.unique(row).size for row in labels]))
    record.statistics.update(coassignment=comp.observed, coassignment_expected=expected,
                             communities=n_communities)
    record.sample_sizes["louvain_seeds"] = int(settings["louvain_seeds"])
    x, y = community_layout(labels[0], settings["seed"])
    record.series.update(node_x=x.tolist(), node_y=y.tolist(), node_community=labels[0].tolist(),
                         specialist_ids=group.specialists.ids.tolist())
    _within_group_q(record, group, settings)
    modules_p = _modules_beyond_one_factor(record, group, settings)
    judged = _kappa(comp)
    if judged is None:
        record.undecided("the layer's graph is one community",
                         f"{source.label}: every matched group lies in one community (co-assignment 1): "
                         "dispersal cannot be judged at this threshold")
        return record
    kappa, ci, null_kappa = judged
    _kappa_fields(record, "kappa", kappa, ci, level)
    record.p_values["kappa"] = comp.p
    record.p_values["kappa_unmatched"] = comp.unmatched_p
    record.null["kappa"] = summarize_null(null_kappa)
    record.series.update(null_kappa=null_kappa.tolist(), observed_kappa=kappa)
    equivalent = inside_margin(ci, margin)
    concentrated = comp.p < alpha and not equivalent
    decisive = equivalent and modules_p >= alpha    # the halves can withhold support only where it would be given
    halves = ([layer_communities(group, settings, rows) for rows in _sequence_halves(group.seq, settings["seed"])]
              if decisive or concentrated else [])
    if decisive:
        each = [_kappa(concentration(labels)) for labels in halves]
        for h, judged_half in enumerate(each, 1):
            if judged_half is not None:
                _kappa_fields(record, f"kappa_half_{h}", judged_half[0], judged_half[1], level)
        equivalent = all(j is not None and inside_margin(j[1], margin) for j in each)
        record.details["equivalence_in_halves"] = (
            "κ's interval inside the margin in each half's partition" if equivalent else
            "not replicated: κ's interval leaves the margin (or every matched group shares one community) in the "
            "partition of a half of the test sequences")
    replication = "not needed: the layer's partition does not show the specialists concentrated"
    if concentrated:
        replicated = concentration(halves)
        judged = _kappa(replicated)
        if judged is None:
            concentrated = False
            replication = "not judged: every matched group shares one community in both halves' partitions"
        else:
            kappa_r, ci_r, _ = judged
            _kappa_fields(record, "kappa_replicated", kappa_r, ci_r, level)
            record.p_values["kappa_replicated"] = replicated.p
            concentrated = replicated.p < alpha and not inside_margin(ci_r, margin)
            replication = (f"κ {kappa_r:+.3f}, {level:.0%} CI [{ci_r[0]:+.3f}, {ci_r[1]:+.3f}], p = "
                           f"{replicated.p:.3g} from pairs sharing a community in the partitions of both halves of "
                           "the test sequences")
    record.details["replication_in_halves"] = replication
    record.headline = headline("κ, chance-corrected co-assignment of specialists", kappa, ci, level,
                               null_band=tuple(np.quantile(null_kappa, [(1 - level) / 2, (1 + level) / 2])),
                               smallest_effect=margin, paper=CLAIMS["C5"].paper,
                               scale_note="the papers report within-group modularity Q (in this record's "
                                          "details), which cannot see a module; κ is dimensionless",
                               units="κ")
    record.decide(
        {"dispersed_equivalent": equivalent, "no_modules_beyond_one_factor": modules_p >= alpha},
        {"concentrated": concentrated},
        f"{source.label}: {group.specialists.size} specialists share a Louvain community in {comp.observed:.3f} of "
        f"pairs vs {expected:.3f} for matched groups (κ = {kappa:+.3f}, {level:.0%} CI [{ci[0]:+.3f}, {ci[1]:+.3f}], "
        f"margin ±{margin}, p = {comp.p:.3g}; {n_communities:.0f} communities; equivalence in each half: "
        f"{record.details.get('equivalence_in_halves', 'not asked: no support to withhold')}; "
        f"concentration in both halves: {replication}); "
        f"energy beyond one factor "
        f"{record.statistics['beyond_one_factor']:.3f} vs matched {record.statistics['beyond_one_factor_matched']:.3f} "
        f"(one-sided p {modules_p:.3g}); within-group Q {record.details['papers_within_group_q']['q_specialists']:.3f} "
        f"vs matched {record.details['papers_within_group_q']['q_matched_median']}; paper: {CLAIMS['C5'].paper}",
    )
    return record


def layer_communities(group: GroupSetting, settings: dict[str, Any], rows: np.ndarray | slice = slice(None)
                      ) -> np.ndarray:
    """C5's Louvain partitions ``[louvain_seeds, d_mlp]`` of the layer's co-activation graph on the test-half
    positions ``rows`` (all by default)."""
    kind = "signed" if settings["coactivation_graph"] == "signed" else "thresholded"
    return layer_partitions(group.x[rows], kind=kind, threshold=settings["coactivation_threshold"],
                            seeds=range(settings["louvain_seeds"]))


def _kappa_fields(record: ClaimRecord, name: str, kappa: float, ci: tuple[float, float], level: float) -> None:
    """Put one κ of C5 (the layer's, a half's, the replicated one) into the record: value and interval."""
    record.statistics[name] = kappa
    record.ci[name] = list(ci)
    record.ci_levels[name] = level


def _kappa(comp: GroupComparison) -> tuple[float, tuple[float, float], np.ndarray] | None:
    """κ = (co-assignment − chance) / (1 − chance) of a co-assignment comparison, chance the adjusted matched
    draws' mean: the specialists' κ, its location-shift interval and the null draws' κ ``[n_null]``; None when every
    matched group lies in one community (chance 1: dispersal cannot be judged)."""
    expected = float(np.mean(comp.adjusted))
    if expected >= 1.0 - 1e-9:
        return None
    scale = 1.0 - expected
    return ((comp.observed - expected) / scale, (comp.shift_ci[0] / scale, comp.shift_ci[1] / scale),
            (comp.adjusted - expected) / scale)


def _modules_beyond_one_factor(record: ClaimRecord, group: GroupSetting, settings: dict[str, Any]) -> float:
    """One-sided p of the specialists' modules beyond one factor above the matched groups' (C5's support guard).

    Every neuron's test-half activations less the layer's common factors (``factor_residuals``: factors
    cross-fitted on the usable non-specialists, at most ``c5_factors`` per part); each group's residual
    covariances (in units of the neurons' SDs: r_ij less what the factors explain) go into ``beyond_one_factor``
    as a split-half cross product over two seeded halves of the test sequences. The layer's own communities,
    which any random group samples, are among its factors and cancel; modules of the specialists' own are not
    (a block of 4 lies below the Marchenko–Pastur edge of a layer part) and remain. The cross product keeps a
    group whose correlations are noisier (per-sequence or volatility-shared noise) from looking modular: the
    same energy from one sample withheld support from such dispersed specialists in 77–100% of draws (the
    review of this rule's first cut). Partial correlations (residuals rescaled to unit variance) were tried and
    not adopted: they magnify what the factors miss of high-loading neurons, and coordinated groups lost support
    in 23 of 30 draws.
    """
    spec = group.matched.specialists
    pool = np.setdiff1d(group.covariates.usable, spec)
    residuals = factor_residuals(group.x, pool, settings["c5_factors"], settings["seed"])
    sd = residuals.std(axis=0)
    acts = prepare_activations(residuals, spec)
    halves = [acts.subset(rows) for rows in _sequence_halves(group.seq, settings["seed"])]
    def covariances(part: GroupActivations, groups: np.ndarray) -> np.ndarray:
        scale = sd[groups]
        return group_correlations(part, groups) * scale[..., :, None] * scale[..., None, :]
    def energy(groups: np.ndarray) -> np.ndarray:
        return beyond_one_factor(covariances(acts, groups),
                                 halves=(covariances(halves[0], groups), covariances(halves[1], groups)))
    observed = float(energy(spec[None])[0])
    null = energy(group.matched.groups)
    p = empirical_p(observed, null, "greater")
    record.statistics.update(beyond_one_factor=observed, beyond_one_factor_matched=float(np.median(null)))
    record.p_values["beyond_one_factor"] = p
    record.details["modules_beyond_one_factor"] = {"matched_groups": int(null.size),
                                                   "note": "split-half energy of the residual covariances beyond "
                                                           "the layer's factors, beyond one factor of the group's own"}
    return p


def _within_group_q(record: ClaimRecord, group: GroupSetting, settings: dict[str, Any]) -> None:
    """The papers' quantity, reported only: Q of the graph among the group's own neurons, and the median over
    ``n_null_within_q`` matched groups' (0 skips them). A single tight module scores Q ≈ 0; a random group
    samples the layer's own communities and scores as high as a group of weak modules (C5 v5 decided on it,
    and passed four modules of 4 at loading 0.7 in 10 of 40 draws)."""
    acts = prepare_activations(group.x, group.matched.specialists)
    kwargs = dict(kind="thresholded", threshold=settings["coactivation_threshold"],
                  seeds=range(settings["louvain_seeds"]))
    q_spec = louvain_modularity(group_correlations(acts, acts.specialists)[0], **kwargs).q
    others = group.matched.groups[: settings["n_null_within_q"]]
    q_null = np.array([louvain_modularity(c, **kwargs).q for c in group_correlations(acts, others)])
    finite = q_null[np.isfinite(q_null)]
    record.details["papers_within_group_q"] = {
        "q_specialists": q_spec, "q_matched_median": float(np.median(finite)) if finite.size else None,
        "groups": int(finite.size),
        "note": "Q among the group's own neurons: a single tight module scores 0, several small modules high",
    }


# -- C6 -----------------------------------------------------------------------------------------
@claim(
    "C6", "specialists_coordinated", scope="subject", rule_version=8,
    statement="Specialists show structured co-activation and reduced effective dimensionality.",
    rule="on test-half activations, each pair's correlation beyond the layer's common factors (observed r less the "
         "one the factors imply by the triad estimate, instruments from the rest of the layer with weights fitted "
         "on the selection half of the sequences, at most c6_factors per part; a neuron among the next group-size "
         "ones by selection influence whose excess correlation with the specialists on the selection half lies "
         "c6_partner_z robust SDs above the pool's is the group's partner and no instrument, so a factor only the "
         "specialists and their partners carry is the group's, not the layer's), against matched and adjusted "
         "control groups: the split-half participation ratio of those matrices (Σe² as Σ e^A e^B over the two "
         "halves) and their mean off-diagonal entry, each corrected for the specialists' own sampling noise "
         "(bootstrap over test sequences with the implied correlations recomputed: their bias beyond matched "
         "groups' subtracted, their excess variance added to the null's); supported when the 1 − 2α location-shift "
         "intervals of both effects (participation ratio lower, mean correlation higher) lie above c6_min_z null "
         "SDs, on at least c6_min_test_positions test positions; contradicted when the interval of either effect "
         "lies below c6_min_z null SDs; inconclusive otherwise or when matching fails.",
    effect="coordination above matched groups ≥ c6_min_z null SDs (both statistics)",
    paper="\"reduced effective dimensionality\" (abstract)",
    settings=("alpha", "variance_explained", "c6_min_z", "n_bootstrap", "c6_factors", "c6_min_test_positions",
              "c6_partner_z", *_GROUP_SETTINGS),
)
def specialists_coordinated(source: Evidence, settings: dict[str, Any]) -> ClaimRecord:
    record, group = start_group_record("C6", source, settings)
    if group is None:
        return record
    level, minimum = ci_level(settings), settings["c6_min_z"]
    acts = prepare_activations(group.x, group.matched.specialists)
    pool, partners, partner_z = _instrument_pool(group, settings)
    halves = _layer_halves(group, acts, pool, settings)

    excess: dict[bytes, list[np.ndarray]] = {}   # both statistics see the same control groups: compute once

    def excess_of(g: np.ndarray) -> list[np.ndarray]:
        key = np.ascontiguousarray(g).tobytes() + bytes(str(g.shape), "ascii")
        if key not in excess:
            excess[key] = [h.excess(g) for h in halves]
        return excess[key]

    def pr(g: np.ndarray) -> np.ndarray:
        return _participation_ratio(excess_of(g))

    def corr(g: np.ndarray) -> np.ndarray:
        return _mean_excess(excess_of(g))

    gaps = _sampling_gaps(group, halves, pr, corr, settings)
    adjustment = Adjustment(group.covariates)
    dim = compare_groups(pr, adjustment, group.matched, "less", level, settings["seed"], gaps["participation_ratio"])
    co = compare_groups(corr, adjustment, group.matched, "greater", level, settings["seed"], gaps["mean_corr"])
    comparison_fields(record, "participation_ratio", dim)
    comparison_fields(record, "mean_corr", co)
    spec_corr = group_correlations(acts, acts.specialists)
    spec_eigs = eigenvalues(spec_corr)[0]
    record.statistics["n_components"] = int(n_components(spec_eigs, settings["variance_explained"]))
    record.statistics["sample_participation_ratio"] = float(participation_ratio(spec_eigs))
    record.statistics["raw_mean_corr"] = float(mean_offdiagonal(spec_corr)[0])
    record.details["instruments_per_part"] = [list(h.instruments.sizes) for h in halves]
    record.details["partners_left_out_of_instruments"] = partners.tolist()
    record.details["partner_screen_z"] = np.round(partner_z, 2).tolist()
    record.statistics["partners_left_out"] = int(partners.size)
    record.series["spec_eigenvalues"] = spec_eigs.tolist()
    record.headline = headline("mean pairwise correlation beyond the layer's factors, above matched groups",
                               co.effect, co.effect_ci, level, null_band=co.effect_band(), smallest_effect=minimum,
                               paper=CLAIMS["C6"].paper,
                               scale_note="null SDs of matched, adjusted groups; the paper gives no number",
                               units="null SDs")
    record.decide(
        {"dimension_above_smallest_effect": dim.effect_ci[0] > minimum,
         "correlation_above_smallest_effect": co.effect_ci[0] > minimum,
         "enough_test_positions": record.sample_sizes["test_positions"] >= settings["c6_min_test_positions"]},
        {"dimension_below_smallest_effect": dim.effect_ci[1] < minimum,
         "correlation_below_smallest_effect": co.effect_ci[1] < minimum},
        f"{source.label}: participation ratio {dim.observed:.2f} vs matched {np.median(dim.adjusted):.2f} "
        f"(p = {dim.p:.3g}, {dim.effect:+.2f} SD); mean r beyond the layer's factors {co.observed:.3f} vs "
        f"{np.median(co.adjusted):.3f} "
        f"(p = {co.p:.3g}, {co.effect:+.2f} SD, CI [{co.effect_ci[0]:+.2f}, {co.effect_ci[1]:+.2f}]); unmatched "
        f"p {dim.unmatched_p:.3g} / {co.unmatched_p:.3g}; {group.specialists.size} specialists "
        f"({group.specialists.rule}); {record.sample_sizes['test_positions']} test positions (supported needs ≥ "
        f"{settings['c6_min_test_positions']}); paper: {CLAIMS['C6'].paper}",
    )
    return record


@dataclass(frozen=True)
class TestHalf:
    """One half of the test sequences: its activations ``acts``, their sequence ids ``seq`` ``[n_positions]``, and
    the layer's instruments measured there, their weights fitted on the selection half
    (``harness.analysis.instruments``)."""

    acts: GroupActivations
    seq: np.ndarray
    instruments: LayerInstruments

    def excess(self, groups: np.ndarray) -> np.ndarray:
        """Groups' correlations beyond the layer's factors on this half ``[n_groups, size, size]``."""
        groups = np.atleast_2d(groups)
        return self.instruments.excess(group_correlations(self.acts, groups), groups)

    def resampled_excess(self, group: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """One group's ``excess`` on bootstrap resamples of this half's sequences ``draws`` ``[B, n_units]``:
        neurons and instruments resampled together, the instruments' weights kept → ``[B, size, size]``."""
        inst = self.instruments
        columns = np.hstack([self.acts.x[:, group], inst.columns(group)])
        corr = resampled_correlations(columns, self.seq, np.arange(columns.shape[1]), draws)
        size = group.size
        return excess_correlations(corr[:, :size, :size], corr[:, :size, size:], inst.part[group],
                                   bridges(corr[:, size:, size:], inst.sizes, inst.n_obs))


def _sequence_halves(seq: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``[n_positions]`` (boolean) of two seeded halves (``seeded_split``) of the sequences ``seq``
    ``[n_positions]``."""
    units = np.unique(seq)
    first, second = seeded_split(units.size, 0.5, seed)
    return np.isin(seq, units[first]), np.isin(seq, units[second])


def _instrument_pool(group: GroupSetting, settings: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The neurons C6's instruments are built from ``[n_pool]`` — the usable non-specialists less the group's
    partners — those partners, and every candidate's z ``[n_candidates]``: the candidates are the next ``size``
    neurons by selection-half influence, the partners those whose excess correlation with the specialists, on the
    selection half (weights fitted on one half of its sequences, correlations on the other), is an outlier of the
    pool's (``harness.analysis.instruments.outlying_partners``, ``c6_partner_z``). A factor that only the
    specialists and their partners carry is thus the group's own, not the layer's: by the claim's terms a
    coordinated group of which the cut kept the top members."""
    spec, usable = group.matched.specialists, group.covariates.usable
    ranked = group.specialists.ranked
    candidates = ranked[np.isin(ranked, usable) & ~np.isin(ranked, spec)][: spec.size]
    fit, use = _sequence_halves(group.seq_selection, settings["seed"])
    partners, z = outlying_partners(group.x_selection[fit], group.x_selection[use], spec, candidates,
                                    np.setdiff1d(usable, np.union1d(spec, candidates)), settings["c6_factors"],
                                    settings["seed"], settings["c6_partner_z"])
    return np.setdiff1d(usable, np.union1d(spec, partners)), partners, z


def _layer_halves(group: GroupSetting, acts: GroupActivations, pool: np.ndarray, settings: dict[str, Any]
                  ) -> tuple[TestHalf, TestHalf]:
    """The test sequences split into two seeded halves, each with the instruments of ``pool``'s neurons, their
    weights fitted on the selection half's activations (other positions than either half's)."""
    rows = _sequence_halves(group.seq, settings["seed"])
    return tuple(TestHalf(acts.subset(rows[h]), group.seq[rows[h]],
                          layer_instruments(group.x_selection, group.x[rows[h]], pool, settings["c6_factors"],
                                            settings["seed"]))
                 for h in (0, 1))


def _participation_ratio(excess: list[np.ndarray], resampled: bool = False) -> np.ndarray:
    """C6's split-half participation ratio from the two halves' excess matrices ``[..., size, size]`` each; NaN
    where undefined on a bootstrap resample (``resampled``: ``_sampling_gaps`` drops it), an error on the data."""
    return split_half_participation_ratio(*excess, undefined_as_nan=resampled)


def _mean_excess(excess: list[np.ndarray]) -> np.ndarray:
    """C6's mean correlation beyond the layer's factors: the two halves' mean off-diagonal entries, averaged."""
    return np.mean([mean_offdiagonal(e) for e in excess], axis=0)


def _sampling_gaps(group: GroupSetting, halves: tuple[TestHalf, TestHalf], pr: GroupStatistic,
                   corr: GroupStatistic, settings: dict[str, Any]) -> dict[str, SamplingGap]:
    """C6's two statistics on the specialists and on ``SAMPLING_GROUPS`` matched groups, recomputed on
    ``n_bootstrap`` resamples of the test sequences (each half resampled within itself, the same resamples
    for every group; the factors' implied correlations recomputed on each): their sampling gaps
    (``harness.analysis.groups``, step 5). A resample on which the participation ratio is undefined for some
    group is left out of that statistic's gap only (the mean correlation is defined on every resample)."""
    groups = np.vstack([group.matched.specialists[None], group.matched.groups[:SAMPLING_GROUPS]])
    draws = [bootstrap_indices(np.unique(h.seq).size, settings["n_bootstrap"], settings["seed"] + i)
             for i, h in enumerate(halves)]
    resampled = {name: np.empty((settings["n_bootstrap"], groups.shape[0]))
                 for name in ("participation_ratio", "mean_corr")}
    for g, ids in enumerate(groups):
        excess = [h.resampled_excess(ids, d) for h, d in zip(halves, draws)]
        resampled["participation_ratio"][:, g] = _participation_ratio(excess, resampled=True)
        resampled["mean_corr"][:, g] = _mean_excess(excess)
    undefined = np.isnan(resampled["participation_ratio"]).any(axis=1)
    return {"participation_ratio": sampling_gap(resampled["participation_ratio"], pr(groups), undefined),
            "mean_corr": sampling_gap(resampled["mean_corr"], corr(groups))}
