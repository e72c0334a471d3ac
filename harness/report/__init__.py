"""The claims report: ``reports/<run>/`` with claims.json, claims.md, claims.html and figures.

Entry points (used by the pytest plugin and by ``python -m harness report``):

- ``write_run(run_dir, records, metadata)`` — write a run directory from records;
- ``render(run_dir)`` — re-render Markdown, HTML and figures from ``claims.json``;
- ``compare(run_a, run_b)`` — text of what changed between two runs;
- ``terminal_summary(records, report_path=None)`` — the compact verdict table;
- ``run_metadata(...)`` — re-exported from ``harness.records``.
"""

from harness.records import run_metadata
from harness.report.compare import compare
from harness.report.rundir import load_run, point_latest, render, write_run
from harness.report.summary import terminal_summary

__all__ = ["compare", "load_run", "point_latest", "render", "run_metadata", "terminal_summary", "write_run"]
