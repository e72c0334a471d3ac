"""The plateau statistics C1–C4 share: null curves and plateau scores over training.

A rank curve bends even without specialisation, so a plateau score means something only
against null curves (methods.md §3.3): (i) the subject with its final MLP's write rows
permuted across neurons (``Study.influence_null``), and (ii) the family's step-0 checkpoint
where one exists. Curves too short to fit give NaN scores, counted in the record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness import regimes
from harness.stats import summarize_null
from harness.study import Study
from harness.subjects import family_steps


def plateau_score(influence: np.ndarray, min_segment_points: int) -> float:
    """Plateau score of one influence vector [d_mlp] (nats); NaN when the curve cannot be fitted."""
    try:
        return regimes.fit_regimes(influence, min_segment_points=min_segment_points).plateau_score
    except ValueError:
        return float("nan")


@dataclass(frozen=True)
class PlateauNull:
    """Null plateau scores of one subject: permuted-W_out curves, plus the step-0 curve if any."""

    permuted: np.ndarray  # [n_permutations], NaN where a curve could not be fitted
    step0: float | None  # the family's step-0 score, None when the family has no step 0

    @property
    def pooled(self) -> np.ndarray:
        """Finite null scores: every permuted curve and the step-0 curve."""
        values = self.permuted if self.step0 is None else np.append(self.permuted, self.step0)
        return values[np.isfinite(values)]

    def q95(self) -> float:
        if self.pooled.size == 0:
            raise ValueError("no null curve could be fitted: every permuted curve was too short")
        return float(np.quantile(self.pooled, 0.95))

    def summary(self) -> dict[str, float]:
        out = summarize_null(self.pooled)
        out["unfittable"] = int(np.sum(~np.isfinite(self.permuted)))
        return out


def plateau_null(study: Study, settings: dict, with_step0: bool = True) -> PlateauNull:
    """Plateau scores of ``settings["n_null_curves"]`` permuted curves (seeded) and of step 0."""
    min_points = settings["min_segment_points"]
    curves = study.influence_null(settings["n_null_curves"], seed=settings["seed"])
    permuted = np.array([plateau_score(c, min_points) for c in curves])
    step0 = None
    s = study.subject
    if with_step0 and s.step not in (None, 0) and 0 in family_steps(s):
        step0 = plateau_score(study.at_step(0).rare_influence(), min_points)
    return PlateauNull(permuted=permuted, step0=step0)


def fit_statistics(fit: "regimes.RegimeFit") -> dict[str, float]:
    """The scalar regime statistics every influence record reports."""
    f3 = fit.fits[3]
    return {
        "plateau_score": fit.plateau_score,
        "delta_bic_3v2": fit.delta_bic_3v2,
        "delta_bic_2v1": fit.delta_bic_2v1,
        "slope_1": f3.slopes[0], "slope_2": f3.slopes[1], "slope_3": f3.slopes[2],
        "breakpoint_1_ln_rank": f3.breakpoints[0], "breakpoint_2_ln_rank": f3.breakpoints[1],
        "plateau_size": fit.plateau_size, "plateau_percent": fit.plateau_percent,
        "middle_exponent": fit.middle_exponent, "middle_r2": fit.middle_r2,
        "fixed_cut_slope_0_3.5": fit.fixed_cut_slopes[0],
        "fixed_cut_slope_3.5_5.5": fit.fixed_cut_slopes[1],
        "fixed_cut_slope_5.5_end": fit.fixed_cut_slopes[2],
        "positive_neurons": fit.n_positive,
    }


def curve_series(influence: np.ndarray, suffix: str = "") -> dict[str, list[float]]:
    """Figure data: the raw rank curve (ln rank, ln I) of ``influence`` [d_mlp] (nats)."""
    _, ln_rank, ln_inf = regimes.rank_curve(influence)
    return {f"ln_rank{suffix}": ln_rank.tolist(), f"ln_influence{suffix}": ln_inf.tolist()}


def fit_series(fit: "regimes.RegimeFit") -> dict[str, list[float]]:
    """Figure data: the 3-segment fit evaluated along its curve, and its breakpoints (ln rank)."""
    x = np.linspace(0.0, float(np.max(fit.curve_x)), 200)
    return {"fit_x": x.tolist(), "fit_y": fit.fits[3].evaluate(x).tolist(),
            "breakpoints": list(fit.fits[3].breakpoints)}
