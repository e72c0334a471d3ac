"""The calibration section: the measured size and power of every claim's procedure, from the run
directory's ``calibration.json`` (written by ``python -m harness calibrate``).

The file holds, per claim, entries at given sample sizes, each with null families (``kind:
"null"``: the rate of *supported* verdicts, i.e. the procedure's size, with its Wilson CI and
the acceptance bound α + 2 SE) and planted families (``kind: "planted"``: power at each planted
effect, the effect needed for power 0.8, the paper's effect and the power there)::

    {"kind": "calibration", "written": ..., "command": ..., "settings": {...}, "repetitions": 200,
     "claims": {"C1": [{"rule_version": 2, "sample_sizes": {...}, "size": ..., "power": ...,
                        "families": [{"name", "kind": "null", "reps", "supported", "rate", "ci",
                                      "contradicted_rate", "alpha", "bound", "breaks", "assumption"},
                                     {"name", "kind": "planted",
                                      "effect_name", "effects", "reps", "power", "power_ci",
                                      "effect_for_power_80", "paper_effect", "power_at_paper_effect",
                                      "contradicted_at_paper_effect"}]}]}}

A null family that breaks an assumption the claim's rule states (``breaks``: its name, ``assumption``: its
statement) is shown apart: measured, not judged against the bound. Sizes and powers are proportions in [0, 1],
shown in percent; effects are in each family's
``effect_name`` units.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
from matplotlib.figure import Figure

from harness.analysis.stats import wilson_interval
from harness.records import RecordError
from harness.report.blocks import MISSING, Block, Heading, Paragraph, Table, fmt, fmt_counts, fmt_percent
from harness.report.figures import GREY, OKABE_ITO, FigureRef, arr, category_style, draw_png, figure_size, finite
from harness.report.verdicts import claim_order, slug

CALIBRATION_JSON = "calibration.json"
TARGET_POWER = 0.8
DEFAULT_ALPHA = 0.05


def load_calibration(run_dir: Path) -> dict[str, Any] | None:
    """``run_dir/calibration.json``, or None when there is none; a malformed one is a ``RecordError``."""
    path = Path(run_dir) / CALIBRATION_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, Mapping) or data.get("kind") != "calibration":
        raise RecordError(f"{path} is not a calibration document (its 'kind' must be 'calibration')")
    claims = data.get("claims", {})
    if not (isinstance(claims, Mapping) and all(isinstance(v, list) for v in claims.values())):
        raise RecordError(f"{path}: 'claims' must map claim ids to lists of entries")
    for claim_id, entries in claims.items():
        for entry in entries:
            for family in entry.get("families", []):
                if family.get("kind") not in ("null", "planted") or "name" not in family:
                    raise RecordError(f"{path}: a family of {claim_id} lacks a name or a kind 'null' / 'planted'")
    return dict(data)


def _families(calibration: Mapping[str, Any], kind: str) -> Iterator[tuple[str, dict, dict]]:
    """(claim id, entry, family) of every family of ``kind``, claims in order."""
    for claim_id in sorted(calibration.get("claims", {}), key=claim_order):
        for entry in calibration["claims"][claim_id]:
            for family in entry.get("families", []):
                if family.get("kind") == kind:
                    yield claim_id, entry, family


def size_interval(family: Mapping[str, Any]) -> tuple[float, float] | None:
    """The family's CI of its size: as written, else Wilson's from ``supported`` of ``reps``."""
    if family.get("ci") and None not in family["ci"]:
        return float(family["ci"][0]), float(family["ci"][1])
    if isinstance(family.get("supported"), int) and family.get("reps"):
        return wilson_interval(family["supported"], family["reps"])
    return None


def size_bound(family: Mapping[str, Any]) -> float | None:
    """The acceptance line of a size: as written, else α + 2 SE with SE = √(α(1 − α)/reps)."""
    if finite(family.get("bound")):
        return float(family["bound"])
    alpha, reps = family.get("alpha", DEFAULT_ALPHA), family.get("reps")
    return alpha + 2 * math.sqrt(alpha * (1 - alpha) / reps) if reps else None


def _at_paper_effect(family: Mapping[str, Any]) -> tuple[float, float] | None:
    effects, cis = family.get("effects") or [], family.get("power_ci") or []
    paper = family.get("paper_effect")
    for effect, ci in zip(effects, cis):
        if finite(paper) and finite(effect) and math.isclose(effect, paper) and ci and None not in ci:
            return float(ci[0]), float(ci[1])
    return None


def _claim_label(claim_id: str, claims: Mapping[str, Mapping[str, Any]]) -> str:
    name = claims.get(claim_id, {}).get("name")
    return f"{claim_id} {name}" if name else claim_id


def size_table(calibration: Mapping[str, Any], claims: Mapping[str, Mapping[str, Any]] = {}) -> Table:
    """Claim × null family: size with its CI against the α + 2 SE bound."""
    rows = []
    for claim_id, entry, family in _families(calibration, "null"):
        bound = size_bound(family)
        rate = family.get("rate")
        within = MISSING if bound is None or not finite(rate) else ("✓ yes" if rate <= bound else "✗ NO")
        if family.get("breaks") and within != MISSING:
            within = f"not judged ({'within' if rate <= bound else 'above'} the bound): outside the rule's assumptions"
        rows.append((_claim_label(claim_id, claims), fmt_counts(entry.get("sample_sizes", {})), family["name"],
                     f"breaks “{family['breaks']}”" if family.get("breaks") else "kept",
                     fmt(family.get("reps")), fmt_percent(rate, size_interval(family)),
                     fmt_percent(bound), within, fmt_percent(family.get("contradicted_rate"))))
    return Table(("Claim", "Sample sizes", "Null family", "Rule's stated assumptions", "Repetitions",
                  "Size: supported rate [95% CI]", "Bound α + 2 SE", "Within bound", "Contradicted rate"), tuple(rows))


def broken_assumptions(calibration: Mapping[str, Any]) -> Paragraph | None:
    """What each assumption broken by a null family states, or None when no family breaks one."""
    stated = {(c, f["breaks"]): f.get("assumption", "") for c, _, f in _families(calibration, "null") if f.get("breaks")}
    if not stated:
        return None
    return Paragraph(" ".join(f"{c} “{name}”: {text}." for (c, name), text in stated.items()),
                     label="Outside the rules' stated assumptions (measured, not judged against the bound):")


def power_table(calibration: Mapping[str, Any], claims: Mapping[str, Mapping[str, Any]] = {}) -> Table:
    """Claim × planted family: power at the paper's effect and the effect needed for power 0.8."""
    rows = []
    for claim_id, entry, family in _families(calibration, "planted"):
        rows.append((_claim_label(claim_id, claims), fmt_counts(entry.get("sample_sizes", {})), family["name"],
                     fmt(family.get("reps")), family.get("effect_name", MISSING), fmt(family.get("paper_effect")),
                     fmt_percent(family.get("power_at_paper_effect"), _at_paper_effect(family)),
                     fmt(family.get("effect_for_power_80")),
                     fmt_percent(family.get("contradicted_at_paper_effect"))))
    return Table(("Claim", "Sample sizes", "Planted family", "Repetitions", "Effect (units)", "Paper's effect",
                  "Power at the paper's effect [95% CI]", f"Effect for power {TARGET_POWER:g}",
                  "Contradicted at the paper's effect"), tuple(rows))


def _size_figure(calibration: Mapping[str, Any]):
    rows = list(_families(calibration, "null"))
    first = {side: next((f for _, _, f in rows if bool(f.get("breaks")) == side), None) for side in (False, True)}

    def draw(fig: Figure) -> str:
        ax = fig.add_subplot()
        y = np.arange(len(rows))[::-1]
        for yi, (claim_id, entry, family) in zip(y, rows):
            ci, bound = size_interval(family), size_bound(family)
            colour = GREY if family.get("breaks") else OKABE_ITO["blue"]
            if ci:
                ax.hlines(yi, 100 * ci[0], 100 * ci[1], color=colour, lw=2)
            ax.plot(100 * family.get("rate", np.nan), yi, "o", color=colour, mfc="white" if family.get("breaks") else colour,
                    label=("outside the rule's stated assumptions (not judged)" if family.get("breaks") else
                           "size, 95% Wilson CI") if family is first[bool(family.get("breaks"))] else None)
            if bound is not None:
                ax.plot(100 * bound, yi, "|", color=OKABE_ITO["vermillion"], ms=16, mew=2.5,
                        label="bound α + 2 SE" if yi == y[0] else None)
        alphas = {family.get("alpha", DEFAULT_ALPHA) for _, _, family in rows}
        for a in alphas:
            ax.axvline(100 * a, color=GREY, ls="--", lw=1, label=f"α = {a:g}")
        ax.set_yticks(y, [f"{c} · {f['name']}" + (f" · n={_n_label(e)}" if _n_label(e) else "")
                          for c, e, f in rows])
        ax.set_xlabel("size: rate of supported verdicts on null data (%)")
        ax.set_ylabel("claim · null family")
        ax.set_xlim(left=0)
        fig.legend(loc="outside upper center", ncols=3)
        return (f"Calibration: size of each claim's procedure under {len(rows)} null families (supported rate "
                f"with its 95% Wilson CI) against the acceptance bound α + 2 SE; open grey: families that break "
                f"an assumption the rule states, measured but not judged.")
    return draw, figure_size(width_in=8.5) if len(rows) <= 8 else (8.5, 1.4 + 0.32 * len(rows))


def _n_label(entry: Mapping[str, Any]) -> str:
    return ",".join(str(v) for v in entry.get("sample_sizes", {}).values())


def _power_figure(claim_id: str, calibration: Mapping[str, Any]):
    rows = [(e, f) for c, e, f in _families(calibration, "planted") if c == claim_id]
    names = list(dict.fromkeys(f["name"] for _, f in rows))

    def draw(fig: Figure) -> str:
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        for ax, name in zip(axes, names):
            mine = [(e, f) for e, f in rows if f["name"] == name]
            for i, (entry, family) in enumerate(mine):
                colour, marker = category_style(i)
                x, power = arr(family.get("effects")), 100 * arr(family.get("power"))
                ci = arr([c if c else [None, None] for c in family.get("power_ci", [])])
                if ci.ndim == 2 and ci.shape[0] == x.size:
                    ax.fill_between(x, 100 * ci[:, 0], 100 * ci[:, 1], color=colour, alpha=0.2, lw=0)
                label = f"n: {fmt_counts(entry.get('sample_sizes', {}))}" if len(mine) > 1 else "power, 95% CI"
                ax.plot(x, power, marker + "-", color=colour, label=label)
                if finite(family.get("effect_for_power_80")):
                    ax.plot(family["effect_for_power_80"], 100 * TARGET_POWER, "*", color=colour, ms=12,
                            mec="black", label=f"effect for power {TARGET_POWER:g}" if i == 0 else None)
            paper = mine[0][1].get("paper_effect")
            if finite(paper):
                ax.axvline(paper, color=OKABE_ITO["vermillion"], ls="--", lw=1.5, label=f"paper's effect {paper:g}")
            ax.axhline(100 * TARGET_POWER, color=GREY, ls=":", lw=1)
            ax.axhline(100 * mine[0][1].get("alpha", DEFAULT_ALPHA), color=GREY, ls="--", lw=0.8)
            ax.set_ylim(-2, 102)
            ax.set_xlabel(mine[0][1].get("effect_name") or "planted effect")
            ax.set_ylabel("power: supported rate (%)")
            ax.set_title(name)
            ax.legend(loc="lower right")
        return (f"Calibration of {claim_id}: power against planted effects ({', '.join(names)}) with the paper's "
                f"effect dashed and the effect needed for power {TARGET_POWER:g} starred.")
    return draw, figure_size(columns=len(names))


def calibration_figures(calibration: Mapping[str, Any], fig_dir: Path) -> list[FigureRef]:
    """Draw the size figure and one power figure per claim with planted families into ``fig_dir``."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    out = []
    if any(True for _ in _families(calibration, "null")):
        draw, size = _size_figure(calibration)
        out.append(draw_png(fig_dir / "calibration_size.png", draw, size, "calibration_size"))
    for claim_id in dict.fromkeys(c for c, _, _ in _families(calibration, "planted")):
        draw, size = _power_figure(claim_id, calibration)
        out.append(draw_png(fig_dir / f"calibration_power_{slug(claim_id)}.png", draw, size, "calibration_power"))
    return out


def calibration_blocks(calibration: Mapping[str, Any], figures: list[FigureRef], base: Path,
                       claims: Mapping[str, Mapping[str, Any]] = {}) -> list[Block]:
    """The calibration section: what was run, the size table, the power table and the figures."""
    about = (f"Written {calibration.get('written', MISSING)} by: {calibration.get('command', MISSING)}; "
             f"{calibration.get('repetitions', MISSING)} repetitions per family. Size is the rate of supported "
             "verdicts on data where the claim is false (it should stay within α + 2 SE); power the rate of "
             "supported verdicts on data with a planted effect.")
    blocks: list[Block] = [Heading("Calibration", 2, "calibration"), Paragraph(about)]
    if any(True for _ in _families(calibration, "null")):
        blocks += [Heading("Size under null families", 3), size_table(calibration, claims)]
        broken = broken_assumptions(calibration)
        blocks += [broken] if broken else []
    if any(True for _ in _families(calibration, "planted")):
        blocks += [Heading("Power under planted effects", 3), power_table(calibration, claims)]
    blocks += [ref.image(base) for ref in figures]
    return blocks
