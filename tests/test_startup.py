"""Bad input stops both entry points before any work, with one line naming the problem.

``pytest claims/ …`` (a subprocess from the worktree root) must fail as a pytest usage error —
exit code 4, one ``ERROR:`` line on stderr, nothing collected — and ``python -m harness check …``
must exit 2 with one ``error:`` line on stderr. The CLI runs in this process (its ``main``, the
function ``python -m harness`` calls; one case also as a subprocess); the tiny zoo is built
beforehand so that no build progress is printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
SUBJECT = "zoo:neox-tiny"
VOCAB = 1024  # zoo:neox-tiny's tokenizer ids and unembedding rows

# name → (claims-config JSON or None, extra options, what the one line must say)
CASES = {
    "unknown subject": (None, ["--subjects", "pythia-71m"], "unknown model 'pythia-71m'; known hub families: "),
    "unknown setting": ({"n_nulls": 10}, [], "unknown setting(s) ['n_nulls']; known settings: "),
    "mistyped setting": ({"n_null": 99.9}, [], "setting 'n_null' must be an integer, got 99.9"),
    "alpha out of range": ({"alpha": 1.5}, [], "setting 'alpha' = 1.5 is out of range: (0, 0.5)"),
    "n_bootstrap out of range": ({"n_bootstrap": 0}, [], "setting 'n_bootstrap' = 0 is out of range: >= 1"),
    "token counts of neither length": (None, ["--token-counts", "COUNTS"],
                                       f"holds {VOCAB + 1} counts; {SUBJECT}@step32 has {VOCAB} tokenizer ids and "
                                       f"{VOCAB} unembedding rows (either length is accepted)"),
    "unknown claim id": (None, ["--claims", "C1,C42"], "unknown claim id(s) ['C42']; known: C1, C2, C3"),
    "too few rare positions": ({"min_rare_positions": 10**6, "max_eval_sequences": 16}, [],
                               f"{SUBJECT}@step32: only "),
}


@pytest.fixture
def case_files(tmp_path: Path, tiny_zoo) -> dict[str, Path]:
    """The built tiny zoo, a token-count file one count too long, the report directory."""
    tiny_zoo("neox-tiny")
    counts = tmp_path / "counts.npy"
    np.save(counts, np.ones(VOCAB + 1, dtype=np.int64))
    return {"counts": counts, "reports": tmp_path / "reports", "tmp": tmp_path}


def _arguments(case: str, files: dict[str, Path]) -> list[str]:
    """The options of one bad-input case, common to both entry points (subjects first)."""
    config, extra, _ = CASES[case]
    extra = [str(files["counts"]) if a == "COUNTS" else a for a in extra]
    args = extra if "--subjects" in extra else ["--subjects", SUBJECT, *extra]
    if config is not None:
        path = files["tmp"] / "claims.json"
        path.write_text(json.dumps(config))
        args += ["--claims-config", str(path)]
    return [*args, "--eval-sequences", "8", "--eval-length", "64", "--report-dir", str(files["reports"])]


def _cli_arguments(args: list[str]) -> list[str]:
    """``harness check`` takes the subjects as its positional argument."""
    i = args.index("--subjects")
    return ["check", args[i + 1], *args[:i], *args[i + 2:]]


@pytest.mark.parametrize("case", list(CASES))
def test_pytest_refuses_bad_input_before_collection(case, case_files):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}  # RARE_ZOO_DIR: tiny_zoo
    proc = subprocess.run([sys.executable, "-m", "pytest", "claims/", *_arguments(case, case_files)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and CASES[case][2] in lines[0], proc.stderr
    assert "collected" not in proc.stdout and not case_files["reports"].exists()


@pytest.mark.parametrize("case", list(CASES))
def test_harness_check_refuses_bad_input(case, case_files, capsys):
    assert main(_cli_arguments(_arguments(case, case_files))) == 2
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and CASES[case][2] in lines[0], err
    assert not case_files["reports"].exists()


def test_python_dash_m_harness_exits_2(case_files):
    """The module entry point turns ``main``'s 2 into the process's exit status."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    args = _cli_arguments(_arguments("mistyped setting", case_files))
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {CASES['mistyped setting'][2]}", proc.stderr
