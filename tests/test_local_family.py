"""A Llama-shaped local checkpoint family through ``python -m harness check``: every claim, duplicates dropped.

The family (``hf:<dir>@*``) holds a random init and four checkpoints after a few training updates on
corpus rows, ``token_counts.npy`` of those rows, and ``step16/``: a byte copy of ``step8/`` (as
Pythia has revisions with identical weights). One ``harness check`` run with small settings goes
through every claim — RMSNorm exact influence, gated MLP weights, grouped-query heads — and must
write no ``error`` record; the claims over training must drop the copy, naming it. Whatever the
verdicts on such a model, the code paths are what is tested.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.claims import CLAIMS
from harness.records import validate_run

ROOT = Path(__file__).resolve().parents[1]
STEPS = (0, 1, 2, 4, 8)
DUPLICATE = (16, 8)  # step16/ is a byte copy of step8/
TINY = {"n_bootstrap": 50, "n_null": 50, "n_null_curves": 19, "louvain_seeds": 2, "min_rare_positions": 50,
        "n_null_within_q": 20, "null_exact_checks": 1}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_thread, model_family) -> dict:
    """The family, the finished ``harness check`` process and its validated records by (claim, subject)."""
    tmp = tmp_path_factory.mktemp("check")
    family = model_family(tmp / "llama", "llama", STEPS, updates_per_step=4)
    shutil.copytree(family / f"step{DUPLICATE[1]}", family / f"step{DUPLICATE[0]}")
    (tmp / "tiny.json").write_text(json.dumps(TINY))
    # one torch thread: on tensors this small, more threads only contend (2.5x the CPU time on 2 cores)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "RARE_ZOO_DIR": str(tmp / "zoo"),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "check", f"hf:{family}@*", "--claims-config", str(tmp / "tiny.json"),
         "--eval-sequences", "16", "--eval-length", "64", "--report-dir", str(tmp / "reports"), "--run-name", "llama",
         "--cache-dir", str(tmp / "cache")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    document = tmp / "reports" / "llama" / "claims.json"
    records = validate_run(json.loads(document.read_text()))[1] if document.is_file() else []
    return {"family": family, "proc": proc, "records": {(r.claim_id, r.subject): r for r in records}}


def test_every_claim_runs_on_a_llama_family(run):
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    name = run["family"].name
    want = {(c.id, f"hf:{name}@*" if c.scope == "trajectory" else f"hf:{name}@step{DUPLICATE[0]}")
            for c in CLAIMS.values()}
    assert set(run["records"]) == want
    errors = [f"{c}[{s}]: {r.message}" for (c, s), r in run["records"].items() if r.verdict == "error"]
    assert not errors, errors


def test_duplicate_checkpoints_are_dropped_from_the_claims_over_training(run):
    family, name = run["family"], run["family"].name
    copy, original = (f"hf:{family}@step{s}" for s in DUPLICATE)
    for claim in (c.id for c in CLAIMS.values() if c.scope == "trajectory"):
        record = run["records"][(claim, f"hf:{name}@*")]
        assert record.details["duplicate_checkpoints"] == {copy: original}
        assert record.sample_sizes["checkpoints"] == len(STEPS)
        assert record.sample_sizes["checkpoints_listed"] == len(STEPS) + 1
        assert copy not in record.provenance["weights_sha256"]
        assert record.provenance["weights_sha256"][original] is not None
