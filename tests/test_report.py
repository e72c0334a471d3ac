"""The claims report: every section and figure from records the test makes, errors shown as
errors, re-rendering, comparison, the terminal summary, and the HTML in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from harness.records import ClaimRecord, UnknownSchemaVersionError, read_jsonl, append_jsonl, run_metadata
from harness.claims.registry import CLAIMS, load_settings
from harness.report import compare, load_run, render, terminal_summary, write_run
from harness.report.document import VERDICT_LABELS, verdict_matrix
from harness.report.figures import FIGURE_DPI, FIGURE_KINDS, FIGURE_SIZE_IN
from harness.analysis.stats import empirical_p, holm, percentile_ci, summarize_null

SETTINGS = load_settings()
ALPHA = SETTINGS["alpha"]
SUBJECTS = ["zoo:neox-tiny@step16", "zoo:gpt2-tiny@step16"]
FAMILY = "zoo:neox-tiny@*"
STEPS = [0, 1, 2, 4, 8, 16]
N_NULL = 300
N_BOOT = 200
ERROR_MESSAGE = "RuntimeError: influence sweep ran out of memory at neuron 17"


def _tested(claim_id: str, subject: str, stat: str, observed: float, null: np.ndarray,
            alternative: str, series: dict, seed: int, claims_difference: bool = True) -> ClaimRecord:
    """A record deciding ``stat`` against its null draws: empirical p < alpha when the claim is a
    difference from the null, p > alpha when it is the absence of one (C5)."""
    rng = np.random.default_rng(seed)
    boot = observed + rng.normal(0.0, null.std(), size=N_BOOT) / 4
    rec = ClaimRecord(claim_id, subject, paper=CLAIMS[claim_id].paper, test_id=f"claims/test_{claim_id}[{subject}]")
    rec.statistics = {stat: observed}
    rec.ci = {stat: list(percentile_ci(boot))}
    rec.p_values = {stat: empirical_p(observed, null, alternative)}
    rec.null = {stat: summarize_null(null)}
    rec.sample_sizes = {"null_draws": null.size, "bootstrap": N_BOOT}
    rec.seeds = {"null": seed}
    rec.thresholds = {"alpha": ALPHA}
    rec.series = series
    rec.elapsed_s = 1.5
    significant = rec.p_values[stat] < ALPHA
    rec.decide({"significant" if claims_difference else "not_significant": significant == claims_difference},
               f"{stat} = {observed:.3g} vs null median "
               f"{np.median(null):.3g}, p = {rec.p_values[stat]:.3g}")
    return rec


def _influence_series(rng: np.random.Generator, plateau: bool, own: str, n: int = 256) -> dict:
    """A planted rare curve (flat plateau to ln rank 3, power law to 5, then decay; or no plateau)
    and a common curve (power law, decay); ``own`` (rare or common) is the fitted one, the other
    its companion, as C1 and C2 record them."""
    x = np.log(np.arange(1, n + 1))
    kinks = [3.0, 5.0]
    common = -1.0 * x - 3.0 * np.clip(x - kinks[1], 0, None)
    rare = -0.1 * np.minimum(x, kinks[0]) - 1.0 * np.clip(x - kinks[0], 0, kinks[1] - kinks[0]) \
        - 3.0 * np.clip(x - kinks[1], 0, None) if plateau else common + 0.5
    curves = {"rare": rare, "common": common}
    other = "common" if own == "rare" else "rare"
    return {"ln_rank": x, "ln_influence": curves[own] + rng.normal(0, 0.05, n),
            f"ln_rank_{other}": x, f"ln_influence_{other}": curves[other] + rng.normal(0, 0.05, n),
            "fit_x": x, "fit_y": curves[own], "breakpoints": kinks if own == "rare" and plateau else kinks[1:]}


def make_records(seed: int = 0) -> tuple[list[ClaimRecord], dict[tuple[str, str], set[str]]]:
    """Records of every claim (a failed one and an errored one among them) and, for each, the
    figure kinds its series asks for."""
    rng = np.random.default_rng(seed)
    records: list[ClaimRecord] = []
    kinds: dict[tuple[str, str], set[str]] = {}

    def add(rec: ClaimRecord, figure_kinds: set[str]) -> None:
        records.append(rec)
        kinds[(rec.claim_id, rec.subject)] = figure_kinds

    for k, subject in enumerate(SUBJECTS):
        planted = k == 0  # the second subject has no plateau: C1 fails there
        null = rng.normal(0.0, 0.1, N_NULL)
        add(_tested("C1", subject, "plateau_score", 0.9 if planted else 0.0, null, "greater",
                    _influence_series(rng, planted, "rare"), seed + k), {"influence"})
        add(_tested("C2", subject, "rare_minus_common", 0.8, null, "greater",
                    _influence_series(rng, planted, "common"), seed + 10 + k), {"influence"})
        null_q = rng.normal(0.07, 0.01, N_NULL)
        add(_tested("C5", subject, "Q", 0.071, null_q, "two-sided",
                    {"null_Q": null_q, "observed_Q": 0.071}, seed + 20 + k, claims_difference=False), {"null"})
        null_dim, null_corr = rng.normal(40, 3, N_NULL), rng.normal(0.05, 0.01, N_NULL)
        rec = _tested("C6", subject, "effective_dim", 25.0, null_dim, "less",
                      {"null_effective_dim": null_dim, "observed_effective_dim": 25.0,
                       "null_mean_corr": null_corr, "observed_mean_corr": 0.2}, seed + 30 + k)
        rec.statistics["mean_corr"] = 0.2
        rec.p_values["mean_corr"] = empirical_p(0.2, null_corr, "greater")
        add(rec, {"null"})
        heads = rng.uniform(1, 8, 8)
        rec = _tested("C7", subject, "layer_minus_max_head", 45.0 - heads.max(), rng.normal(0, 3, N_NULL),
                      "greater", {"head_effects": heads, "layer_effect": 45.0,
                                  "head_labels": [f"L1H{h}" for h in range(8)]}, seed + 40 + k)
        rec.thresholds.update(max_single_head_pct=SETTINGS["max_single_head_pct"], min_layer_pct=SETTINGS["min_layer_pct"])
        add(rec, {"heads"})
        null_a = rng.normal(8.0, 0.7, N_NULL)
        add(_tested("C8", subject, "alpha_out", 3.0, null_a, "less",
                    {"null_alpha_out": null_a, "observed_alpha_out": 3.0}, seed + 50 + k), {"null"})
    # C3 measured without figure data on the first subject; its measurement raised on the second.
    add(_tested("C3", SUBJECTS[0], "r2", 0.98, rng.uniform(0.5, 0.9, N_NULL), "greater", {}, seed + 60), set())
    add(ClaimRecord("C3", SUBJECTS[1], verdict="error", message=ERROR_MESSAGE, paper=CLAIMS["C3"].paper), set())
    scores = np.array([0.0, 0.05, 0.1, 0.3, 0.6, 0.9])
    add(_tested("C4", FAMILY, "spearman_rho", 1.0, rng.uniform(-1, 1, N_NULL), "greater",
                {"steps": STEPS, "plateau_score": scores, "exponent": 0.3 + scores / 2, "null_band": [-0.1, 0.1]},
                seed + 70), {"plateau_training"})
    add(_tested("C9", FAMILY, "spearman_rho", 1.0, rng.uniform(-1, 1, N_NULL), "greater",
                {"steps": STEPS, "alpha_spec": 9 - scores * 5, "alpha_null_median": [9.0] * len(STEPS)},
                seed + 80), {"alpha_training"})
    return records, kinds


def _metadata() -> dict:
    return run_metadata(["pytest", "claims/"], [*SUBJECTS, FAMILY], "cpu", {"global": 0}, SETTINGS)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ClaimRecord], dict]:
    records, kinds = make_records()
    run_dir = tmp_path_factory.mktemp("reports") / "run-a"
    write_run(run_dir, records, _metadata())
    return run_dir, records, kinds


def _figure_kind(name: str) -> str:
    return next(kind for kind, _, _ in FIGURE_KINDS if f"_{kind}_" in name)


def test_every_output_file_is_written(run) -> None:
    run_dir, records, kinds = run
    for name in ("claims.json", "claims.md", "claims.html"):
        assert (run_dir / name).is_file()
    written = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    assert len(written) == sum(len(k) for k in kinds.values())
    for (claim_id, subject), expected in kinds.items():
        mine = {_figure_kind(n) for n in written if n.startswith(f"{claim_id}_")
                and n.endswith(re.sub(r"[^A-Za-z0-9]+", "_", subject).strip("_") + ".png")}
        assert mine == expected, (claim_id, subject)
    meta, loaded = load_run(run_dir)
    assert len(loaded) == len(records)
    assert meta.subjects == [*SUBJECTS, FAMILY]


def test_markdown_has_every_section(run) -> None:
    run_dir, records, _ = run
    md = (run_dir / "claims.md").read_text()
    assert "## Verdict matrix" in md and "## Run" in md
    for claim_id in {r.claim_id for r in records}:
        claim = CLAIMS[claim_id]
        assert f"## {claim_id} {claim.name}" in md
        for text in (claim.statement, claim.paper):
            assert text.replace("|", "\\|") in md
    for figure in (run_dir / "figures").glob("*.png"):
        assert f"](figures/{figure.name})" in md
    for subject in SUBJECTS:
        assert subject in md


def test_verdict_matrix_shows_each_records_verdict(run) -> None:
    _, records, _ = run
    subjects = [*SUBJECTS, FAMILY]
    table = verdict_matrix(records, subjects)
    cells = {(row[0].split()[0], s): cell for row in table.rows for s, cell in zip(subjects, row[1:])}
    for rec in records:
        assert cells[(rec.claim_id, rec.subject)] == VERDICT_LABELS[rec.verdict]
    assert cells[("C4", SUBJECTS[0])] == "—"


def test_failed_claim_and_error_render_as_such(run) -> None:
    run_dir, records, _ = run
    failed = next(r for r in records if r.claim_id == "C1" and r.subject == SUBJECTS[1])
    planted = {("C1", SUBJECTS[1]): "fail", ("C3", SUBJECTS[1]): "error"}
    assert {(r.claim_id, r.subject): r.verdict for r in records if r.verdict != "pass"} == planted
    md = (run_dir / "claims.md").read_text()
    html = (run_dir / "claims.html").read_text()
    assert ERROR_MESSAGE in md and ERROR_MESSAGE in html
    assert f"{SUBJECTS[1]} — ERROR: {ERROR_MESSAGE}" in md
    assert f"{SUBJECTS[1]} — FAIL: {failed.message}" in md
    assert '<td class="ERROR">ERROR</td>' in html and '<td class="FAIL">FAIL</td>' in html


def test_holm_is_across_subjects_within_a_claim(run) -> None:
    run_dir, records, _ = run
    _, loaded = load_run(run_dir)
    for claim_id in ("C1", "C6", "C8"):
        mine = [r for r in loaded if r.claim_id == claim_id]
        for key in mine[0].p_values:
            assert [r.p_values_holm[key] for r in mine] == pytest.approx(holm([r.p_values[key] for r in mine]))
    lone = next(r for r in loaded if r.claim_id == "C4")
    assert lone.p_values_holm == lone.p_values  # one subject: nothing to adjust


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
    with pytest.raises(UnknownSchemaVersionError, match=r"schema_version 99.*reads \[1\]"):
        render(copy)


def test_render_of_a_directory_without_claims_json_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="claims.json"):
        render(tmp_path)


def test_compare_shows_only_what_changed(run, tmp_path: Path) -> None:
    run_dir, records, _ = run
    changed = [replace(r, series={}) for r in records]  # compare reads no series: skip drawing
    i = next(i for i, r in enumerate(changed) if r.claim_id == "C8" and r.subject == SUBJECTS[0])
    rec = changed[i]
    rec.statistics = {"alpha_out": 7.9}
    rec.decide({"significant": False}, "alpha_out = 7.9")
    meta = _metadata()
    meta["device"] = "cuda:0"
    write_run(tmp_path / "run-b", changed[:-1], meta)  # and the last record (C9) is missing
    text = compare(run_dir, tmp_path / "run-b")
    assert f"C8[{SUBJECTS[0]}]: pass -> fail" in text
    assert f"C8[{SUBJECTS[0]}] statistics.alpha_out: 3 -> 7.9 (Δ 4.9)" in text
    assert f"Only in A (1):\n  C9[{FAMILY}]: {records[-1].verdict}" in text
    assert "device: cpu -> cuda:0" in text
    assert f"Unchanged: {len(records) - 2} of {len(records) - 1}" in text
    assert "Verdict changes: none" in compare(run_dir, run_dir)


def test_terminal_summary_from_jsonl_dicts(run, tmp_path: Path) -> None:
    run_dir, records, _ = run
    for rec in records:
        append_jsonl(tmp_path / "gw0.jsonl", rec)
    text = terminal_summary(read_jsonl([tmp_path / "gw0.jsonl"]), run_dir / "claims.html")
    lines = text.splitlines()
    n_fail = sum(r.verdict == "fail" for r in records)
    assert lines[0] == f"claims: {len(records) - n_fail - 1} pass, {n_fail} fail, 1 error ({len(records)} records)"
    header = lines[1].split()
    assert header == ["subject", *sorted({r.claim_id for r in records})]
    row = next(line for line in lines if line.startswith(SUBJECTS[1])).split()
    assert row[header.index("C3")] == "ERROR" and row[header.index("C1")] == "FAIL"
    assert any(line.startswith(f"  ERROR C3[{SUBJECTS[1]}]: RuntimeError") for line in lines)
    assert lines[-1] == f"report: {run_dir / 'claims.html'}"
    assert terminal_summary([]) == "claims: no records"


def test_every_figure_kind_labels_its_axes_and_has_a_one_line_caption() -> None:
    records, _ = make_records(seed=1)
    for kind, applies, draw in FIGURE_KINDS:
        rec = next(r for r in records if applies(r.series))
        fig = Figure()
        caption = draw(fig, rec)
        assert "\n" not in caption and rec.subject in caption, kind
        for ax in fig.axes:
            assert ax.get_ylabel(), kind
        assert all(ax.get_xlabel() for ax in fig.axes if ax.get_subplotspec().is_last_row()), kind


def test_series_of_missing_values_still_render(tmp_path: Path) -> None:
    records, kinds = make_records(seed=3)
    for rec in records:  # every number a measurement could not produce (NaN) is written as null
        rec.series = {k: v if k == "head_labels" else [None] * len(v) if isinstance(v, (list, np.ndarray)) else None
                      for k, v in rec.series.items()}
    write_run(tmp_path, records, _metadata())
    assert len(list((tmp_path / "figures").glob("*.png"))) == sum(len(k) for k in kinds.values())


def test_influence_figure_labels_the_claims_own_curve() -> None:
    records, _ = make_records(seed=2)
    draw = dict((kind, fn) for kind, _, fn in FIGURE_KINDS)["influence"]
    for claim_id, own in (("C1", "rare"), ("C2", "common")):
        fig = Figure()
        draw(fig, next(r for r in records if r.claim_id == claim_id))
        labels = fig.axes[0].get_legend_handles_labels()[1]
        assert f"fitted segments ({own})" in labels and {"rare targets", "common targets"} <= set(labels)


def _data_uri_images(html: str) -> list[np.ndarray]:
    return [matplotlib.image.imread(io.BytesIO(base64.b64decode(b)), format="png")
            for b in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def test_html_is_self_contained(run) -> None:
    run_dir, _, kinds = run
    html = (run_dir / "claims.html").read_text()
    assert not re.search(r'(src|href)\s*=\s*"(?!data:)', html), "every src/href must be an embedded data URI"
    assert "http://" not in html and "https://" not in html and "<script" not in html
    images = _data_uri_images(html)
    assert len(images) == sum(len(k) for k in kinds.values())
    expected_shape = (round(FIGURE_SIZE_IN[1] * FIGURE_DPI), round(FIGURE_SIZE_IN[0] * FIGURE_DPI))
    assert all(img.shape[:2] == expected_shape for img in images)


# --- headless Chromium ---------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
CHROMIUM_TIMEOUT_S = 90
# A console line in Chromium's stderr log: [pid:tid:date:INFO:CONSOLE:line] "message", source: ...
CONSOLE_LINE = re.compile(r":CONSOLE[:(\]].*")
PROBE = """<script>window.addEventListener("load", () => {
  const imgs = [...document.images];
  console.log("report-probe images=" + imgs.length + " broken=" + imgs.filter(i => !i.complete || i.naturalWidth === 0).length);
});</script>"""


def _chromium(page: Path, screenshot: Path, profile: Path) -> list[str]:
    """Open ``page`` in headless Chromium (no network features), screenshot it, return its console lines."""
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
            "--window-size=1280,2400", f"--screenshot={screenshot}", page.resolve().as_uri()]
    done = subprocess.run(args, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert screenshot.is_file(), f"chromium wrote no screenshot (rc {done.returncode}): {done.stderr[-2000:]}"
    return [m.group(0) for m in CONSOLE_LINE.finditer(done.stderr)]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's `chromium` is not installed (apt-get install chromium)")
def test_html_in_headless_chromium(run, tmp_path: Path) -> None:
    run_dir, _, kinds = run
    # The detector first: a page with a planted script error must be caught.
    planted = tmp_path / "planted.html"
    planted.write_text('<!DOCTYPE html><html><body><script>throw new Error("planted");</script></body></html>')
    assert any("Uncaught Error: planted" in line for line in _chromium(planted, tmp_path / "planted.png", tmp_path / "p0"))

    shot = tmp_path / "claims_screenshot.png"
    console = _chromium(run_dir / "claims.html", shot, tmp_path / "p1")
    assert console == [], f"console messages from claims.html: {console}"
    pixels = matplotlib.image.imread(shot)
    assert pixels.std() > 0.05, "the screenshot is blank"

    probe = run_dir / "probe.html"  # a copy with a load-time check that every image decoded
    probe.write_text((run_dir / "claims.html").read_text().replace("</body>", PROBE + "</body>"))
    lines = _chromium(probe, tmp_path / "probe.png", tmp_path / "p2")
    probe.unlink()
    n_figures = sum(len(k) for k in kinds.values())
    assert any(f"report-probe images={n_figures} broken=0" in line for line in lines), lines
