"""Merge the runs of a sharded claims run (``--shard K/N``) into one report.

``merge_runs(run_dirs, out_dir, command_line)`` reads each run's ``claims.json``, refuses
inconsistent input with one line (``MergeError``) — a (claim, subject) recorded twice, a claim
whose rule version differs between runs, runs with different settings — and writes one run
directory with every record. ``write_run`` recomputes the Holm adjustment across all the
subjects of each claim, so the merged p-values are those of one unsharded run.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from harness.records import ClaimRecord, RunMetadata
from harness.report.rundir import load_run, write_run


class MergeError(ValueError):
    """Runs that cannot be merged; the message is one line."""


def _claim_order(claim_id: str) -> tuple[int, str]:
    """``C2`` before ``C10``."""
    digits = re.sub(r"\D", "", claim_id)
    return (int(digits) if digits else 0, claim_id)


def _check_rules(runs: Sequence[tuple[Path, RunMetadata, list[ClaimRecord]]]) -> None:
    """Every claim has one rule version across the runs' metadata and records."""
    seen: dict[str, tuple[int, Path]] = {}
    for path, meta, records in runs:
        versions = [(cid, int(desc.get("rule_version", 0))) for cid, desc in meta.claims.items()]
        versions += [(r.claim_id, r.rule_version) for r in records]
        for cid, version in versions:
            first = seen.setdefault(cid, (version, path))
            if first[0] != version:
                raise MergeError(f"rule-version mismatch: {cid} is v{first[0]} in {first[1]} and v{version} in {path}")


def merge_runs(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, command_line: str) -> Path:
    """Write the merged run of ``run_dirs`` into ``out_dir`` and return it (module docstring)."""
    if not run_dirs:
        raise MergeError("nothing to merge: name the runs (reports/<run> directories)")
    runs = [(Path(d), *load_run(d)) for d in run_dirs]
    _check_rules(runs)
    first_path, first_meta, _ = runs[0]
    owner: dict[tuple[str, str], Path] = {}
    merged: list[ClaimRecord] = []
    subjects: list[str] = []
    for path, meta, records in runs:
        if meta.settings != first_meta.settings:
            changed = sorted(k for k in set(meta.settings) | set(first_meta.settings)
                             if meta.settings.get(k) != first_meta.settings.get(k))
            raise MergeError(f"settings differ between {first_path} and {path}: {', '.join(changed)}")
        for record in records:
            key = (record.claim_id, record.subject)
            if key in owner:
                raise MergeError(f"duplicate record {record.claim_id}[{record.subject}] in {owner[key]} and {path}")
            owner[key] = path
            merged.append(record)
        subjects += [s for s in meta.subjects if s not in subjects]
    merged.sort(key=lambda r: _claim_order(r.claim_id))  # stable: each claim's subjects keep the shards' order
    metadata = replace(first_meta, command_line=command_line, subjects=subjects, shard=None,
                       claims={k: v for _, m, _ in runs for k, v in m.claims.items()})
    out = Path(out_dir)
    write_run(out, merged, metadata.to_json())
    return out
