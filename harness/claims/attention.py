"""Claim C7: rare-token processing does not route through single attention heads; whole layers matter.

Heads are ablated one at a time, and whole layers at once, in the ``routing_layers`` last
layers that can feed the final MLP (sequential blocks: the final layer and earlier; parallel
GPT-NeoX blocks: the layer before the final one and earlier — the final attention layer runs
beside the final MLP). The decisive effect is the authors' quantity, the change of the
specialists' activations (Σ|Δa| / Σ|a|, %) at rare-target positions of the test half; the %
increase of rare-target loss is reported beside it and supplies the rare/common agreement of
head effects (a head that routes rare tokens alone would break it). "Single heads small" rests
on each head's bootstrap interval, which bounds its effect only when the effect is spread over
the sequences (``harness.analysis.routing``, spread): C7 v3 was supported 15.5% of the time with
one head of mean effect 25% carried by a few sequences (per-sequence lognormal SD 3), v4 needs
every head's spread ≥ ``c7_min_spread``. A head whose per-sequence effect has a Pareto tail of index 1.3
(infinite variance) is spread and still shows 6–8% for a mean of 12% (v4: supported 31% of the time); v5
also bounds every head's tail-aware effect (Peng's estimate with a Hill tail over the top
third of the sequences, resampled with the same bootstrap, the index floored at 1.2) below the margin, and
was supported 29% of the time on a head of index 1.1. v6 bounds each head's tail-aware effect through the exact
Gamma pivot of Hill's sum (valid for a Pareto tail of any index over the top ⌈n^``c7_tail_exponent``⌉
sequences; ``harness.analysis.routing``), every head's own bound below the margin.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.analysis.routing import RoutingEffects, routing_effects
from harness.claims.evidence import Evidence
from harness.claims.registry import CLAIMS, claim, headline
from harness.claims.settings import ci_level
from harness.claims.specialists import select_specialists
from harness.records import ClaimRecord


def _fields(record: ClaimRecord, eff: RoutingEffects) -> None:
    m = eff.metric
    record.statistics.update({f"{m}_max_head_pct": eff.max_head, f"{m}_max_head": f"L{eff.max_head_at[0]}H{eff.max_head_at[1]}",
                              f"{m}_layer_pct": float(eff.layers.max()), f"{m}_ratio": eff.ratio,
                              f"{m}_rare_common_r": eff.corr, f"{m}_least_head_spread": eff.least_spread,
                              f"{m}_least_spread_head": f"L{eff.least_spread_at[0]}H{eff.least_spread_at[1]}"})
    if eff.tail_index is not None:
        at, bound_at = eff.heaviest_tail_at, eff.tail_bound_at
        record.statistics.update({f"{m}_max_head_tail_pct": eff.max_head_tail, f"{m}_tail_bound_pct": eff.tail_bound,
                                  f"{m}_tail_bound_head": f"L{bound_at[0]}H{bound_at[1]}",
                                  f"{m}_least_tail_index": eff.least_tail_index,
                                  f"{m}_heaviest_tail_head": "none" if at is None else f"L{at[0]}H{at[1]}"})
        record.series[f"{m}_head_tail_hi"] = eff.heads_tail_hi.ravel().tolist()
    record.ci.update({f"{m}_max_head_pct": list(eff.max_head_ci), f"{m}_ratio": list(eff.ratio_ci),
                      f"{m}_rare_common_r": list(eff.corr_ci)})
    record.ci_levels.update({f"{m}_max_head_pct": eff.level, f"{m}_ratio": eff.level, f"{m}_rare_common_r": eff.level})
    n_layers, n_heads = eff.heads.shape
    record.series.update({
        f"{m}_head_effects": eff.heads.ravel().tolist(),
        f"{m}_head_lo": eff.heads_ci[..., 0].ravel().tolist(), f"{m}_head_hi": eff.heads_ci[..., 1].ravel().tolist(),
        f"{m}_layer_effects": eff.layers.tolist(),
        f"{m}_layer_lo": eff.layers_ci[:, 0].tolist(), f"{m}_layer_hi": eff.layers_ci[:, 1].tolist(),
        f"{m}_head_effects_common": eff.heads_common.ravel().tolist(),
    })


@claim(
    "C7", "no_head_routing", scope="subject", rule_version=6,
    statement="Rare-token processing does not depend on single attention heads; whole layers matter.",
    rule="ablating heads and whole layers of the routing_layers last layers feeding the final MLP (test-half "
         "sequences, paired bootstrap): supported when the largest single head's effect on the specialists' "
         "activations has a 1 − 2α CI upper bound below c7_head_margin_pct with every head's effect spread over the "
         "sequences (Kish effective sequences of its per-sequence change over those of the clean activation "
         "≥ c7_min_spread) and every head's tail-aware effect (Peng's estimate, a Pareto tail over the top "
         "n^c7_tail_exponent of the n test sequences, Hill's index bounded through the Gamma pivot of its sum) a 1 − 2α upper "
         "bound below c7_head_margin_pct too (unbounded with at most that many sequences with rare positions; under the "
         "assumptions 'pareto_tail' and 'clean_mass'), the largest layer's effect over it (ratio) a CI lower bound above c7_min_ratio, and rare- and common-target loss effects of the heads "
         "correlate (r ≥ c7_min_correlation, CI lower bound > 0); contradicted when a head's CI lower bound "
         "exceeds c7_head_margin_pct (a routing head) or the ratio's CI upper bound is below c7_min_ratio; else inconclusive.",
    effect="largest head < c7_head_margin_pct and layer / largest head > c7_min_ratio",
    paper="single head ≈ 7–8%, full layer ≈ 42–45% (abstract); rare/common correlation ≈ 0.89 (P2)",
    settings=("alpha", "seed", "n_bootstrap", "routing_layers", "routing_ablation", "c7_head_margin_pct",
              "c7_min_spread", "c7_tail_exponent", "c7_min_ratio", "c7_min_correlation", "selection_fraction", "specialist_fraction", "min_specialists"),
    assumptions={
        "pareto_tail": "each head's per-sequence effect (Σ|Δa| / Σ|a| of a test sequence) is, above its 1 − 2k/n "
                       "quantile (k = ⌈n^c7_tail_exponent⌉ of the n test sequences, the top the bound fits: twice as "
                       "many, so that the sample's threshold, its (k+1)-th largest effect, lies inside the tail: the top "
                       "50% of 64 test sequences, 41% of 128, 32% of 256, 25% of 512, 20% of 1,024 — a stronger demand "
                       "on small samples), a Pareto tail of any index > 1, or a tail whose local Pareto index "
                       "x·f(x) / (1 − F(x)) does not fall further out (lognormal, gamma, Weibull, exponential; where "
                       "the fitted index is ≤ 1 the bound is infinite and the head is never shown small). Outside it is any tail with more "
                       "mass far above the threshold than a Pareto fit there puts: a heavier tail that begins higher "
                       "up or mixed with the body, a Pareto tail that begins at the fitted threshold itself, or a "
                       "few sequences that carry much of the mean however narrow their own spread. No rule can do "
                       "without such an assumption: no test bounds a mean from above without one on its tail "
                       "(Bahadur & Savage 1956) — a head whose mean sits in sequences too rare to be sampled looks "
                       "like a small one to every test that has power",
        "clean_mass": "within that tail, how much a sequence carries (its clean Σ|a|) does not grow with how much "
                      "the head moves it",
    },
)
def no_head_routing(source: Evidence, settings: dict[str, Any]) -> ClaimRecord:
    record = CLAIMS["C7"].new_record(source.label, settings)
    level, margin, ratio_min = ci_level(settings), settings["c7_head_margin_pct"], settings["c7_min_ratio"]
    spec = select_specialists(source, settings)
    layers = source.routing_layers(settings["routing_layers"])
    arrays = source.head_ablation(spec.ids, layers, settings["routing_ablation"])
    act = routing_effects(arrays, spec.test_sequences, "activation", settings["n_bootstrap"], settings["seed"], level,
                          settings["c7_tail_exponent"])
    loss = routing_effects(arrays, spec.test_sequences, "loss", settings["n_bootstrap"], settings["seed"], level)
    _fields(record, act)
    _fields(record, loss)
    n_heads = act.heads.shape[1]
    record.series.update(head_labels=[f"L{L}H{h}" for L in layers for h in range(n_heads)],
                         layer_labels=[f"L{L}" for L in layers])
    record.sample_sizes.update(source.sample_sizes(), heads=int(act.heads.size), layers=len(layers),
                               test_sequences=int(spec.test_sequences.size), bootstrap=settings["n_bootstrap"],
                               group_size=spec.size)
    record.seeds.update(bootstrap=settings["seed"], split=settings["seed"])
    record.details.update(layers_analysed=layers, ablation=settings["routing_ablation"],
                          specialists=spec.describe(), decisive_metric="activation")
    record.headline = headline("largest single-head effect on specialists' activations", act.max_head,
                               act.max_head_ci, level, smallest_effect=margin, paper=CLAIMS["C7"].paper,
                               scale_note=f"% of Σ|a| of the specialists; whole layer / largest head = {act.ratio:.2f} "
                                          f"(CI [{act.ratio_ci[0]:.2f}, {act.ratio_ci[1]:.2f}], paper ≈ 5); the "
                                          "papers' percentages do not say what they are of",
                               units="%")
    spread, spread_at = act.least_spread, act.least_spread_at
    record.decide(
        {"single_heads_small": act.max_head_ci[1] < margin, "heads_spread_over_sequences": spread >= settings["c7_min_spread"],
         "heads_small_with_their_tails": act.tail_bound < margin,
         "layer_exceeds_heads": act.ratio_ci[0] > ratio_min,
         "rare_common_heads_agree": loss.corr >= settings["c7_min_correlation"] and loss.corr_ci[0] > 0},
        {"routing_head": act.max_head_ci[0] > margin, "layer_no_larger_than_heads": act.ratio_ci[1] < ratio_min},
        f"{source.label}: the largest single head (L{act.max_head_at[0]}H{act.max_head_at[1]}) moves the specialists' "
        f"activations by {act.max_head:.2f}% ({level:.0%} CI [{act.max_head_ci[0]:.2f}, {act.max_head_ci[1]:.2f}], "
        f"margin {margin}%; least spread over sequences {spread:.2f} at L{spread_at[0]}H{spread_at[1]}, at least "
        f"{settings['c7_min_spread']}; largest tail-aware head {act.max_head_tail:.2f}%, largest tail-aware upper "
        f"bound {act.tail_bound:.2f}% at L{act.tail_bound_at[0]}H{act.tail_bound_at[1]}, heaviest tail index "
        f"{act.least_tail_index:.2f}), the largest whole layer by {act.layers.max():.2f}% (ratio {act.ratio:.2f}, CI "
        f"[{act.ratio_ci[0]:.2f}, {act.ratio_ci[1]:.2f}], margin {ratio_min}); rare-target loss: head "
        f"{loss.max_head:.2f}%, layer {loss.layers.max():.2f}%; rare/common head-effect r = {loss.corr:.2f} "
        f"(CI [{loss.corr_ci[0]:.2f}, {loss.corr_ci[1]:.2f}], at least {settings['c7_min_correlation']}); "
        f"layers {layers}; paper: {CLAIMS['C7'].paper}",
    )
    return record
