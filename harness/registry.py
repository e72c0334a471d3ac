"""The one registry of claims and of the settings their decision rules use.

Claims (``CLAIMS``) carry their statement, decision rule and the paper's numbers; settings
(``SETTINGS``) carry every threshold and resample count with its documented default.
Tests read both from here — never literals. Override settings with a JSON file
(``--claims-config path.json`` or ``RARE_CLAIMS_CONFIG``) holding ``{"name": value}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: id (``C1``), name, statement, decision rule, paper numbers."""

    id: str
    name: str
    statement: str
    rule: str
    paper: str
    needs_checkpoints: bool = False

    @property
    def test_id(self) -> str:
        return f"{self.id}_{self.name}"


CLAIMS: dict[str, Claim] = {
    c.id: c
    for c in [
        Claim("C1", "rare_three_regimes",
              "Rare-token influence has three regimes: a specialist plateau, a power law, a rapid decay.",
              "3 segments beat 2 by ΔBIC > delta_bic_min, segment 1 flatter than segment 2 (plateau score = "
              "slope 1 − slope 2 > 0; claims.md writes the difference the other way round, which would be "
              "negative for a plateau), bootstrap CI of the plateau score excludes 0, and the score exceeds "
              "the null curves' 95th percentile.",
              "plateau ≈ top 30–50 neurons, ≈ 0.5–1.7% of the layer; fixed cuts ln-rank 3.5 / 5.5 (code)"),
        Claim("C2", "common_two_regimes",
              "Common-token influence has only a power law and a decay: no plateau.",
              "common plateau-score CI includes 0 or ΔBIC(3 vs 2) < delta_bic_common_max; and the "
              "rare − common plateau score (equal position counts) has a bootstrap CI above 0.",
              "whole-curve exponent 0.91–1.09 for common tokens (code)"),
        Claim("C3", "power_law_middle",
              "The middle regime of the rare-token influence curve is a power law.",
              "OLS R² of the middle segment ≥ r2_min and neither lognormal nor exponential is "
              "significantly preferred (likelihood-ratio p < alpha).",
              "exponent 0.3–1.05, R² ≥ 0.95 (code)"),
        Claim("C4", "plateau_emerges",
              "Plateau neurons emerge progressively during training.",
              "Spearman ρ(plateau score, ln step) > 0 with permutation p < alpha; the step-0 score "
              "inside the null band and the final score outside it.",
              "emergence from a homogeneous initial state (abstract)", needs_checkpoints=True),
        Claim("C5", "specialists_not_modular",
              "Specialist neurons are spatially dispersed, not modular.",
              "TOST: the 90% CI of Q_spec − median Q_null lies inside (−modularity_delta, "
              "modularity_delta), and the empirical p for a difference is > alpha.",
              "Q = 0.05–0.11 vs control 0.04–0.09, p > 0.4 (abstract)"),
        Claim("C6", "specialists_coordinated",
              "Specialists show structured co-activation and reduced effective dimensionality.",
              "one-sided empirical p < alpha for lower effective dimension and for higher mean "
              "pairwise correlation than random groups.",
              "\"reduced effective dimensionality\" (abstract)"),
        Claim("C7", "no_head_routing",
              "Rare-token processing does not depend on single attention heads; whole layers matter.",
              "max single-head effect ≤ max_single_head_pct, whole-layer effect ≥ min_layer_pct, "
              "bootstrap CI of (layer − max head) > 0, rare/common head-effect correlation ≥ head_corr_min.",
              "single head ≈ 7–8%, full layer ≈ 42–45% (abstract); correlation ≈ 0.89 (P2)"),
        Claim("C8", "specialists_heavy_tailed",
              "Specialist weight spectra are more heavy-tailed than random groups'.",
              "one-sided empirical p < alpha for lower Hill α (read matrix for GPT-NeoX, write "
              "matrix for GPT-2, as the authors; both reported).",
              "α = 1.57–4.30 vs control 6.37–9.33 (abstract)"),
        Claim("C9", "tails_grow_in_training",
              "The spectral separation between specialists and random groups grows through training.",
              "Spearman ρ(median α_null − α_spec, ln step) > 0 with permutation p < alpha.",
              "\"grows throughout training\" (abstract)", needs_checkpoints=True),
    ]
}


@dataclass(frozen=True)
class Setting:
    """A configurable threshold or resample count, with its documented default."""

    name: str
    default: Any
    doc: str


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("seed", 0, "base seed of every random draw: bootstraps, null groups, permutations"),
        Setting("alpha", 0.05, "significance level of every one-sided test"),
        Setting("n_bootstrap", 1000, "bootstrap resamples over sequences for CIs"),
        Setting("n_null", 1000, "random groups (or permutations) forming a null distribution"),
        Setting("n_null_curves", 20, "permuted-W_out null influence curves per subject (C1, C4)"),
        Setting("n_trend_permutations", 10000, "permutations for the Spearman trend p-value (C4, C9)"),
        Setting("delta_bic_min", 10.0, "C1: ΔBIC by which 3 segments must beat 2"),
        Setting("delta_bic_common_max", 2.0, "C2: ΔBIC(3 vs 2) under which common curves show no plateau"),
        Setting("r2_min", 0.95, "C3: minimum R² of the middle-regime power law"),
        Setting("min_rare_positions", 200, "fewest rare-target positions an influence analysis accepts"),
        Setting("min_segment_points", 5, "fewest curve points in any fitted segment"),
        Setting("modularity_delta", 0.05, "C5: equivalence margin δ for Q_spec − median Q_null"),
        Setting("n_bootstrap_modularity", 200, "C5: bootstrap resamples of Q_spec (each runs every Louvain seed)"),
        Setting("louvain_seeds", 10, "C5: Louvain seeds averaged per graph"),
        Setting("coactivation_threshold", 0.3, "C5: |r| threshold of the thresholded co-activation graph"),
        Setting("variance_explained", 0.95, "C6: variance fraction defining the effective dimension"),
        Setting("max_single_head_pct", 10.0, "C7: largest allowed single-head effect (% rare-loss increase)"),
        Setting("min_layer_pct", 40.0, "C7: smallest whole-layer effect (% rare-loss increase)"),
        Setting("head_corr_min", 0.8, "C7: minimum rare/common head-effect correlation"),
        Setting("hill_k_fraction", 0.1, "C8: Hill estimator tail size k = max(1, ⌊fraction·n⌋)"),
    ]
}


def load_settings(path: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, updated by a JSON file (``path`` or ``$RARE_CLAIMS_CONFIG``), then by ``overrides``.

    Unknown names are an error that lists the known ones.
    """
    values = {name: s.default for name, s in SETTINGS.items()}
    path = path or os.environ.get("RARE_CLAIMS_CONFIG")
    updates: dict[str, Any] = {}
    if path:
        updates.update(json.loads(Path(path).read_text()))
    updates.update(overrides or {})
    unknown = sorted(set(updates) - set(values))
    if unknown:
        raise KeyError(f"unknown setting(s) {unknown}; known settings: {sorted(values)}")
    for name, value in updates.items():
        values[name] = type(SETTINGS[name].default)(value)
    return values
