"""A run directory ``reports/<run>/``: write it from records, read it back, re-render it.

``write_run`` writes ``claims.json`` (metadata + every record, Holm-adjusted p-values filled
in) and renders ``claims.md``, ``claims.html`` and ``figures/*.png``; ``render`` re-renders the
last three from ``claims.json`` alone, recomputing nothing but the Holm adjustment. When the
directory holds a ``calibration.json`` (``python -m harness calibrate``) the report gains its
calibration section; a directory with only ``calibration.json`` renders ``calibration.md`` and
``calibration.html``.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.records import (
    ClaimRecord,
    RecordError,
    RunMetadata,
    coerce_records,
    run_document,
    validate_run,
)
from harness.analysis.stats import holm
from harness.report.blocks import Block, Heading
from harness.report.calibration import CALIBRATION_JSON, calibration_blocks, calibration_figures, load_calibration
from harness.report.claim_figures import make_figures
from harness.report.document import build_document
from harness.report.html import to_html
from harness.report.markdown import to_markdown

CLAIMS_JSON = "claims.json"
CLAIMS_MD = "claims.md"
CLAIMS_HTML = "claims.html"
CALIBRATION_MD = "calibration.md"
CALIBRATION_HTML = "calibration.html"
FIGURES_DIR = "figures"


def with_holm(records: Sequence[ClaimRecord]) -> list[ClaimRecord]:
    """Copies of the records with ``p_values_holm``: Holm across the subjects of each claim, per key."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        for key in rec.p_values:
            groups[(rec.claim_id, key)].append(i)
    adjusted: list[dict[str, float | None]] = [{} for _ in records]
    for (_, key), idx in groups.items():
        raw = [records[i].p_values[key] for i in idx]
        p = holm([float("nan") if v is None else v for v in raw])
        for i, v in zip(idx, p):
            adjusted[i][key] = v
    return [coerce_records([replace(rec, p_values_holm=adj)])[0] for rec, adj in zip(records, adjusted)]


def write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _fresh_figures(run_dir: Path) -> Path:
    fig_dir = run_dir / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    for old in fig_dir.glob("*.png"):
        old.unlink()
    return fig_dir


def _write_pages(run_dir: Path, blocks: list[Block], md: str, html: str, title: str) -> list[Path]:
    write_text(run_dir / md, to_markdown(blocks))
    write_text(run_dir / html, to_html(blocks, run_dir, title))
    return [run_dir / md, run_dir / html]


def _calibration(run_dir: Path, fig_dir: Path, claims: Mapping[str, Any]) -> tuple[list[Block], list[Path]]:
    calibration = load_calibration(run_dir)
    if calibration is None:
        return [], []
    refs = calibration_figures(calibration, fig_dir)
    return calibration_blocks(calibration, refs, run_dir, claims), [ref.path for ref in refs]


def _render(run_dir: Path, meta: RunMetadata, records: list[ClaimRecord]) -> list[Path]:
    fig_dir = _fresh_figures(run_dir)
    figures = make_figures(records, fig_dir)
    calibration, calibration_pngs = _calibration(run_dir, fig_dir, meta.claims)
    blocks = build_document(meta, records, figures, run_dir, calibration)
    pages = _write_pages(run_dir, blocks, CLAIMS_MD, CLAIMS_HTML, f"Claims report — {meta.date}")
    return [*pages, *(ref.path for refs in figures for ref in refs), *calibration_pngs]


def _render_calibration(run_dir: Path) -> list[Path]:
    calibration, pngs = _calibration(run_dir, _fresh_figures(run_dir), {})
    blocks = [Heading(f"Calibration report — {run_dir.name}", 1), *calibration]
    return [*_write_pages(run_dir, blocks, CALIBRATION_MD, CALIBRATION_HTML, f"Calibration — {run_dir.name}"), *pngs]


def write_run(
    run_dir: str | os.PathLike,
    records: Sequence[ClaimRecord | Mapping[str, Any]],
    metadata: Mapping[str, Any],
) -> None:
    """Write ``claims.json``, ``claims.md``, ``claims.html`` and ``figures/`` into ``run_dir``.

    ``records`` are ``ClaimRecord`` objects or their JSON dicts (``read_jsonl``); ``metadata`` is
    ``run_metadata(...)``. Every record is validated first (``RecordError`` names the bad one).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    recs = with_holm(coerce_records(records))
    doc = run_document(metadata, recs)
    write_text(run_dir / CLAIMS_JSON, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    meta, recs = validate_run(doc)
    _render(run_dir, meta, recs)


def point_latest(run_dir: str | os.PathLike) -> None:
    """Point ``<run_dir>/../latest`` at ``run_dir`` (atomically, a relative symlink)."""
    run_dir = Path(run_dir)
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, latest)


def load_run(run_dir: str | os.PathLike) -> tuple[RunMetadata, list[ClaimRecord]]:
    """Metadata and records of ``run_dir/claims.json``, validated."""
    path = Path(run_dir) / CLAIMS_JSON
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: a run directory holds the claims.json that `pytest claims/` writes"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path} is not valid JSON: {exc}") from exc
    return validate_run(data)


def render(run_dir: str | os.PathLike) -> list[Path]:
    """Re-render ``claims.md``, ``claims.html`` and ``figures/`` of a run from its ``claims.json``.

    Nothing is measured again; returns the paths written. A directory holding only a
    ``calibration.json`` gets ``calibration.md`` and ``calibration.html``.
    """
    run_dir = Path(run_dir)
    if not (run_dir / CLAIMS_JSON).is_file() and (run_dir / CALIBRATION_JSON).is_file():
        return _render_calibration(run_dir)
    meta, records = load_run(run_dir)
    return _render(run_dir, meta, with_holm(records))
