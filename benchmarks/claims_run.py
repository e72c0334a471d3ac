"""The whole claims suite, ``pytest claims/ -n 2``, on the default zoo: cold and warm measurement cache.

Runs only when the default zoo is built (``python -m harness zoo list``); it never builds it. Cold:
a fresh, empty measurement cache; warm: the same command again on the cache the cold run filled.
Both write their reports into a temporary directory. Targets (issue #13): warm ≤ 2 min, cold ≤ 10 min.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import Result
from benchmarks.zoo_build import FAMILIES
from harness import zoo

TARGETS_S = {"cold": 10 * 60.0, "warm": 2 * 60.0}
ROOT = Path(__file__).resolve().parents[1]


def claims_runs() -> list[Result]:
    """A cold and a warm run's wall time, or skipped rows when the default zoo is not built."""
    if not all(zoo.is_built(name) for name in FAMILIES["default"]):
        return [Result(f"pytest claims/ -n 2, {kind} cache (default zoo)", None, "s", target_max=target,
                       note="skipped: default zoo not built") for kind, target in TARGETS_S.items()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-claims-") as tmp:
        for kind, target in TARGETS_S.items():
            cmd = [sys.executable, "-m", "pytest", "claims/", "-n", "2", "-q", "-p", "no:cacheprovider",
                   "--cache-dir", f"{tmp}/cache", "--report-dir", f"{tmp}/reports", "--run-name", kind]
            start = time.perf_counter()
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            ok = done.returncode in (0, 1)  # 1: a claim contradicted, a finding
            rows.append(Result(f"pytest claims/ -n 2, {kind} cache (default zoo)", seconds if ok else None, "s",
                               target_max=target, seconds=seconds,
                               note="" if ok else f"failed (pytest exit {done.returncode}): {done.stdout[-300:]}"))
    return rows
