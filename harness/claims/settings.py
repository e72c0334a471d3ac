"""Every threshold, margin and resample count a decision rule reads, with its documented default.

Claims read settings from here, never literals. Override with a JSON file
(``--claims-config path.json`` or ``$RARE_CLAIMS_CONFIG``) holding ``{"name": value}``, or with
``overrides``. Values are checked at start-up: an unknown name, a value of the wrong type
(``{"n_null": 99.9}`` is not silently truncated to 99) or out of range is a ``SettingsError``
whose one-line message names the setting, the value and what is allowed.

Smallest effects of interest (the ``*_min_*`` and ``*_margin`` settings) come from the papers'
numbers where they exist; each doc string says how.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


class SettingsError(ValueError):
    """A setting that is unknown, of the wrong type or out of range (one-line message)."""


@dataclass(frozen=True)
class Setting:
    """One configurable value: its default, type, allowed range or choices, and documentation.

    ``low``/``high`` bound numbers (``open_low``/``open_high`` exclude the bound); ``choices``
    lists the allowed strings.
    """

    name: str
    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple[str, ...] = ()

    def check(self, value: Any) -> Any:
        """``value`` converted to the setting's type, or SettingsError."""
        kind = type(self.default)
        if kind is bool:
            if not isinstance(value, bool):
                raise SettingsError(f"setting {self.name!r} must be true or false, got {value!r}")
            return value
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
                raise SettingsError(f"setting {self.name!r} must be an integer, got {value!r}")
            value = int(value)
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SettingsError(f"setting {self.name!r} must be a finite number, got {value!r}")
            value = float(value)
        elif kind is str:
            if value not in self.choices:
                raise SettingsError(f"setting {self.name!r} must be one of {list(self.choices)}, got {value!r}")
            return value
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            raise SettingsError(f"setting {self.name!r} = {value!r} is out of range: {self.range_text()}")
        if self.high is not None and (value > self.high or (self.open_high and value == self.high)):
            raise SettingsError(f"setting {self.name!r} = {value!r} is out of range: {self.range_text()}")
        return value

    def range_text(self) -> str:
        """The allowed values in words, e.g. ``(0, 0.5)`` or ``>= 1``."""
        if self.choices:
            return f"one of {list(self.choices)}"
        if self.low is not None and self.high is not None:
            return f"{'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        return "any"


def _count(name: str, default: int, doc: str, low: int = 1) -> Setting:
    return Setting(name, default, doc, low=low)


def _fraction(name: str, default: float, doc: str) -> Setting:
    return Setting(name, default, doc, low=0.0, high=1.0, open_low=True, open_high=True)


def _positive(name: str, default: float, doc: str) -> Setting:
    return Setting(name, default, doc, low=0.0, open_low=True)


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        # -- shared ---------------------------------------------------------------------------
        _count("seed", 0, "base seed of every random draw: sequence split, bootstraps, null groups, permutations",
               low=0),
        Setting("alpha", 0.05, "significance level of every one-sided test; every CI is at level 1 − 2·alpha "
                "(90% at 0.05) so that a bound beyond a margin is a one-sided test at alpha",
                low=0.0, high=0.5, open_low=True, open_high=True),
        _count("n_bootstrap", 1000, "bootstrap resamples over evaluation sequences for every CI"),
        _count("n_null", 1000, "random control groups forming a null distribution (C5, C6, C8, C9)"),
        _count("n_null_curves", 199, "read→write-permuted null influence curves per subject (C1, C2, C4); "
               "with the step-0 curve, p = (1 + #null ≥ observed) / (1 + draws)"),
        Setting("null_permutation", "direction", "how a null curve breaks the read→write pairing: 'direction' "
                "writes neuron n's ablation along another neuron's output direction at n's own output norm "
                "(only the direction is broken; the magnitude pairing is kept); 'row' writes it along another "
                "neuron's whole output row (methods.md §3.3), which moved the slope difference's null when "
                "magnitudes follow write norms (55% false plateaus; flatness is not affected)",
                choices=("direction", "row")),
        Setting("null_kernel", "approx", "kernel of the null curves: 'approx' (third-order expansion, checked "
                "against 'exact' on null_exact_checks draws; the record gives the error) or 'exact'",
                choices=("approx", "exact")),
        _count("null_exact_checks", 3, "null curves recomputed exactly to measure the approx kernel's error"),
        _positive("null_approx_tolerance", 1e-5, "largest accepted error of the approx kernel on a null curve: the "
                  "root mean square over neurons of |approx − exact| (nats); beyond it every null curve is "
                  "computed exactly"),
        _count("min_rare_positions", 200, "fewest rare-target positions an influence analysis accepts; the "
               "evaluation data grow (more sequences) up to max_eval_sequences to reach it"),
        _count("max_eval_sequences", 1024, "largest number of evaluation sequences the data may grow to"),
        _count("min_segment_points", 5, "fewest binned curve points in any fitted segment"),
        _count("min_checkpoints", 4, "fewest distinct checkpoints a claim over training accepts (C4, C9)"),
        # -- C1–C3 ----------------------------------------------------------------------------
        _positive("delta_bic_min", 10.0, "C1: ΔBIC by which 3 segments must beat 2 (Kass & Raftery: > 10 is "
                  "very strong evidence)"),
        _positive("c1_min_excess", 0.3, "C1: smallest effect of interest, plateau flatness (1 − slope₁/slope₂: "
                  "1 = a flat plateau, 0 = no bend) above the null median; the papers' plateaus are flat (≈ 1)"),
        _positive("c2_margin", 0.3, "C2: equivalence margin of the common curve's flatness above its null "
                  "(the same scale and size as c1_min_excess)"),
        _positive("c3_curvature_margin", 0.25, "C3: equivalence margin of the middle regime's slope change "
                  "across its window (slope units); below a quarter of the papers' exponent range (0.3–1.05)"),
        _positive("c3_min_window", 1.0, "C3: shortest middle window (ln-rank units, an e-fold of ranks) that "
                  "can tell a power law from a curve"),
        Setting("c3_window_trim", 0.2, "C3: share of the middle segment's width left out at each end (where it bends "
                "into the plateau and the decay)", low=0.0, high=0.5, open_high=True),
        # -- C4, C9 ---------------------------------------------------------------------------
        _fraction("trend_fraction", 1 / 3, "C4, C9: the early and the late set are this fraction of the "
                  "checkpoints, first and last"),
        _positive("c4_min_change", 1.0, "C4: smallest effect of interest, late − early change of the "
                  "standardised plateau score (null SDs)"),
        _positive("c9_min_change", 1.0, "C9: smallest effect of interest, late − early change of the "
                  "standardised spectral separation (null SDs)"),
        # -- specialists ------------------------------------------------------------------------
        _fraction("specialist_fraction", 0.017, "group size when C1 finds no plateau: this fraction of d_mlp "
                  "(P1: ≈ 1.7% of neurons in the plateau)"),
        _count("min_specialists", 16, "smallest specialist group", low=4),
        _fraction("selection_fraction", 0.5, "share of the evaluation sequences specialists are selected on; "
                  "activation claims are tested on the rest"),
        _count("match_neighbours", 10, "candidate controls per specialist: its nearest non-specialists in "
               "covariate space (activation mean, variance, sparsity; ‖W_out‖ row norm)"),
        _positive("match_max_smd", 0.75, "largest standardised mean difference of a covariate between the "
                  "specialists and their nearest candidate controls (layer SDs); beyond it a group claim is "
                  "inconclusive — the specialists lie outside the covariate range of the other neurons. "
                  "Below it the regression adjustment absorbs the imbalance (C6's global-factor null, SMD ≈ "
                  "0.7: 0 of 40 supported without any limit); beyond it the adjustment is an extrapolation a null "
                  "can break: one direction in every row at a constant loading, specialists selected as the "
                  "longest write rows (SMD 0.92–1.05), left C8 supported 15% of the time at a limit of 1"),
        _count("layer_factors", 8, "C8, C9: most common directions of each final-MLP matrix's "
               "rows whose predicted row correlations the adjustment regresses on; only directions above the "
               "Marchenko–Pastur edge of independent rows count, so the default is a cap, not a choice",
               low=0),
        # -- C5 -------------------------------------------------------------------------------
        _count("louvain_seeds", 10, "C5: Louvain runs on the layer's co-activation graph"),
        _fraction("coactivation_threshold", 0.3, "C5: |r| at or above which two neurons share an edge"),
        Setting("coactivation_graph", "absolute", "C5: edge weights |r| ('absolute') or the positive part of r "
                "('signed')", choices=("absolute", "signed")),
        _positive("c5_margin", 0.2, "C5: equivalence margin of the chance-corrected co-assignment κ of the "
                  "specialists (0 = as matched groups, 1 = one community): within ±0.2 the specialists share "
                  "communities at most a fifth of the way from chance to one module"),
        _count("c5_factors", 16, "C5: most common factors per part of the layer that the modules-beyond-one-factor "
               "guard projects every neuron's activations off; only directions above the Marchenko–Pastur edge count (the "
               "calibration's layers have 8 per part; on the zoo's trained layers the cap binds)", low=0),
        _count("n_null_within_q", 200, "C5: matched groups for the papers' within-group Q (reported only; 0 skips "
               "them)", low=0),
        # -- C6 -------------------------------------------------------------------------------
        _fraction("variance_explained", 0.95, "C6: variance share defining the number of components"),
        _positive("c6_min_z", 1.0, "C6: smallest effect of interest, specialists' coordination above matched "
                  "groups in null SDs: supported when both effects' intervals lie above it, contradicted when either "
                  "lies below (a bias of the layer-factor subtraction smaller than this cannot support: on the "
                  "hardest null, ln λ ≈ −3, the mean-correlation effect is centred at +0.7 null SDs)"),
        _count("c6_factors", 16, "C6: most instruments per pool part for the layer's common factors whose implied "
               "correlations C6 subtracts; only directions above the largest cross-correlation between independent "
               "neurons count, so the default is a cap, not a choice", low=0),
        _count("c6_min_test_positions", 280, "C6: fewest rare-target positions in the test half for a supported "
               "verdict. The bridge that removes the layer's common factors is biased towards coordination on small "
               "samples: on the hardest null (unsaturated global loadings, ln λ ≈ −3) C6 was supported 13–28% of the "
               "time at ≈ 90–265 test positions (32–96 sequences) and 8.5% at the calibration's 300–406 (median 353, "
               "the zoo's 358; at 96 sequences 14 of 60 draws supported without the floor, 1 with it); below this floor C6 "
               "can be contradicted but not supported", low=0),
        _positive("c6_partner_z", 4.0, "C6: a neuron among the next group-size ones by selection-half influence is "
                  "left out of the instruments when its mean correlation with the specialists beyond the layer's "
                  "factors, on the selection half, lies this many robust SDs above the pool neurons' (a member of "
                  "the group that the top-K cut missed: as an instrument it makes the group's own factor the "
                  "layer's; with every such neuron kept, power at coordination 0.5 was 0.64 where it was 0.94 at "
                  "0.3). A factor that only the specialists and such partners carry counts as the group's own, not "
                  "the layer's. On the calibration's null layers no neuron passed 4 (100 draws of the hardest; a "
                  "review's lognormal layers: at most 1 neuron in 40 draws each, the largest z 3.6–3.9)"),
        # -- C7 -------------------------------------------------------------------------------
        _count("routing_layers", 3, "C7: how many of the layers that feed the final MLP are ablated (the last "
               "ones)"),
        Setting("routing_ablation", "mean", "C7: head ablation, mean of hook_z or attention redirected to BOS",
                choices=("mean", "bos")),
        _positive("c7_head_margin_pct", 10.0, "C7: a single head is small when its effect's CI upper bound is "
                  "below this % (paper: single heads ≈ 7–8%)"),
        _fraction("c7_min_spread", 0.25, "C7: a head's bootstrap interval bounds its effect when the effect is "
                  "spread over the sequences: Kish effective sequences of its per-sequence change over those of "
                  "the clean activation at least this (calibrated: ≈ 0.6 with per-sequence noise of SD 0.5; a "
                  "head's spread is ≈ 1/(1 + CV²) of its per-sequence noise, and the rule takes the least of "
                  "every head, so 0.4 cost power under gamma(1) noise, 0.45 → 0.085)"),
        _fraction("c7_tail_exponent", 2 / 3, "C7: a head's tail-aware estimate models the top ⌈n^this⌉ of its n "
                  "test sequences with rare positions (by per-sequence effect) as a Pareto tail (16 of 64, 41 of "
                  "256): k/n → 0 as n grows, so a heavy tail that begins among the body's sequences is seen at "
                  "large n, which a fixed share never does (with v5's top third and v6's pivot a head of mean 10.5% "
                  "whose heaviest 15% are a Pareto tail of index 1.2 was supported 22.5% of 200 at 64 test "
                  "sequences and 48% of 100 at 256; at 2/3 20.5% and 40%). Calibrated at 64 test sequences, 200 draws: the papers' "
                  "world 0.88 (top third 0.885), Pareto heads of index 1.3 (mean 12%, 10.5%) and 1.1 (12%) 1%, 3%, "
                  "1.5% (2%, 3%, 3%)"),
        _positive("c7_min_ratio", 2.0, "C7: a layer matters when its effect over the largest single head's "
                  "has a CI lower bound above this ratio (paper: 42–45% vs 7–8%, a ratio near 5)"),
        _fraction("c7_min_correlation", 0.8, "C7: the heads serve rare and common targets alike when the "
                  "correlation of their rare- and common-target loss effects is at least this (claims.md; paper "
                  "≈ 0.89) with a CI lower bound above 0"),
        # -- C8 -------------------------------------------------------------------------------
        _fraction("hill_k_fraction", 0.1, "C8, C9: Hill estimator tail k = max(1, ⌊fraction · n⌋)"),
        _positive("c8_min_z", 1.0, "C8: smallest effect of interest, specialists' Hill α below matched groups "
                  "in null SDs"),
    ]
}


Settings = dict[str, Any]


def load_settings(path: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Defaults, updated by a JSON file (``path`` or ``$RARE_CLAIMS_CONFIG``), then by ``overrides``.

    Raises SettingsError (one line) for an unreadable file, an unknown name, a mistyped or
    out-of-range value.
    """
    values = {name: s.default for name, s in SETTINGS.items()}
    path = path or os.environ.get("RARE_CLAIMS_CONFIG")
    updates: dict[str, Any] = {}
    if path:
        try:
            loaded = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise SettingsError(f"cannot read the claims config {path}: {err}") from None
        if not isinstance(loaded, dict):
            raise SettingsError(f"the claims config {path} must hold a JSON object {{\"name\": value}}")
        updates.update(loaded)
    updates.update(overrides or {})
    unknown = sorted(set(updates) - set(values))
    if unknown:
        raise SettingsError(f"unknown setting(s) {unknown}; known settings: {sorted(values)}")
    for name, value in updates.items():
        values[name] = SETTINGS[name].check(value)
    return values


def ci_level(settings: Settings) -> float:
    """The level of every interval a rule reads: 1 − 2·alpha."""
    return 1.0 - 2.0 * settings["alpha"]
