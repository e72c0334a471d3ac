"""Claims C8–C9: heavy-tailed weight spectra of specialist neurons, and their growth in training."""

import numpy as np

from harness import spectra, trends


def _alpha_test(study, settings):
    w = study.final_mlp_weights()
    specialists = study.specialists(settings["min_segment_points"])
    return spectra.group_alpha_test(
        w["W_read"], w["W_write"], specialists, n_null=settings["n_null"], k_fraction=settings["hill_k_fraction"],
        seed=settings["seed"], verdict_matrix=study.architecture,
    )


def test_C8_specialists_heavy_tailed(study, settings, claim_record):
    record = claim_record("C8", study.subject.spec)
    result = _alpha_test(study, settings)
    record.add(result.record_fields())
    for m in (result.read, result.write):
        record.series[f"observed_alpha_{m.matrix}"] = m.alpha_spec
    record.thresholds.update(alpha=settings["alpha"], hill_k_fraction=settings["hill_k_fraction"])
    v = result.verdict
    record.decide(
        {"alpha_lower_than_null": v.p_lower < settings["alpha"]},
        f"{study.subject.spec}: Hill α of the {result.n_specialists} specialists' {v.matrix} rows {v.alpha_spec:.2f} vs "
        f"random groups median {v.null_summary['q50']:.2f} (one-sided p {v.p_lower:.3g}; "
        f"{'write' if v.matrix == 'read' else 'read'} rows: {(result.write if v.matrix == 'read' else result.read).alpha_spec:.2f}); "
        f"paper: {record.paper}",
    )
    assert record.verdict == "pass", record.message


def test_C9_tails_grow_in_training(trajectory, settings, claim_record):
    family = trajectory[0].subject.family
    record = claim_record("C9", family)
    steps, spec, null_median, separation, sizes, skipped = [], [], [], [], [], {}
    for s in trajectory:
        # The same null seed at every checkpoint pairs the separations across steps.
        try:
            v = _alpha_test(s, settings).verdict
        except ValueError as err:  # no fittable plateau, or too few specialists, at this checkpoint
            skipped[s.subject.step] = str(err)
            continue
        steps.append(s.subject.step); spec.append(v.alpha_spec); null_median.append(v.null_summary["q50"])
        separation.append(v.separation); sizes.append(v.spectrum.n)
    trend = trends.spearman_trend(np.array(separation), np.array(steps), settings["n_trend_permutations"],
                                  settings["seed"])
    record.statistics.update(spearman_rho=trend.rho, first_separation=separation[0],
                             final_separation=separation[-1], checkpoints=len(steps), verdict_matrix=v.matrix)
    record.p_values["spearman_rho"] = trend.p_value
    record.sample_sizes.update(checkpoints=len(steps), n_null_groups=settings["n_null"],
                               trend_permutations=trend.n_permutations)
    record.seeds.update(null_groups=settings["seed"], permutations=settings["seed"])
    record.thresholds.update(alpha=settings["alpha"])
    record.details.update(specialists_per_step=sizes, skipped_steps=skipped, step0_in_trend="excluded (ln 0 undefined)",
                          specialists="re-selected at every checkpoint (methods.md §4)")
    record.series.update(steps=steps, alpha_spec=spec, alpha_null_median=null_median, separation=separation)
    record.decide(
        {"rho_positive": trend.rho > 0, "trend_significant": trend.p_value < settings["alpha"]},
        f"{family}: Spearman ρ(median α_null − α_spec, ln step) {trend.rho:.2f} (permutation p {trend.p_value:.3g}) "
        f"over {trend.n} checkpoints, separation {separation[0]:.2f} → {separation[-1]:.2f}; paper: {record.paper}",
    )
    assert record.verdict == "pass", record.message
