"""The claims report: ``reports/<run>/`` with claims.json, claims.md, claims.html and figures.

Entry points (used by the pytest plugin and by ``python -m harness report``):

- ``write_run(run_dir, records, metadata)`` — write a run directory from records;
- ``render(run_dir)`` — re-render Markdown, HTML and figures from ``claims.json`` (and the
  calibration section from ``calibration.json`` when the directory holds one);
- ``compare(run_a, run_b)`` — text of what changed between two runs;
  ``write_compare(run_a, run_b)`` — the same as an HTML page in run B's directory;
- ``terminal_summary(records, report_path=None)`` — the compact verdict table;
- ``run_metadata(...)`` — re-exported from ``harness.records``.

Modules, one job each: ``rundir`` (files), ``document`` (the report's layout), ``frontpage``
(verdict grid), ``headline`` (a record's decisive statistic), ``calibration`` (calibration
section), ``claim_figures`` / ``figures`` (figures), ``blocks`` (what renderers draw),
``markdown`` / ``html`` (renderers), ``compare`` / ``compare_html`` (two runs), ``verdicts``
(verdict vocabulary and ordering), ``summary`` (terminal), ``baseline`` (verdict baselines).
"""

from harness.records import run_metadata
from harness.report.compare import compare
from harness.report.compare_html import write_compare
from harness.report.rundir import load_run, point_latest, render, write_run
from harness.report.summary import terminal_summary

__all__ = ["compare", "load_run", "point_latest", "render", "run_metadata", "terminal_summary", "write_compare",
           "write_run"]
