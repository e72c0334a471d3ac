"""The claims report: headlines, figures, the front page of many subjects, the calibration section,
errors shown as errors, re-rendering, comparison (text and page), the terminal summary, and the
pages in headless Chromium (required: the test fails when Debian's chromium is missing)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
from dataclasses import replace
from html import escape
from pathlib import Path

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from harness.analysis.stats import holm, summarize_null, wilson_interval
from harness.claims import CLAIMS
from harness.claims.registry import headline
from harness.claims.settings import load_settings
from harness.records import ClaimRecord, UnknownSchemaVersionError, append_jsonl, read_jsonl, run_metadata
from harness.report import compare, load_run, render, terminal_summary, write_compare, write_run
from harness.report.blocks import MISSING
from harness.report.calibration import load_calibration, power_table, size_table
from harness.report.claim_figures import FIGURE_KINDS, planned_figures
from harness.report.figures import FIGURE_DPI, GREY, MAX_WIDTH_IN, OKABE_ITO, draw_png
from harness.report.frontpage import positive_controls, verdict_grid
from harness.report.headline import calibration_text
from harness.report.verdicts import VERDICT_GLYPHS, VERDICT_LABELS, family_of, record_anchor

SETTINGS = load_settings()
LEVEL = 1 - 2 * SETTINGS["alpha"]
FAMILY_STEPS = [0, 1, 2, 4, 8, 16]
SUBJECTS = ["zoo:neox-tiny@step16", "zoo:gpt2-tiny@step16"]
FAMILY = "zoo:neox-tiny@*"
REQUESTED = [*(f"zoo:neox-tiny@step{s}" for s in FAMILY_STEPS), SUBJECTS[1]]
TREND_STEPS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256]
ERROR_MESSAGE = "RuntimeError: influence sweep ran out of memory at neuron 17"
CALIBRATED = {"size": 0.04, "size_ci": [0.0204, 0.0771], "size_family": "lognormal influences", "power": 0.93,
              "power_ci": [0.886, 0.958], "power_family": "planted plateau",
              "sample_sizes": {"rare_positions": 2000, "neurons": 512}, "repetitions": 200, "rule_version": 2,
              "written": "2026-11-02"}
STALE = {"stale": "calibration table is for rule version 1, this record uses 2"}
SCREENSHOTS = os.environ.get("RARE_SCREENSHOT_DIR")


# --- constructed records -----------------------------------------------------------------------
def _record(claim_id: str, subject: str, stat: str, value: float, ci: tuple[float, float], null: np.ndarray,
            supported: dict, contradicted: dict, series: dict, units: str = "", scale_note: str = "",
            smallest: float | None = None) -> ClaimRecord:
    """A decided record of one decisive statistic with its CI, null draws, headline and series."""
    rec = CLAIMS[claim_id].new_record(subject, SETTINGS)
    rec.test_id = f"claims/test_{claim_id}[{subject}]"
    rec.statistics = {stat: value}
    rec.ci = {stat: list(ci)}
    rec.ci_levels = {stat: LEVEL}
    rec.p_values = {stat: float(np.mean(null >= value))}
    rec.null = {stat: summarize_null(null)}
    rec.sample_sizes = {"rare_positions": 2100, "neurons": 512, "null_draws": null.size}
    rec.seeds = {"null": 0, "bootstrap": 0}
    rec.provenance = {"weights_sha256": {subject: "ab" * 32}, "measurements": {f"{subject}:influence": "cd" * 8}}
    rec.series = series
    rec.elapsed_s = 1.5
    band = tuple(np.quantile(null, [(1 - LEVEL) / 2, (1 + LEVEL) / 2]))
    rec.headline = headline(stat.replace("_", " "), value, ci, LEVEL, null_band=band, smallest_effect=smallest,
                            paper=CLAIMS[claim_id].paper, scale_note=scale_note, units=units)
    rec.decide(supported, contradicted, f"{subject}: {stat} = {value:.3g} vs null median {np.median(null):.3g}")
    return rec


def _rank_series(rng: np.random.Generator, own: str, plateau: bool, step0: bool, n: int = 256) -> dict:
    """A planted rare curve (flat plateau to ln rank 3, power law to 5, then decay; or none) and a common
    power law; ``own`` is the curve the claim fits (C1 rare, C2 common), the other its companion."""
    x = np.log(np.arange(1, n + 1))
    common = -1.0 * x - 3.0 * np.clip(x - 5.0, 0, None) - 2.0
    rare = (-0.1 * np.minimum(x, 3.0) - 1.0 * np.clip(x - 3.0, 0, 2.0) - 3.0 * np.clip(x - 5.0, 0, None) - 2.0
            if plateau else common + 0.5)
    curves = {"rare": rare, "common": common}
    other = "common" if own == "rare" else "rare"
    band_x = np.linspace(0, x.max(), 40)
    null_curve = np.interp(band_x, x, common)
    series = {"ln_rank": x, "ln_influence": curves[own] + rng.normal(0, 0.05, n),
              f"ln_rank_{other}": x, f"ln_influence_{other}": curves[other] + rng.normal(0, 0.05, n),
              "fit_x": x, "fit_y": curves[own], "breakpoints": [3.0, 5.0] if plateau and own == "rare" else [5.0],
              "band_x": band_x, "band_lo": null_curve - 0.4, "band_hi": null_curve + 0.4}
    if step0:
        series.update(ln_rank_step0=x, ln_influence_step0=-0.3 * x - 4.0)
    return series


def _trend_series(rng: np.random.Generator, rising: bool) -> dict:
    z = np.linspace(0, 4, len(TREND_STEPS)) if rising else rng.normal(0, 0.5, len(TREND_STEPS))
    return {"steps": TREND_STEPS, "standardized": z, "standardized_lo": z - 0.6, "standardized_hi": z + 0.6,
            "null_band": [-1.645, 1.645]}


def _graph_series(rng: np.random.Generator, n: int = 128, communities: int = 6) -> dict:
    community = rng.integers(0, communities, n)
    centres = rng.normal(0, 5, (communities, 2))
    xy = centres[community] + rng.normal(0, 1, (n, 2))
    return {"node_x": xy[:, 0], "node_y": xy[:, 1], "node_community": community,
            "specialist_ids": rng.choice(n, 12, replace=False)}


def _heads_series(rng: np.random.Generator, layers: tuple[int, ...] = (2, 3), heads: int = 8) -> dict:
    series = {"head_labels": [f"L{L}H{h}" for L in layers for h in range(heads)],
              "layer_labels": [f"L{L}" for L in layers]}
    for metric, scale in (("activation", 1.0), ("loss", 0.6)):
        head = rng.uniform(1, 6, len(layers) * heads) * scale
        layer = np.array([30.0, 42.0]) * scale
        series.update({f"{metric}_head_effects": head, f"{metric}_head_lo": head - 1, f"{metric}_head_hi": head + 1,
                       f"{metric}_layer_effects": layer, f"{metric}_layer_lo": layer - 5,
                       f"{metric}_layer_hi": layer + 5, f"{metric}_head_effects_common": head + rng.normal(0, .3, head.size)})
    return series


def make_records(seed: int = 0) -> tuple[list[ClaimRecord], dict[tuple[str, str], list[str]]]:
    """Records of every claim (contradicted, inconclusive and error ones among them) and, for each,
    the figure kinds its series asks for, main figure first."""
    rng = np.random.default_rng(seed)
    records: list[ClaimRecord] = []
    kinds: dict[tuple[str, str], list[str]] = {}

    def add(rec: ClaimRecord, figure_kinds: list[str]) -> None:
        records.append(rec)
        kinds[(rec.claim_id, rec.subject)] = figure_kinds

    for k, subject in enumerate(SUBJECTS):
        planted = k == 0  # the second subject has no plateau
        null = rng.normal(0.0, 0.1, 300)
        excess = 0.9 if planted else 0.02
        rec = _record("C1", subject, "plateau_excess", excess, (excess - 0.2, excess + 0.2), null,
                      {"above_null": planted, "three_beat_two": True}, {"excess_below_smallest_effect": not planted},
                      {**_rank_series(rng, "rare", planted, step0=planted), "null_plateau_score": null,
                       "observed_plateau_score": excess}, "slope units", "slope units; the papers give no score", 0.3)
        rec.calibration = CALIBRATED if planted else STALE
        add(rec, ["rank", "null"])
        add(_record("C2", subject, "common_excess", 0.01, (-0.05, 0.08 if planted else 0.3), null,
                    {"common_equivalent_to_null": planted}, {"common_plateau": False},
                    _rank_series(rng, "common", planted, step0=False), "slope units",
                    "equivalence margin ±c2_margin", SETTINGS["c2_margin"]), ["rank"])
        kappa = rng.normal(0, 0.05, 300)
        add(_record("C5", subject, "kappa", 0.02, (-0.05, 0.09), kappa, {"dispersed_equivalent": True},
                    {"concentrated": False}, {**_graph_series(rng), "null_kappa": kappa, "observed_kappa": 0.02},
                    "κ", "the papers report Q, which cannot see a module", SETTINGS["c5_margin"]), ["graph", "null"])
        pr, corr = rng.normal(8, 1, 300), rng.normal(0.05, 0.01, 300)
        effect = 3.0 if planted else 0.1
        add(_record("C6", subject, "mean_corr_effect", effect, (effect - 0.8, effect + 0.8), rng.normal(0, 1, 300),
                    {"lower_dimension": planted, "higher_correlation": planted},
                    {"correlation_below_smallest_effect": not planted},
                    {"null_participation_ratio": pr, "observed_participation_ratio": 5.0,
                     "unmatched_participation_ratio": rng.normal(9, 1.5, 300),
                     "null_mean_corr": corr, "observed_mean_corr": 0.09, "unmatched_mean_corr": rng.normal(0.04, .01, 300),
                     "spec_eigenvalues": np.sort(rng.gamma(1, 1, 12))[::-1]}, "null SDs", "null SDs of matched groups",
                    SETTINGS["c6_min_z"]), ["null", "spectrum"])
        add(_record("C7", subject, "activation_max_head_pct", 5.5, (4.0, 7.0), rng.normal(3, 1, 300),
                    {"single_heads_small": True, "layer_exceeds_heads": True}, {"routing_head": False},
                    _heads_series(rng), "%", "% of Σ|a| of the specialists", SETTINGS["c7_head_margin_pct"]), ["heads"])
        add(_record("C8", subject, "alpha_write_effect", 2.5 if planted else 0.4, (1.5, 3.5) if planted else (-0.5, 1.3),
                    rng.normal(0, 1, 300), {"lower_alpha_holm": planted}, {"every_matrix_below_smallest_effect": False},
                    {"null_alpha_read": rng.normal(8, 0.7, 300), "observed_alpha_read": 6.0,
                     "null_alpha_write": rng.normal(7, 0.5, 300), "observed_alpha_write": 5.1}, "null SDs",
                    "null SDs; raw α 5.1 vs matched median 7.0", SETTINGS["c8_min_z"]), ["null"])
    c3 = _record("C3", SUBJECTS[0], "slope_change", 0.1, (-0.3, 0.4), rng.normal(0, 0.2, 300), {"equivalent": False},
                 {"curved": False}, {k: v for k, v in _rank_series(rng, "rare", True, False).items()
                                     if not k.startswith(("band_", "ln_rank_c", "ln_influence_c"))}, "slope units",
                 "0 for an exact power law", SETTINGS["c3_curvature_margin"])
    inside = (c3.series["ln_rank"] >= 3.0) & (c3.series["ln_rank"] < 5.0)
    c3.series.update(middle_x=c3.series["ln_rank"][inside], middle_y=c3.series["ln_influence"][inside])
    add(c3, ["rank"])
    failed = CLAIMS["C3"].new_record(SUBJECTS[1], SETTINGS)
    failed.verdict, failed.message = "error", ERROR_MESSAGE
    add(failed, [])
    rec = _record("C4", FAMILY, "change", 3.5, (2.4, 4.6), rng.normal(0, 1, 300), {"late_above_early": True},
                  {"change_below_smallest_effect": False}, _trend_series(rng, True), "null SDs",
                  "null SDs at each checkpoint", SETTINGS["c4_min_change"])
    rec.headline["statistic"] = "late − early change of the standardised plateau score"
    rec.details.update(early_steps=TREND_STEPS[:3], late_steps=TREND_STEPS[-3:])
    add(rec, ["training"])
    rec = _record("C9", FAMILY, "change", 0.2, (-0.9, 1.3), rng.normal(0, 1, 300), {"late_above_early": False},
                  {"change_below_smallest_effect": False}, _trend_series(rng, False), "null SDs",
                  "null SDs at each checkpoint", SETTINGS["c9_min_change"])
    rec.headline["statistic"] = "late − early change of the standardised spectral separation"
    add(rec, ["training"])
    return records, kinds


def _metadata(subjects: list[str] = REQUESTED) -> dict:
    claims = {c.id: c.describe() for c in CLAIMS.values()}
    return run_metadata(["pytest", "claims/"], subjects, "cpu", {"eval": 0, "claims": 0}, SETTINGS, claims)


def calibration_document() -> dict:
    """A calibration.json of the shape ``python -m harness calibrate`` writes: C1 within its size bound,
    C5 with one null family over it."""
    def null(name: str, supported: int, reps: int = 200, breaks: str = "") -> dict:
        lo, hi = wilson_interval(supported, reps)
        return {"name": name, "kind": "null", "reps": reps, "supported": supported, "rate": supported / reps,
                "ci": [lo, hi], "contradicted_rate": 0.6, "alpha": 0.05, "bound": 0.05 + 2 * (0.05 * 0.95 / reps) ** .5,
                "breaks": breaks, "assumption": "the modules are larger than eight neurons" if breaks else ""}

    def planted(name: str, effect_name: str, power: list[float], paper: float) -> dict:
        effects = [0.0, 0.5, 1.0, 2.0]
        return {"name": name, "kind": "planted", "effect_name": effect_name, "effects": effects, "reps": 200,
                "power": power, "power_ci": [list(wilson_interval(round(p * 200), 200)) for p in power],
                "effect_for_power_80": 0.9, "paper_effect": paper,
                "power_at_paper_effect": power[effects.index(paper)], "contradicted_at_paper_effect": 0.0}

    def entry(families: list[dict], n: int) -> dict:
        return {"rule_version": 2, "sample_sizes": {"rare_positions": n, "neurons": 512}, "size": 0.04,
                "size_ci": [0.02, 0.07], "size_family": families[0]["name"], "power": 0.93, "power_ci": [0.89, 0.96],
                "power_family": families[-1]["name"], "families": families}

    return {"kind": "calibration", "written": "2026-11-02", "command": "python -m harness calibrate",
            "settings": {"alpha": 0.05}, "repetitions": 200, "claims": {
                "C1": [entry([null("lognormal influences", 8), null("gamma influences", 11),
                              planted("planted plateau", "plateau height (ln nats)", [0.05, 0.4, 0.85, 1.0], 1.0)], 2000),
                       entry([null("lognormal influences", 9),
                              planted("planted plateau", "plateau height (ln nats)", [0.05, 0.55, 0.92, 1.0], 1.0)], 8000)],
                "C5": [entry([null("iid activations", 7), null("block-correlated activations", 31),
                              null("modules of two", 90, breaks="large_modules"),
                              planted("planted module", "module strength (κ)", [0.05, 0.3, 0.7, 0.99], 0.5)], 2000)]}}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ClaimRecord], dict]:
    records, kinds = make_records()
    run_dir = tmp_path_factory.mktemp("reports") / "run-a"
    run_dir.mkdir()
    (run_dir / "calibration.json").write_text(json.dumps(calibration_document()))
    write_run(run_dir, records, _metadata())
    return run_dir, records, kinds


@pytest.fixture(scope="module")
def run_b(run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run A with C8 on the first subject contradicted, C1's headline moved outside its CI, C9 missing and
    another device; only the changed C8 record keeps its series (so only it has a figure)."""
    run_dir, records, _ = run
    changed = [replace(r, series={}) for r in records if r.claim_id != "C9"]
    i = next(i for i, r in enumerate(changed) if r.claim_id == "C8" and r.subject == SUBJECTS[0])
    c8 = replace(next(r for r in records if r.claim_id == "C8" and r.subject == SUBJECTS[0]))
    c8.statistics = {"alpha_write_effect": -0.5}
    c8.decide({"lower_alpha_holm": False}, {"every_matrix_below_smallest_effect": True}, "alpha_write_effect = -0.5")
    changed[i] = c8
    j = next(i for i, r in enumerate(changed) if r.claim_id == "C1" and r.subject == SUBJECTS[0])
    changed[j] = replace(changed[j], headline={**changed[j].headline, "value": 2.0, "ci": [1.8, 2.2]})
    meta = _metadata()
    meta["device"] = "cuda:0"
    out = tmp_path_factory.mktemp("reports") / "run-b"
    write_run(out, changed, meta)
    return out


def _family_records() -> tuple[list[ClaimRecord], list[str]]:
    """A run of many subjects: pythia-70m (154 checkpoints, subject claims on the last), pythia-160m (C1
    on every one of its 154 checkpoints), pythia-410m over 3 training seeds, and 25 single models."""
    steps = [0, *(2 ** i for i in range(10)), *range(1000, 143001, 1000)]
    assert len(steps) == 154
    subject_claims = [c for c in CLAIMS.values() if c.scope == "subject"]
    trend_claims = [c for c in CLAIMS.values() if c.scope == "trajectory"]
    rng = np.random.default_rng(5)
    records, requested = [], []

    def rec(claim_id: str, subject: str, verdict: str) -> ClaimRecord:
        r = CLAIMS[claim_id].new_record(subject, SETTINGS)
        r.headline = headline("statistic", float(rng.normal()), (-1.0, 1.0), LEVEL, units="null SDs")
        r.decide({"shown": verdict == "supported"}, {"against": verdict == "contradicted"}, f"{claim_id} on {subject}")
        return r

    def verdict() -> str:
        return str(rng.choice(["supported", "supported", "supported", "inconclusive", "contradicted"]))

    for family in ("pythia-70m", "pythia-160m"):
        requested += [f"{family}@step{s}" for s in steps]
        measured = steps[-1:] if family == "pythia-70m" else steps
        for c in subject_claims:
            for s in (measured if c.id == "C1" else steps[-1:]):
                records.append(rec(c.id, f"{family}@step{s}", verdict()))
        records += [rec(c.id, f"{family}@*", verdict()) for c in trend_claims]
    for seed in (1, 2, 3):
        requested += [f"pythia-410m-seed{seed}@step{s}" for s in (0, 1000, 143000)]
        records += [rec(c.id, f"pythia-410m-seed{seed}@step143000", verdict()) for c in subject_claims]
    records += [rec(c.id, "pythia-410m@* (3 seeds)", verdict()) for c in trend_claims]
    for k in range(25):
        requested.append(f"model-{k:02d}")
        records += [rec(c.id, f"model-{k:02d}", "supported" if k % 3 else verdict()) for c in subject_claims]
    return records, requested


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ClaimRecord], list[str]]:
    records, requested = _family_records()
    run_dir = tmp_path_factory.mktemp("reports") / "many"
    write_run(run_dir, records, _metadata(requested))
    return run_dir, records, requested


def _section(md: str, claim_id: str) -> str:
    start = md.index(f"\n## {claim_id} ")
    end = md.find("\n## ", start + 1)
    return md[start:end if end > 0 else None]


# --- files, sections, headlines ------------------------------------------------------------------
def test_every_output_file_is_written_main_figure_first(run) -> None:
    run_dir, records, kinds = run
    for name in ("claims.json", "claims.md", "claims.html"):
        assert (run_dir / name).is_file()
    plan = planned_figures(records, run_dir / "figures")
    for rec, mine in zip(records, plan):
        assert [k.name for k, _ in mine] == kinds[(rec.claim_id, rec.subject)], (rec.claim_id, rec.subject)
        assert all(path.is_file() for _, path in mine)
    claim_pngs = {p for mine in plan for _, p in mine}
    calibration_pngs = {p.name for p in (run_dir / "figures").glob("*.png") if p not in claim_pngs}
    assert calibration_pngs == {"calibration_size.png", "calibration_power_C1.png", "calibration_power_C5.png"}
    meta, loaded = load_run(run_dir)
    assert len(loaded) == len(records) and meta.subjects == REQUESTED


def test_markdown_puts_each_claims_headline_table_before_its_details(run) -> None:
    run_dir, records, _ = run
    md = (run_dir / "claims.md").read_text()
    assert md.index("## Verdicts by family") < md.index("## C1 ") < md.index("## Calibration") < md.index("## Run")
    for claim_id in {r.claim_id for r in records}:
        claim = CLAIMS[claim_id]
        section = _section(md, claim_id)
        assert section.startswith(f"\n## {claim_id} {claim.name}\n")
        headline_table = section.index("| Subject | Verdict | Decisive statistic |")
        details = section.index(f"### Details of {claim_id}")
        assert section.index(claim.statement) < headline_table < details
        assert section.index(claim.rule) > details  # the rule is a detail
        for name, text in claim.assumptions.items():     # and so are the assumptions it states (C7)
            assert section.index(f"“{name}”: {text}.") > section.index("Assumptions the rule states:") > details
        for rec in (r for r in records if r.claim_id == claim_id):
            row = next(line for line in section.splitlines() if line.startswith(f"| {rec.subject} |"))
            assert VERDICT_LABELS[rec.verdict] in row
            if rec.headline:
                assert rec.headline["statistic"] in row and f"{rec.headline['value']:.3g}" in row
                assert f"[{rec.headline['ci'][0]:.3g}, {rec.headline['ci'][1]:.3g}]" in row
                assert rec.headline["scale_note"].replace("|", "\\|") in row
    for figure in (run_dir / "figures").glob("*.png"):
        assert f"](figures/{figure.name})" in md


def test_headline_shows_statistic_ci_null_band_paper_calibration_and_main_figure(run) -> None:
    run_dir, records, _ = run
    html = (run_dir / "claims.html").read_text()
    plan = dict(zip(((r.claim_id, r.subject) for r in records), planned_figures(records, run_dir / "figures")))
    for rec in records:
        start = html.index(f'id="{record_anchor(rec.claim_id, rec.subject)}"')
        card = html[start:html.index("</article>", start)]
        assert f'data-claim="{rec.claim_id}"' in html[start - 200:start + 100]
        assert VERDICT_LABELS[rec.verdict] in card and VERDICT_GLYPHS[rec.verdict] in card
        if rec.verdict == "error":
            assert ERROR_MESSAGE in card and "<img" not in card
            continue
        h = rec.headline
        band = f"[{h['null_band'][0]:.3g}, {h['null_band'][1]:.3g}]"
        for text in (h["statistic"], f"{h['value']:.3g} {h['units']}", f"{LEVEL:.0%} CI", band,
                     calibration_text(rec.calibration)):
            assert escape(text) in card, (rec.claim_id, text)
        assert '<svg class="strip"' in card  # the CI drawn against the null band on one axis
        main = plan[(rec.claim_id, rec.subject)]
        assert (main and "<img" in card) or (not main and "<img" not in card)
    c1 = next(r for r in records if r.claim_id == "C1" and r.subject == SUBJECTS[0])
    assert calibration_text(c1.calibration) == ("size 4.0% [2.0, 7.7] under “lognormal influences”; power 93.0% "
                                                "[88.6, 95.8] against “planted plateau”; 200 repetitions at "
                                                "rare_positions=2000, neurons=512")
    assert calibration_text(STALE).startswith("calibration stale: calibration table is for rule version 1")
    assert calibration_text({}).startswith("not calibrated")
    # a claim whose rule states an assumption cites the worst family beyond it too, from the committed table
    from harness.claims.calibration_table import cite_calibration
    c7 = next(r for r in records if r.claim_id == "C7")
    cited = cite_calibration(replace(c7, rule_version=CLAIMS["C7"].rule_version))
    assert cited["outside_breaks"] == "pareto_tail" and cited["outside_size"] > cited["size"]
    assert (f"outside the rule's assumption “pareto_tail”: {100 * cited['outside_size']:.1f}%"
            in calibration_text(cited))


def test_details_fold_every_quantity_in_html(run) -> None:
    run_dir, records, _ = run
    html = (run_dir / "claims.html").read_text()
    for claim_id in {r.claim_id for r in records}:
        start = html.index(f"<summary>Details of {claim_id}:")
        folded = html[start:html.index("</details>", start)]
        assert "<th>Null median [5%, 95%]</th>" in folded and escape(CLAIMS[claim_id].rule) in folded
        assert html.index(f'data-claim="{claim_id}"') < start


def test_front_page_groups_subjects_by_family(run) -> None:
    run_dir, records, _ = run
    meta, loaded = load_run(run_dir)
    grid = verdict_grid(loaded, meta.subjects, meta.claims)
    assert [c for c, _, _ in grid.columns] == sorted({r.claim_id for r in records}, key=lambda c: int(c[1:]))
    assert [g.row.label for g in grid.groups] == ["zoo:neox-tiny", SUBJECTS[1]]
    neox = grid.groups[0]
    assert [c.label for c in neox.children] == [SUBJECTS[0], FAMILY]
    assert neox.row.note.startswith(f"{len(FAMILY_STEPS)} checkpoints")
    for rec in records:
        group = next(g for g in grid.groups if family_of(rec.subject) == family_of(g.row.label))
        col = [c for c, _, _ in grid.columns].index(rec.claim_id)
        row = next((c for c in group.children if c.label == rec.subject), group.row)
        cell = row.cells[col]
        assert cell.verdict == rec.verdict and cell.text == f"{VERDICT_GLYPHS[rec.verdict]} {rec.verdict}"
        assert cell.anchor == record_anchor(rec.claim_id, rec.subject)
    assert neox.row.cells[[c for c, _, _ in grid.columns].index("C4")].verdict == "supported"  # the trend claim
    assert grid.groups[1].row.cells[[c for c, _, _ in grid.columns].index("C4")].text == MISSING


def test_front_page_lists_the_recovery_of_planted_neurons(run) -> None:
    """Subjects whose group records carry ``planted_recovery`` get one row each under the grid; a run without
    them gets no table."""
    _, records, _ = run
    assert positive_controls(records) is None
    found = {"selected": 17, "planted": 17, "recovered": 12, "precision": 12 / 17, "recall": 12 / 17}
    marked = [replace(r, details={**r.details, "planted_recovery": found}) if r.subject == SUBJECTS[1] else r
              for r in records]
    table = positive_controls(marked, SUBJECTS)
    assert table.rows == ((SUBJECTS[1], "17", "17", "12", "0.71", "0.71"),)


def test_front_page_of_many_subjects_stays_one_row_per_family(many) -> None:
    run_dir, records, requested = many
    meta, loaded = load_run(run_dir)
    grid = verdict_grid(loaded, meta.subjects, meta.claims)
    assert len(grid.columns) == len(CLAIMS) and len(grid.groups) == 3 + 25
    labels = [g.row.label for g in grid.groups]
    assert labels[:3] == ["pythia-70m", "pythia-160m", "pythia-410m"]
    by_label = dict(zip(labels, grid.groups))
    assert by_label["pythia-70m"].row.note == "154 checkpoints, trend claims over training"
    c1 = by_label["pythia-160m"].row.cells[0]
    counts = [int(n) for n in re.findall(r"\d+", c1.text)]
    assert sum(counts) == 154 and c1.title.startswith("C1 on 154 subjects")
    assert len(by_label["pythia-160m"].children) == 155  # every checkpoint, then the trajectory
    assert len(by_label["pythia-410m"].children) == 4 and by_label["pythia-410m"].children[-1].label.endswith("(3 seeds)")
    assert all(not g.children for g in grid.groups[3:])
    html = (run_dir / "claims.html").read_text()
    assert html.count('<details class="vfamily') == 3 and not re.search(r"<details[^>]* open", html)
    assert f"--cols: {len(CLAIMS)}" in html and 'id="only-open"' in html
    md = (run_dir / "claims.md").read_text()
    family_table = md[md.index("| Family | Subjects |"):md.index("**Every subject")]
    assert len(family_table.strip().splitlines()) == 2 + len(grid.groups)
    # In the claim's section the last checkpoint's headline shows; the 153 earlier ones fold.
    c1 = html[html.index('<h2 id="C1">'):html.index('<h2 id="C2">')]
    folded = c1.index("<summary>C1 at 153 earlier checkpoints of pythia-160m</summary>")
    assert c1.index('id="C1--pythia_160m_step143000"') < folded < c1.index('id="C1--pythia_160m_step0"')
    assert "### C1 at 153 earlier checkpoints of pythia-160m" in md


def test_error_and_inconclusive_render_as_such(run) -> None:
    run_dir, records, _ = run
    planted = {(r.claim_id, r.subject): r.verdict for r in records if r.verdict != "supported"}
    assert planted == {("C1", SUBJECTS[1]): "contradicted", ("C2", SUBJECTS[1]): "inconclusive",
                       ("C3", SUBJECTS[0]): "inconclusive", ("C3", SUBJECTS[1]): "error",
                       ("C6", SUBJECTS[1]): "contradicted", ("C8", SUBJECTS[1]): "inconclusive",
                       ("C9", FAMILY): "inconclusive"}
    md = (run_dir / "claims.md").read_text()
    html = (run_dir / "claims.html").read_text()
    assert ERROR_MESSAGE in md and ERROR_MESSAGE in html
    assert f"{SUBJECTS[1]} — ERROR: {ERROR_MESSAGE}" in md
    failed = next(r for r in records if r.claim_id == "C1" and r.subject == SUBJECTS[1])
    assert f"{SUBJECTS[1]} — CONTRADICTED: {failed.message}" in md
    assert '<td class="v-error">ERROR</td>' in html and '<td class="v-contradicted">CONTRADICTED</td>' in html


def test_holm_is_across_subjects_within_a_claim(run) -> None:
    run_dir, records, _ = run
    _, loaded = load_run(run_dir)
    for claim_id in ("C1", "C6", "C8"):
        mine = [r for r in loaded if r.claim_id == claim_id]
        for key in mine[0].p_values:
            assert [r.p_values_holm[key] for r in mine] == pytest.approx(holm([r.p_values[key] for r in mine]))
    lone = next(r for r in loaded if r.claim_id == "C4")
    assert lone.p_values_holm == lone.p_values  # one subject: nothing to adjust


# --- calibration ----------------------------------------------------------------------------------
def test_calibration_section_tables_and_figures(run, tmp_path: Path) -> None:
    run_dir, _, _ = run
    calibration = load_calibration(run_dir)
    sizes = size_table(calibration)
    assert [row[2] for row in sizes.rows] == ["lognormal influences", "gamma influences", "lognormal influences",
                                              "iid activations", "block-correlated activations", "modules of two"]
    # 31/200 > α + 2 SE; a family that breaks a stated assumption is shown, not judged
    assert [row[7] for row in sizes.rows] == ["✓ yes", "✓ yes", "✓ yes", "✓ yes", "✗ NO",
                                              "not judged (above the bound): outside the rule's assumptions"]
    assert [row[3] for row in sizes.rows] == ["kept"] * 5 + ["breaks “large_modules”"]
    lo, hi = wilson_interval(8, 200)
    assert sizes.rows[0][5] == f"4.0% [{100 * lo:.1f}, {100 * hi:.1f}]" and sizes.rows[0][6] == "8.1%"
    powers = power_table(calibration)
    assert [(row[2], row[6].split()[0], row[7]) for row in powers.rows] == [
        ("planted plateau", "85.0%", "0.9"), ("planted plateau", "92.0%", "0.9"), ("planted module", "30.0%", "0.9")]
    md = (run_dir / "claims.md").read_text()
    section = md[md.index("## Calibration"):md.index("## Run")]
    for text in ("Size under null families", "Power under planted effects", "Bound α + 2 SE",
                 "Effect for power 0.8", "](figures/calibration_size.png)", "](figures/calibration_power_C1.png)",
                 "C5 “large_modules”: the modules are larger than eight neurons."):
        assert text in section
    # A directory with only calibration.json renders a calibration report.
    only = tmp_path / "calibration-run"
    only.mkdir()
    shutil.copy(run_dir / "calibration.json", only)
    written = render(only)
    assert {p.name for p in written} >= {"calibration.md", "calibration.html", "calibration_size.png"}
    (only / "calibration.json").write_text('{"kind": "calibration", "claims": {"C1": [{"families": [{"kind": "x"}]}]}}')
    with pytest.raises(ValueError, match="calibration.json: a family of C1"):
        render(only)


# --- re-rendering and schema ---------------------------------------------------------------------
def test_render_rebuilds_outputs_from_claims_json_alone(run, tmp_path: Path) -> None:
    run_dir, _, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    json_bytes = (copy / "claims.json").read_bytes()
    (copy / "claims.md").unlink()
    (copy / "claims.html").unlink()
    shutil.rmtree(copy / "figures")
    written = render(copy)
    assert (copy / "claims.json").read_bytes() == json_bytes
    assert (copy / "claims.md").read_text() == (run_dir / "claims.md").read_text()
    assert sorted(p.name for p in written if p.suffix == ".png") == sorted(p.name for p in (run_dir / "figures").glob("*.png"))


def test_render_refuses_an_unknown_schema_version(run, tmp_path: Path) -> None:
    run_dir, _, _ = run
    copy = tmp_path / "future"
    shutil.copytree(run_dir, copy)
    doc = json.loads((copy / "claims.json").read_text())
    doc["records"][3]["schema_version"] = 99
    (copy / "claims.json").write_text(json.dumps(doc))
    with pytest.raises(UnknownSchemaVersionError, match=r"schema_version 99.*reads \[2\]"):
        render(copy)


def test_render_of_a_directory_without_claims_json_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="claims.json"):
        render(tmp_path)


# --- comparison -----------------------------------------------------------------------------------
def test_compare_text_lists_verdicts_then_moved_statistics(run, run_b) -> None:
    run_dir, records, _ = run
    text = compare(run_dir, run_b)
    assert text.index("Verdict changes (1):") < text.index("Moved beyond their CIs") < text.index("Statistic changes")
    c8_version = next(r.rule_version for r in records if r.claim_id == "C8")
    assert f"C8[{SUBJECTS[0]}]: supported -> contradicted (rule v{c8_version})" in text
    assert f"C1[{SUBJECTS[0]}] headline: plateau excess: 0.9 [0.7, 1.1] -> 2 [1.8, 2.2] (Δ 1.1)" in text
    assert f"C8[{SUBJECTS[0]}] statistics.alpha_write_effect: 2.5 -> -0.5 (Δ -3)" in text
    assert f"Only in A (1):\n  C9[{FAMILY}]: inconclusive" in text
    assert "device: cpu -> cuda:0" in text
    assert f"Unchanged: {len(records) - 3} of {len(records) - 1}" in text
    same = compare(run_dir, run_dir)
    assert "Verdict changes: none" in same and "Moved beyond their CIs: none" in same


def test_compare_lists_rule_version_changes_and_does_not_count_them_unchanged(run, tmp_path: Path) -> None:
    """A run whose C1 records were decided by a newer rule: the text and the page list the claim with both
    versions right after the verdicts, and those records no longer count as unchanged."""
    run_dir, records, _ = run
    bumped = [replace(r, rule_version=r.rule_version + 1) if r.claim_id == "C1" else r for r in records]
    out = tmp_path / "run-c"
    write_run(out, bumped, _metadata())
    n_c1 = sum(r.claim_id == "C1" for r in records)
    version = next(r.rule_version for r in records if r.claim_id == "C1")
    text = compare(run_dir, out)
    assert text.index("Verdict changes: none") < text.index("Rule version changes (1):") < text.index("Moved beyond")
    assert f"  C1: v{version} -> v{version + 1} ({n_c1} records)" in text
    assert f"Unchanged: {len(records) - n_c1} of {len(records)}" in text
    html = write_compare(run_dir, out).read_text()
    assert "Rule version changes (1)" in html and f"<td>v{version + 1}</td>" in html


def test_compare_page_and_cli(run, run_b, capsys) -> None:
    from harness.cli import main

    run_dir, _, _ = run
    assert main(["report", "--compare", str(run_dir), str(run_b)]) == 0
    out = capsys.readouterr().out
    page = run_b / f"compare-{run_dir.name}.html"
    assert f"wrote {page}" in out and "Verdict changes (1):" in out
    html = page.read_text()
    assert html.index("Verdict changes (1)") < html.index("Statistics that moved beyond their CIs (") \
        < html.index("Records in one run only (1)") < html.index("Every other difference")
    anchor = record_anchor("C8", SUBJECTS[0])
    assert f'id="A-{anchor}"' in html and f'id="B-{anchor}"' in html
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 2  # A's and B's main figure of C8
    assert path_is_self_contained(html)


def test_terminal_summary_from_jsonl_dicts(run, tmp_path: Path) -> None:
    run_dir, records, _ = run
    for rec in records:
        append_jsonl(tmp_path / "gw0.jsonl", rec)
    text = terminal_summary(read_jsonl([tmp_path / "gw0.jsonl"]), run_dir / "claims.html")
    lines = text.splitlines()
    n = {v: sum(r.verdict == v for r in records) for v in VERDICT_LABELS}
    assert lines[0] == (f"claims: {n['supported']} supported, {n['contradicted']} contradicted, {n['inconclusive']} "
                        f"inconclusive, {n['error']} error ({len(records)} records)")
    header = lines[1].split()
    assert header == ["subject", *sorted({r.claim_id for r in records}, key=lambda c: int(c[1:]))]
    row = next(line for line in lines if line.startswith(SUBJECTS[1])).split()
    assert row[header.index("C3")] == "ERROR" and row[header.index("C1")] == "CONTRADICTED"
    assert any(line.startswith(f"  ERROR C3[{SUBJECTS[1]}]: RuntimeError") for line in lines)
    assert lines[-1] == f"report: {run_dir / 'claims.html'}"
    assert terminal_summary([]) == "claims: no records"


# --- figures ---------------------------------------------------------------------------------------
ALLOWED_COLOURS = {*OKABE_ITO.values(), GREY, "#ffffff", "#e5e5e5"}


def _colours(fig: Figure) -> set[str]:
    """Every colour a figure's data artists use (lines, markers, collections, patches), as hex."""
    out = set()
    for ax in fig.axes:
        for line in ax.lines:
            out |= {line.get_color(), line.get_markerfacecolor(), line.get_markeredgecolor()}
        for coll in ax.collections:
            out |= {tuple(c) for c in coll.get_facecolors()} | {tuple(c) for c in coll.get_edgecolors()}
        for patch in ax.patches:
            out |= {tuple(patch.get_facecolor()), tuple(patch.get_edgecolor())}
    return {matplotlib.colors.to_hex(c).lower() for c in out if c not in ("none", None)
            and matplotlib.colors.to_rgba(c)[3] > 0}


def test_every_figure_kind_is_labelled_captioned_and_colour_blind_safe(tmp_path: Path) -> None:
    records, _ = make_records(seed=1)
    allowed = {c.lower() for c in ALLOWED_COLOURS}
    for kind in FIGURE_KINDS:
        for rec in (r for r in records if kind.applies(r.series)):
            figures = []
            ref = draw_png(tmp_path / f"{kind.name}.png", lambda fig: figures.append(fig) or kind.draw(fig, rec),
                           kind.size(rec))
            fig = figures[0]
            assert "\n" not in ref.caption and rec.subject in ref.caption, kind.name
            for ax in fig.axes:
                assert ax.get_ylabel(), (kind.name, rec.claim_id)
            assert all(ax.get_xlabel() for ax in fig.axes if ax.get_subplotspec().is_last_row()), kind.name
            assert _colours(fig) <= allowed, (kind.name, rec.claim_id, _colours(fig) - allowed)
            width, height = matplotlib.image.imread(ref.path).shape[1::-1]
            assert 640 <= width <= MAX_WIDTH_IN * FIGURE_DPI and height <= 900, (kind.name, width, height)


def test_rank_figure_draws_band_step0_fit_breakpoints_rare_and_common() -> None:
    records, _ = make_records(seed=2)
    kind = next(k for k in FIGURE_KINDS if k.name == "rank")
    for claim_id, own, other in (("C1", "rare", "common"), ("C2", "common", "rare")):
        fig = Figure()
        kind.draw(fig, next(r for r in records if r.claim_id == claim_id and r.subject == SUBJECTS[0]))
        labels = set(fig.axes[0].get_legend_handles_labels()[1])
        assert {f"fitted segments ({own})", f"{own} targets", f"{other} targets", "fitted breakpoints",
                f"null curves, central {LEVEL:.0%} band ({own})"} <= labels
        assert ("untrained checkpoint (step 0, rare)" in labels) == (claim_id == "C1")


def test_graph_figure_highlights_specialists_by_community() -> None:
    records, _ = make_records(seed=4)
    rec = next(r for r in records if r.claim_id == "C5")
    fig = Figure()
    next(k for k in FIGURE_KINDS if k.name == "graph").draw(fig, rec)
    community = np.asarray(rec.series["node_community"])
    spec_communities = set(community[np.asarray(rec.series["specialist_ids"])])
    ax = fig.axes[0]
    assert len(ax.collections) == 1 + len(spec_communities)  # every neuron, then one layer per community
    assert sum(len(c.get_offsets()) for c in ax.collections[1:]) == len(rec.series["specialist_ids"])


def test_series_of_missing_values_still_render(tmp_path: Path) -> None:
    records, kinds = make_records(seed=3)
    for rec in records:  # every number a measurement could not produce (NaN) is written as null
        rec.series = {k: v if k.endswith(("_labels", "community", "_ids")) else
                      [None] * len(v) if isinstance(v, (list, np.ndarray)) else None for k, v in rec.series.items()}
        rec.headline = {**rec.headline, "value": None, "ci": None} if rec.headline else {}
    write_run(tmp_path, records, _metadata())
    assert len(list((tmp_path / "figures").glob("*.png"))) == sum(len(k) for k in kinds.values())


def _data_uri_images(html: str) -> list[np.ndarray]:
    return [matplotlib.image.imread(io.BytesIO(base64.b64decode(b)), format="png")
            for b in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def path_is_self_contained(html: str) -> bool:
    """No resource outside the page: every src an embedded data URI, every href an anchor, no script."""
    return not (re.search(r'src\s*=\s*"(?!data:)', html) or re.search(r'href\s*=\s*"(?!#)', html)
                or "http://" in html or "https://" in html or "<script" in html or "@import" in html)


def test_html_is_self_contained(run) -> None:
    run_dir, _, _ = run
    html = (run_dir / "claims.html").read_text()
    assert path_is_self_contained(html)
    images = _data_uri_images(html)
    assert len(images) == len(list((run_dir / "figures").glob("*.png")))
    assert all(img.shape[0] >= 300 and img.shape[1] >= 640 for img in images)


# --- headless Chromium ---------------------------------------------------------------------------
FIRST_SCREEN = (1280, 800)
IMAGES_LOADED = ("Promise.all([...document.images].map(i => i.decode().then(() => i.naturalWidth, () => 0)))")
HEADLINE_POSITION = """(() => {{
  document.getElementById("{claim}").scrollIntoView({{block: "start"}});
  const r = document.querySelector('.headline[data-claim="{claim}"] .stat').getBoundingClientRect();
  return [r.top, r.bottom, window.innerHeight];
}})()"""


def _shots(tmp_path: Path) -> Path:
    out = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_pages_in_headless_chromium(run, run_b, many, tmp_path: Path) -> None:
    from fixtures.browser import CHROMIUM, Chromium

    if CHROMIUM is None:
        pytest.fail("Debian's chromium is required for the report's browser check: apt-get install -y chromium "
                    "(.ci/run installs it)")
    run_dir, records, _ = run
    shots = _shots(tmp_path)
    page_b = write_compare(run_dir, run_b)
    with Chromium(tmp_path / "profile", *FIRST_SCREEN) as browser:
        planted = tmp_path / "planted.html"  # the detector first: a page with a script error must be caught
        planted.write_text('<!DOCTYPE html><html><body><script>throw new Error("planted");</script></body></html>')
        browser.open(planted)
        assert any("planted" in m for m in browser.errors()), browser.messages()

        browser.open(run_dir / "claims.html")
        assert browser.errors() == [], browser.errors()
        widths = browser.evaluate(IMAGES_LOADED)
        assert len(widths) == len(list((run_dir / "figures").glob("*.png"))) and min(widths) > 0, widths
        browser.screenshot(shots / "claims.png")
        for claim_id in sorted({r.claim_id for r in records}, key=lambda c: int(c[1:])):
            top, bottom, height = browser.evaluate(HEADLINE_POSITION.format(claim=claim_id))
            assert 0 <= top and bottom <= height, f"{claim_id}'s headline is not in the first screen of its section"
            browser.screenshot(shots / f"claims_{claim_id}.png")
        pixels = matplotlib.image.imread(shots / "claims.png")
        assert pixels.shape[:2] == FIRST_SCREEN[::-1] and pixels.std() > 0.05

        browser.open(page_b)
        assert browser.errors() == [], browser.errors()
        widths = browser.evaluate(IMAGES_LOADED)
        assert len(widths) == 2 and min(widths) > 0
        assert browser.evaluate("document.querySelector('.headline').getBoundingClientRect().top") < FIRST_SCREEN[1]
        browser.screenshot(shots / "compare.png")

        many_dir, many_records, _ = many
        browser.open(many_dir / "claims.html")
        assert browser.errors() == [], browser.errors()
        assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the grid overflows"
        families = browser.evaluate("document.querySelectorAll('.vgrid > .vfamily').length")
        height = browser.evaluate("document.querySelector('.vgrid').getBoundingClientRect().height")
        assert families == 28 and height < 40 * (families + 2), height  # collapsed: one line per family
        browser.screenshot(shots / "many.png")
        shown = "[...document.querySelectorAll('.vgrid > .vfamily')].filter(e => e.offsetParent !== null).length"
        browser.evaluate("document.getElementById('only-open').click()")
        problems = len({family_of(r.subject) for r in many_records if r.verdict != "supported"})
        assert browser.evaluate(shown) == problems < families
        browser.evaluate("document.getElementById('only-open').click(); document.querySelector('details.vfamily').open = true")
        assert browser.evaluate("document.querySelector('details.vfamily .vchild').offsetParent !== null")
        browser.screenshot(shots / "many_open.png")
