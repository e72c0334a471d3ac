"""End to end: ``pytest claims/ -n 2`` on the tiny zoo in a subprocess, then the merged records and report.

Whatever the verdicts on these 2-layer models, every claim's code path must run: each
(claim, subject) pair has a record, none of them an error, and the report renders.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.records import validate_run
from harness.claims.registry import CLAIMS
from harness.subjects import family_steps

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("zoo:neox-tiny", "zoo:gpt2-tiny")
# Small resample counts: this checks code paths and plumbing, not the claims.
QUICK = {"n_bootstrap": 50, "n_null": 100, "n_null_curves": 5, "n_trend_permutations": 200,
         "n_bootstrap_modularity": 10, "louvain_seeds": 2, "min_rare_positions": 50}


@pytest.mark.slow
def test_claims_run_end_to_end(tmp_path):
    config = tmp_path / "quick.json"
    config.write_text(json.dumps(QUICK))
    env = dict(os.environ, RARE_ZOO_DIR=str(tmp_path / "zoo"), HF_HUB_OFFLINE="1")
    cmd = [
        sys.executable, "-m", "pytest", "claims/", "-n", "2", "-q", "-p", "no:cacheprovider",
        "--subjects", ",".join(f"{f}@*" for f in FAMILIES), "--rare-definition", "longtail_50",
        "--eval-sequences", "48", "--eval-length", "64", "--claims-config", str(config),
        "--report-dir", str(tmp_path / "reports"), "--run-name", "e2e", "--cache-dir", str(tmp_path / "cache"),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode in (0, 1), proc.stdout[-4000:] + proc.stderr[-4000:]
    run = tmp_path / "reports" / "e2e"
    metadata, records = validate_run(json.loads((run / "claims.json").read_text()))
    got = {(r.claim_id, r.subject) for r in records}
    finals = {f"{f}@step{max(family_steps(f))}" for f in FAMILIES}
    want = {(c.id, s) for c in CLAIMS.values() for s in (FAMILIES if c.needs_checkpoints else finals)}
    assert got == want
    errors = [f"{r.claim_id}[{r.subject}]: {r.message}" for r in records if r.verdict == "error"]
    assert not errors, errors
    md = (run / "claims.md").read_text()
    assert all(c.id in md for c in CLAIMS.values())
    assert (run / "claims.html").stat().st_size > 0 and (run / "junit.xml").is_file()
    assert list((run / "figures").glob("*.png"))
    assert (tmp_path / "reports" / "latest").resolve() == run.resolve()
    assert "rare-token claims" in proc.stdout

