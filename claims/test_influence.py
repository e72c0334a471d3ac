"""Claims C1–C4: neuron influence on rare and common tokens, its regimes, and their emergence.

Each test computes its statistics through ``harness`` (cached measurements, regime fits,
nulls), fills a record and asserts the decision rule of claims.md with thresholds from
the registry (``settings``).
"""

import numpy as np

from harness import regimes, trends
from harness.plateau import curve_series, fit_series, fit_statistics, plateau_null
from harness.stats import percentile_ci


def _fmt_ci(ci):
    return f"[{ci[0]:.3g}, {ci[1]:.3g}]"


def test_C1_rare_three_regimes(study, settings, claim_record):
    record = claim_record("C1", study.subject.spec)
    mp, seed = settings["min_segment_points"], settings["seed"]
    influence = study.rare_influence()
    fit = study.rare_fit(mp)
    rare = study.influence("rare")
    boot = regimes.bootstrap_regimes(rare["mean"][0], rare["count"][0], settings["n_bootstrap"], seed, mp)
    ci = percentile_ci(boot["plateau_score"])
    null = plateau_null(study, settings)
    q95 = null.q95()

    record.statistics.update(fit_statistics(fit), null_q95=q95, step0_plateau_score=null.step0)
    record.ci["plateau_score"] = list(ci)
    record.null["plateau_score"] = null.summary()
    record.sample_sizes.update(study.sample_sizes(), neurons=fit.d_mlp, bootstrap=settings["n_bootstrap"],
                               null_curves=settings["n_null_curves"])
    record.seeds.update(bootstrap=seed, permutations=seed, eval=study.config.eval.seed)
    record.thresholds.update(delta_bic_min=settings["delta_bic_min"], null_quantile=0.95)
    record.details.update(ablation="mean", rare_definition=study.config.rare_definition,
                          conditioning=study.config.conditioning, specialists=fit.specialist_ids.tolist())
    record.series.update(curve_series(influence), **fit_series(fit), **curve_series(study.influence_curve("common"), "_common"),
                         null_plateau_score=null.pooled.tolist(), observed_plateau_score=fit.plateau_score)
    record.decide(
        {
            "three_beat_two": fit.delta_bic_3v2 > settings["delta_bic_min"],
            "first_segment_flatter": fit.plateau_score > 0,
            "ci_excludes_zero": ci[0] > 0,
            "above_null_q95": fit.plateau_score > q95,
        },
        f"{study.subject.spec}: plateau score {fit.plateau_score:.3g} (95% CI {_fmt_ci(ci)}, null q95 {q95:.3g}), "
        f"ΔBIC(3 vs 2) {fit.delta_bic_3v2:.1f}, plateau of {fit.plateau_size} neurons "
        f"({fit.plateau_percent:.1f}% of {fit.d_mlp}); paper: {record.paper}",
    )
    assert record.verdict == "pass", record.message


def test_C2_common_two_regimes(study, settings, claim_record):
    record = claim_record("C2", study.subject.spec)
    mp, seed, B = settings["min_segment_points"], settings["seed"], settings["n_bootstrap"]
    common, rare = study.influence("common"), study.influence("rare")
    n_rep = common["count"].shape[0]
    common_curves = [study.influence_curve("common", k) for k in range(n_rep)]
    fits = [regimes.fit_regimes(c, min_segment_points=mp) for c in common_curves]
    score = float(np.median([f.plateau_score for f in fits]))
    dbic = float(np.median([f.delta_bic_3v2 for f in fits]))
    # Resample b uses common repeat b mod n_rep; the same sequence draws (same seed) pair it with rare.
    per_rep = [regimes.bootstrap_regimes(common["mean"][k], common["count"][k], B, seed, mp)["plateau_score"]
               for k in range(n_rep)]
    common_boot = np.choose(np.arange(B) % n_rep, per_rep)
    rare_boot = regimes.bootstrap_regimes(rare["mean"][0], rare["count"][0], B, seed, mp)["plateau_score"]
    rare_fit = study.rare_fit(mp)
    ci_common = percentile_ci(common_boot)
    ci_diff = percentile_ci(rare_boot - common_boot)

    record.statistics.update(fit_statistics(fits[0]), plateau_score=score, delta_bic_3v2=dbic,
                             rare_minus_common=rare_fit.plateau_score - score, common_repeats=n_rep)
    record.ci.update(plateau_score=list(ci_common), rare_minus_common=list(ci_diff))
    record.sample_sizes.update(study.sample_sizes(), neurons=fits[0].d_mlp, bootstrap=B)
    record.seeds.update(bootstrap=seed, common_subsample=study.config.selection_seed)
    record.thresholds.update(delta_bic_common_max=settings["delta_bic_common_max"])
    record.details.update(ablation="mean", equal_position_counts=True,
                          no_plateau_rule="CI lower bound <= 0 (not significantly above 0) or ΔBIC < threshold")
    record.series.update(curve_series(common_curves[0]), **fit_series(fits[0]),
                         **curve_series(study.rare_influence(), "_rare"))
    no_plateau = ci_common[0] <= 0 or dbic < settings["delta_bic_common_max"]
    record.decide(
        {"no_common_plateau": no_plateau, "rare_exceeds_common": ci_diff[0] > 0},
        f"{study.subject.spec}: common plateau score {score:.3g} (95% CI {_fmt_ci(ci_common)}), ΔBIC(3 vs 2) "
        f"{dbic:.1f}; rare − common {rare_fit.plateau_score - score:.3g} (95% CI {_fmt_ci(ci_diff)}); "
        f"paper: {record.paper}",
    )
    assert record.verdict == "pass", record.message


def test_C3_power_law_middle(study, settings, claim_record):
    record = claim_record("C3", study.subject.spec)
    fit = study.rare_fit(settings["min_segment_points"])
    alpha = settings["alpha"]
    record.statistics.update(fit_statistics(fit), middle_neurons=fit.middle_n,
                             middle_ols_exponent=fit.middle_ols_exponent, middle_alpha=fit.middle_alpha,
                             lr_lognormal_R=fit.lr_lognormal.R, lr_exponential_R=fit.lr_exponential.R)
    record.p_values.update(lr_lognormal=fit.lr_lognormal.p, lr_exponential=fit.lr_exponential.p)
    record.sample_sizes.update(study.sample_sizes(), neurons=fit.d_mlp, middle_neurons=fit.middle_n)
    record.thresholds.update(r2_min=settings["r2_min"], alpha=alpha)
    record.details.update(ablation="mean", powerlaw_nested=False)
    record.decide(
        {
            "r2_at_least_min": fit.middle_r2 >= settings["r2_min"],
            "lognormal_not_preferred": not fit.lr_lognormal.alternative_preferred(alpha),
            "exponential_not_preferred": not fit.lr_exponential.alternative_preferred(alpha),
        },
        f"{study.subject.spec}: middle regime exponent {fit.middle_exponent:.3g}, R² {fit.middle_r2:.3f} over "
        f"{fit.middle_n} neurons, LR vs lognormal R={fit.lr_lognormal.R:.2f} (p={fit.lr_lognormal.p:.3g}), "
        f"vs exponential R={fit.lr_exponential.R:.2f} (p={fit.lr_exponential.p:.3g}); paper: {record.paper}",
    )
    assert record.verdict == "pass", record.message


def test_C4_plateau_emerges(trajectory, settings, claim_record):
    family = trajectory[0].subject.family
    record = claim_record("C4", family)
    mp = settings["min_segment_points"]
    steps = np.array([s.subject.step for s in trajectory])
    if steps[0] != 0 or steps.size < 3:
        raise ValueError(f"C4 needs the step-0 checkpoint and >= 3 checkpoints of {family}; got steps {steps.tolist()}")
    scores, exponents = [], []
    for s in trajectory:
        try:
            fit = s.rare_fit(mp)
            scores.append(fit.plateau_score); exponents.append(fit.middle_exponent)
        except ValueError:
            scores.append(np.nan); exponents.append(np.nan)
    scores = np.array(scores)
    usable = np.isfinite(scores)
    trend = trends.spearman_trend(scores[usable], steps[usable], settings["n_trend_permutations"], settings["seed"])
    null0 = plateau_null(trajectory[0], settings, with_step0=False)
    null_final = plateau_null(trajectory[-1], settings)
    q0, qf = null0.q95(), null_final.q95()

    record.statistics.update(spearman_rho=trend.rho, step0_plateau_score=scores[0],
                             final_plateau_score=scores[-1], step0_null_q95=q0, final_null_q95=qf,
                             checkpoints=int(steps.size), checkpoints_fitted=int(usable.sum()))
    record.p_values["spearman_rho"] = trend.p_value
    record.null.update(step0_plateau_score=null0.summary(), final_plateau_score=null_final.summary())
    record.sample_sizes.update(trajectory[-1].sample_sizes(), checkpoints=int(steps.size),
                               trend_permutations=trend.n_permutations, null_curves=settings["n_null_curves"])
    record.seeds.update(permutations=settings["seed"])
    record.thresholds.update(alpha=settings["alpha"], null_quantile=0.95)
    record.details.update(ablation="mean", step0_in_trend="excluded (ln 0 undefined)",
                          unfittable_steps=steps[~usable].tolist())
    record.series.update(steps=steps.tolist(), plateau_score=scores.tolist(), exponent=exponents,
                         null_band=[float(np.min(null_final.pooled)), qf])
    step0_inside = not np.isfinite(scores[0]) or scores[0] <= q0
    record.decide(
        {
            "rho_positive": trend.rho > 0,
            "trend_significant": trend.p_value < settings["alpha"],
            "step0_inside_null": step0_inside,
            "final_outside_null": bool(scores[-1] > qf),
        },
        f"{family}: Spearman ρ(plateau score, ln step) {trend.rho:.2f} (permutation p {trend.p_value:.3g}) over "
        f"{int(usable.sum())} checkpoints; step-0 score {scores[0]:.3g} vs its null q95 {q0:.3g}, final "
        f"{scores[-1]:.3g} vs {qf:.3g}; paper: {record.paper}",
    )
    assert record.verdict == "pass", record.message
