"""End to end on the tiny zoo: ``pytest claims/`` and ``python -m harness check`` give the same records.

Both entry points run the registered procedures through one runner, so on the same subjects,
settings and cache their records are identical (but for timing, test ids and provenance of when
a measurement was first computed). Every (claim, target) pair has a record, none of them an
error; every verdict agrees with the checks that decided it; the report renders; the verdict
baseline written by ``check`` matches the pytest run, and a changed verdict makes
``python -m harness report --baseline`` exit 1.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.claims import CLAIMS
from harness.records import validate_run, verdict_of

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS = "zoo:neox-tiny@*,zoo:gpt2-tiny@*"
# Small resample counts: this checks the plumbing, not the claims.
QUICK = {"n_bootstrap": 50, "n_null": 60, "n_null_curves": 19, "louvain_seeds": 2, "n_null_within_q": 20,
         "min_rare_positions": 50}
OPTIONS = ["--eval-sequences", "48", "--eval-length", "64"]
VOLATILE = ("elapsed_s", "test_id")


def _records(run: Path) -> dict[str, dict]:
    _, records = validate_run(json.loads((run / "claims.json").read_text()))
    out = {}
    for r in records:
        data = r.to_json()
        for key in VOLATILE:
            data.pop(key)
        out[f"{r.claim_id}[{r.subject}]"] = data
    return out


@pytest.mark.slow
def test_pytest_and_check_give_identical_records(tmp_path):
    config = tmp_path / "quick.json"
    config.write_text(json.dumps(QUICK))
    env = dict(os.environ, RARE_ZOO_DIR=str(tmp_path / "zoo"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    common = ["--claims-config", str(config), "--cache-dir", str(tmp_path / "cache"),
              "--report-dir", str(tmp_path / "reports"), *OPTIONS]
    check = subprocess.run([sys.executable, "-m", "harness", "check", SUBJECTS, *common, "--run-name", "check",
                            "--write-baseline", str(tmp_path / "baseline.json")],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    pytest_run = subprocess.run([sys.executable, "-m", "pytest", "claims/", "-q", "-p", "no:cacheprovider",
                                 "--subjects", SUBJECTS, *common, "--run-name", "pytest"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert pytest_run.returncode in (0, 1), pytest_run.stdout[-3000:] + pytest_run.stderr[-3000:]
    assert "rare-token claims" in pytest_run.stdout

    by_check, by_pytest = _records(tmp_path / "reports" / "check"), _records(tmp_path / "reports" / "pytest")
    assert set(by_check) == set(by_pytest)
    assert {key.split("[")[0] for key in by_check} == set(CLAIMS)
    for key in by_check:
        assert by_check[key] == by_pytest[key], key
    for key, r in by_check.items():
        assert r["verdict"] != "error", (key, r["message"])
        if r["supported_checks"] or r["contradicted_checks"]:
            assert verdict_of(r["supported_checks"], r["contradicted_checks"]) == r["verdict"], key
        assert r["rule_version"] == CLAIMS[r["claim_id"]].rule_version
        assert r["provenance"]["measurements"], key
    run = tmp_path / "reports" / "pytest"
    assert (run / "claims.html").stat().st_size > 0 and (run / "junit.xml").is_file()
    assert all(c in (run / "claims.md").read_text() for c in CLAIMS)

    same = subprocess.run([sys.executable, "-m", "harness", "report", str(run), "--baseline",
                           str(tmp_path / "baseline.json")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert same.returncode == 0, same.stdout + same.stderr
    baseline = json.loads((tmp_path / "baseline.json").read_text())
    from_run = subprocess.run([sys.executable, "-m", "harness", "report", str(run), "--write-baseline",
                               str(tmp_path / "from_run.json")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert from_run.returncode == 0, from_run.stdout + from_run.stderr
    written = json.loads((tmp_path / "from_run.json").read_text())
    assert (written["verdicts"], written["rule_versions"]) == (baseline["verdicts"], baseline["rule_versions"])
    first = next(iter(baseline["verdicts"]))
    baseline["verdicts"][first] = "supported" if baseline["verdicts"][first] != "supported" else "contradicted"
    (tmp_path / "changed.json").write_text(json.dumps(baseline))
    changed = subprocess.run([sys.executable, "-m", "harness", "report", str(run), "--baseline",
                              str(tmp_path / "changed.json")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert changed.returncode == 1 and f"CHANGED {first}" in changed.stdout
