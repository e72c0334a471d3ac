"""Running the claims' own procedures on calibration families: sizes, power curves, the calibration document.

Each repetition draws one subject of a family (seed = ``seed`` + repetition) and runs the claim's
registered ``evaluate`` on it with ``CALIBRATION_SETTINGS`` (the defaults with fewer resamples, so
that ≥ 200 repetitions per family fit the budget; the decision rules are unchanged and the
resample counts are written into the document). A null family's rate of *supported* verdicts is
the size, reported with a Wilson 95% interval and judged against α + 2·SE, SE = √(α(1 − α)/reps) — where the
family keeps the claim's stated assumptions; one that breaks one (``Family.breaks``) is measured and reported
apart (``outside_size``: what the assumption leaves unguarded), since no rule can hold every family there;
a planted family's rate at each effect size is the power curve, from which the effect reaching
power 0.8 is interpolated.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from threadpoolctl import threadpool_limits

from harness.analysis.stats import wilson_interval
from harness.calibration.families import Family, families_of
from harness.claims import CLAIMS
from harness.claims.settings import load_settings

CALIBRATION_SETTINGS: dict[str, Any] = {"n_bootstrap": 200, "n_null": 200, "n_null_curves": 99, "louvain_seeds": 3,
                                        "n_null_within_q": 0}
POWER_TARGET = 0.8
BASE_SEED = 1_000_000


@dataclass(frozen=True)
class Cell:
    """One (family, effect) point: verdict counts over ``reps`` repetitions."""

    family: Family
    effect: float
    reps: int
    supported: int
    contradicted: int
    inconclusive: int
    errors: int

    def rate(self, verdict: str = "supported") -> float:
        return getattr(self, verdict) / self.reps

    def interval(self, verdict: str = "supported") -> tuple[float, float]:
        return wilson_interval(getattr(self, verdict), self.reps)


def _run_cell(args: tuple[str, str, float, int, int, dict[str, Any]]) -> tuple[str, str, float, dict[str, int]]:
    claim_id, family_name, effect, start, reps, settings = args
    family = next(f for f in families_of(claim_id) if f.name == family_name)
    counts = {"supported": 0, "contradicted": 0, "inconclusive": 0, "errors": 0}
    for rep in range(start, start + reps):
        try:
            verdict = CLAIMS[claim_id].evaluate(family.make(BASE_SEED + rep, effect), settings).verdict
        except Exception:  # noqa: BLE001 — a procedure that raises on valid data is counted, not hidden
            verdict = "errors"
        counts[verdict if verdict != "error" else "errors"] += 1
    return claim_id, family_name, effect, counts


def run_cells(claims: list[str], reps: int, planted_reps: int, settings: dict[str, Any], workers: int,
              progress: Callable[[int, int], None] | None = None) -> list[Cell]:
    """Every (family, effect) cell of ``claims``: nulls at ``reps``, the paper's effect at ``reps``, other
    effects at ``planted_reps``; repetitions split into chunks over ``workers`` processes, each limited to its
    share of the CPUs' BLAS threads (two workers with two BLAS threads each on 2 cores ran C6 about 5× slower:
    small batched decompositions thrash when oversubscribed)."""
    jobs, sizes = [], {}
    for claim_id in claims:
        for fam in families_of(claim_id):
            for effect in fam.effects:
                n = reps if fam.kind == "null" or effect == fam.paper_effect else planted_reps
                sizes[(claim_id, fam.name, effect)] = n
                chunk = max(1, math.ceil(n / max(1, 4 * workers)))
                jobs += [(claim_id, fam.name, effect, s, min(chunk, n - s), settings) for s in range(0, n, chunk)]
    totals: dict[tuple[str, str, float], dict[str, int]] = {}
    done = 0
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    with ProcessPoolExecutor(max_workers=workers, initializer=threadpool_limits, initargs=(threads,)) as pool:
        for claim_id, name, effect, counts in pool.map(_run_cell, jobs):
            acc = totals.setdefault((claim_id, name, effect), dict.fromkeys(counts, 0))
            for k, v in counts.items():
                acc[k] += v
            done += 1
            if progress is not None:
                progress(done, len(jobs))
    cells = []
    for (claim_id, name, effect), counts in totals.items():
        fam = next(f for f in families_of(claim_id) if f.name == name)
        cells.append(Cell(fam, effect, sizes[(claim_id, name, effect)], **counts))
    return cells


def _effect_for_power(effects: list[float], power: list[float]) -> float | None:
    """Smallest effect at which the interpolated power curve reaches ``POWER_TARGET`` (None if never)."""
    for i, p in enumerate(power):
        if p >= POWER_TARGET:
            if i == 0:
                return effects[0]
            e0, e1, p0 = effects[i - 1], effects[i], power[i - 1]
            return e0 + (e1 - e0) * (POWER_TARGET - p0) / (p - p0)
    return None


def claim_entry(claim_id: str, cells: Iterable[Cell], alpha: float) -> dict[str, Any]:
    """The calibration document's entry for one claim (sizes per null family, power curves)."""
    mine = [c for c in cells if c.family.claim == claim_id]
    families = []
    worst: dict[bool, dict[str, Any] | None] = {False: None, True: None}      # inside / outside the assumptions
    for c in (c for c in mine if c.family.kind == "null"):
        bound = alpha + 2 * math.sqrt(alpha * (1 - alpha) / c.reps)
        entry = {"name": c.family.name, "kind": "null", "reps": c.reps, "supported": c.supported,
                 "rate": c.rate(), "ci": list(c.interval()), "contradicted_rate": c.rate("contradicted"),
                 "inconclusive_rate": c.rate("inconclusive"), "errors": c.errors, "alpha": alpha, "bound": bound,
                 "size_ok": c.rate() <= bound, "breaks": c.family.breaks, "assumption": c.family.assumption}
        families.append(entry)
        side = bool(c.family.breaks)
        worst[side] = entry if worst[side] is None or entry["rate"] > worst[side]["rate"] else worst[side]
    best_power = None
    for fam in {c.family.name: c.family for c in mine if c.family.kind == "planted"}.values():
        pts = sorted((c for c in mine if c.family.name == fam.name), key=lambda c: c.effect)
        at_paper = next((c for c in pts if c.effect == fam.paper_effect), None)
        entry = {"name": fam.name, "kind": "planted", "effect_name": fam.effect_name,
                 "effects": [c.effect for c in pts], "reps": [c.reps for c in pts],
                 "power": [c.rate() for c in pts], "power_ci": [list(c.interval()) for c in pts],
                 "contradicted": [c.rate("contradicted") for c in pts],
                 "effect_for_power_80": _effect_for_power([c.effect for c in pts], [c.rate() for c in pts]),
                 "paper_effect": fam.paper_effect, "errors": sum(c.errors for c in pts),
                 "power_at_paper_effect": at_paper.rate() if at_paper else None,
                 "power_at_paper_effect_ci": list(at_paper.interval()) if at_paper else None,
                 "contradicted_at_paper_effect": at_paper.rate("contradicted") if at_paper else None}
        families.append(entry)
        best_power = entry if best_power is None else best_power
    sample_sizes = next((c.family.sample_sizes for c in mine if c.family.sample_sizes), {}) or {}
    inside, outside = worst[False], worst[True]
    return {
        "rule_version": CLAIMS[claim_id].rule_version, "sample_sizes": sample_sizes,
        "size": inside["rate"] if inside else None, "size_ci": inside["ci"] if inside else None,
        "size_family": inside["name"] if inside else None,
        "size_ok": all(f.get("size_ok", True) for f in families if not f.get("breaks")),
        **({"outside_size": outside["rate"], "outside_size_ci": outside["ci"], "outside_family": outside["name"],
            "outside_breaks": outside["breaks"]} if outside else {}),
        "power": best_power["power_at_paper_effect"] if best_power else None,
        "power_ci": best_power["power_at_paper_effect_ci"] if best_power else None,
        "power_family": best_power["name"] if best_power else None,
        "power_ok": bool(best_power and best_power["power_at_paper_effect"] is not None
                         and best_power["power_at_paper_effect"] >= POWER_TARGET),
        "repetitions": max((c.reps for c in mine), default=0), "families": families,
    }


def calibrate(claims: list[str], reps: int, planted_reps: int, workers: int | None = None, command: str = "",
              progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The calibration document (``calibration.json``) for ``claims``."""
    settings = load_settings(overrides=CALIBRATION_SETTINGS)
    workers = workers or max(1, os.cpu_count() or 1)
    cells = run_cells(claims, reps, planted_reps, settings, workers, progress)
    return {"kind": "calibration", "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": command, "settings": settings, "calibration_overrides": CALIBRATION_SETTINGS,
            "repetitions": reps, "planted_repetitions": planted_reps, "base_seed": BASE_SEED,
            "claims": {c: [claim_entry(c, cells, settings["alpha"])] for c in claims}}
