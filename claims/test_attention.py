"""Claim C7: rare-token processing does not route through single heads; whole layers matter."""

import numpy as np

from harness import routing


def test_C7_no_head_routing(study, settings, claim_record):
    record = claim_record("C7", study.subject.spec)
    r = routing.routing_test(study.head_ablation(), n_bootstrap=settings["n_bootstrap"], seed=settings["seed"],
                             alpha=settings["alpha"])
    top = int(np.argmax(r.layer_rare_pct))  # the analysed layer whose ablation matters most
    layer = int(r.layers[top])
    record.statistics.update(
        max_head_pct=r.max_head_pct, max_head=f"L{r.max_head[0]}H{r.max_head[1]}", layer=layer,
        layer_pct=float(r.layer_rare_pct[top]), layer_common_pct=float(r.layer_common_pct[top]),
        gap_pct=float(r.gap_pct[top]), pearson=r.pearson, spearman=r.spearman,
        gini_rare=r.gini_rare, gini_common=r.gini_common,
        max_head_prob_drop_pct=r.max_head_prob_drop_pct,
        layer_prob_drop_pct=float(r.layer_rare_prob_drop_pct[top]),
    )
    record.ci.update(max_head_pct=list(r.max_head_ci), layer_pct=list(r.layer_rare_ci[top]),
                     gap_pct=list(r.gap_ci[top]), pearson=list(r.pearson_ci), spearman=list(r.spearman_ci),
                     gini_rare_minus_common=list(r.gini_diff_ci))
    record.details["ci_levels"] = {k: r.ci_level for k in record.ci}
    record.sample_sizes.update(study.sample_sizes(), heads=int(r.head_rare_pct.size), bootstrap=r.n_bootstrap)
    record.seeds["bootstrap"] = r.seed
    record.thresholds.update(max_single_head_pct=settings["max_single_head_pct"],
                             min_layer_pct=settings["min_layer_pct"], head_corr_min=settings["head_corr_min"])
    record.details.update(ablation="mean (hook_z, per-head mean over positions 1..end)",
                          layers_analysed=r.layers.tolist(),
                          layer_effects_pct=r.layer_rare_pct.tolist())
    record.series.update(head_effects=r.head_rare_pct.ravel().tolist(), layer_effect=float(r.layer_rare_pct[top]),
                         head_effects_common=r.head_common_pct.ravel().tolist(),
                         head_labels=[f"L{L}H{h}" for L in r.layers for h in range(r.head_rare_pct.shape[1])])
    record.decide(
        {
            "single_heads_small": r.max_head_pct <= settings["max_single_head_pct"],
            "layer_large": r.layer_rare_pct[top] >= settings["min_layer_pct"],
            "layer_exceeds_max_head": r.gap_ci[top][0] > 0,
            "rare_common_heads_correlated": r.pearson >= settings["head_corr_min"],
        },
        f"{study.subject.spec}: largest single head L{r.max_head[0]}H{r.max_head[1]} raises rare-target loss by "
        f"{r.max_head_pct:.1f}%, the whole layer {layer} by {r.layer_rare_pct[top]:.1f}% (gap CI "
        f"[{r.gap_ci[top][0]:.1f}, {r.gap_ci[top][1]:.1f}]), rare/common head-effect r = {r.pearson:.2f}; "
        f"paper: {record.paper}",
    )
    assert record.verdict == "pass", record.message
