"""What the analysis-level calibration costs, and what bounds it from below.

``python -m harness calibrate`` runs every claim's registered procedure on 200 draws of each null family
and at the papers' effect (50 at other effects) with ``CALIBRATION_SETTINGS``. Timing the whole run takes
about an hour, so this benchmark times ``draws`` draws of every (claim, family, effect) cell on one core
(BLAS limited to one thread, as each calibration worker is on 2 cores), multiplies by the cell's
repetitions and sums per claim: one-core seconds, and the full run's wall time on 2 cores as their sum / 2
(the runner splits repetitions into chunks over its workers, so the two cores stay busy to within a chunk).
The target is the calibration issue's: the full analysis-level run within 15 minutes on 2 cores.

C5's floor: the whole-layer Louvain partitions (python-louvain, pure Python) of every C5 draw, timed on one
draw of each C5 family with the calibration's seeds and threshold — what C5 costs however fast the rest
of its procedure were.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.measure import Result
from harness.calibration.families import Family, families_of
from harness.calibration.runner import BASE_SEED, CALIBRATION_SETTINGS
from harness.claims import CLAIMS
from harness.claims.activation import group_setting, layer_communities
from harness.claims.settings import load_settings

TARGET_S = 15 * 60   # the calibration issue's budget for the full analysis-level run
CORES = 2            # the target machine's
FULL_REPS, OTHER_EFFECT_REPS = 200, 50   # the runner's defaults (nulls and the papers' effect; other effects)


def _reps(family: Family, effect: float) -> int:
    return FULL_REPS if family.kind == "null" or effect == family.paper_effect else OTHER_EFFECT_REPS


def _seconds_per_draw(claim_id: str, family: Family, effect: float, settings: dict[str, Any], draws: int) -> float:
    start = time.perf_counter()
    for rep in range(draws):
        CLAIMS[claim_id].evaluate(family.make(BASE_SEED + rep, effect), settings)
    return (time.perf_counter() - start) / draws


def _louvain_seconds(family: Family, settings: dict[str, Any]) -> float:
    """One C5 draw's whole-layer Louvain partitions (as C5 computes them), in seconds."""
    group = group_setting(family.make(BASE_SEED, family.paper_effect or 0.0), settings)
    start = time.perf_counter()
    layer_communities(group, settings)
    return time.perf_counter() - start


def calibration_cost(draws: int = 2, claims: tuple[str, ...] | None = None) -> list[Result]:
    """Per claim, the full analysis-level calibration's one-core seconds (from ``draws`` timed draws per cell);
    the full run's estimated wall time on ``CORES`` cores against ``TARGET_S``; C5's Louvain floor."""
    settings = {**load_settings(), **CALIBRATION_SETTINGS}
    rows, total = [], 0.0
    with threadpool_limits(1):
        for claim_id in claims or tuple(sorted(CLAIMS)):
            cells = [(f, e) for f in families_of(claim_id) for e in f.effects]
            per_draw = [_seconds_per_draw(claim_id, f, e, settings, draws) for f, e in cells]
            core_s = float(sum(t * _reps(f, e) for t, (f, e) in zip(per_draw, cells)))
            total += core_s
            slowest = int(np.argmax(per_draw))
            rows.append(Result(f"calibration {claim_id}: one-core seconds for the full run", core_s, "core-s",
                               note=f"{len(cells)} cells, {draws} timed draws each; slowest "
                               f"{cells[slowest][0].name} at {per_draw[slowest]:.2f} s per draw"))
            if claim_id == "C5":
                fams = families_of("C5")
                louvain = [_louvain_seconds(f, settings) for f in fams]
                floor = float(sum(t * _reps(f, f.paper_effect or 0.0) for t, f in zip(louvain, fams)))
                rows.append(Result("calibration C5: its Louvain partitions alone (python-louvain)", floor, "core-s",
                                   note=f"{settings['louvain_seeds']} seeds per draw, {np.mean(louvain):.2f} s per "
                                        f"draw; {floor / core_s:.0%} of C5's cost"))
    rows.append(Result(f"full analysis-level calibration on {CORES} cores (estimated)", total / CORES, "s",
                       target_max=TARGET_S, note=f"Σ one-core seconds / {CORES}; claims {', '.join(claims or sorted(CLAIMS))}"))
    return rows
