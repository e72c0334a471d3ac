"""A run directory ``reports/<run>/``: write it from records, read it back, re-render it.

``write_run`` writes ``claims.json`` (metadata + every record, Holm-adjusted p-values filled
in) and renders ``claims.md``, ``claims.html`` and ``figures/*.png``; ``render`` re-renders the
last three from ``claims.json`` alone, recomputing nothing but the Holm adjustment.
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
from harness.report.document import build_document
from harness.report.figures import make_figures
from harness.report.html import to_html
from harness.report.markdown import to_markdown
from harness.analysis.stats import holm

CLAIMS_JSON = "claims.json"
CLAIMS_MD = "claims.md"
CLAIMS_HTML = "claims.html"
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


def _write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _render(run_dir: Path, meta: RunMetadata, records: list[ClaimRecord]) -> list[Path]:
    figures = make_figures(records, run_dir / FIGURES_DIR)
    blocks = build_document(meta, records, figures, run_dir)
    _write_text(run_dir / CLAIMS_MD, to_markdown(blocks))
    _write_text(run_dir / CLAIMS_HTML, to_html(blocks, run_dir, f"Claims report — {meta.date}"))
    return [run_dir / CLAIMS_MD, run_dir / CLAIMS_HTML, *(ref.path for refs in figures for ref in refs)]


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
    _write_text(run_dir / CLAIMS_JSON, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
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

    Nothing is measured again; returns the paths written.
    """
    run_dir = Path(run_dir)
    meta, records = load_run(run_dir)
    return _render(run_dir, meta, with_holm(records))

