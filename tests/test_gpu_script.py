"""``benchmarks/gpu.py`` runs on the CPU with small shapes (``--small``): every shape and dtype goes
through every measurement and ends with a checkpoint total and its 154-checkpoint projection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_benchmark_runs_small_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--small", "--json", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(out.read_text())["results"]
    for shape in ("pythia-410m", "pythia-2.8b", "gpt2-xl"):
        for dtype in ("float32", "bfloat16"):
            mine = [r for r in rows if r["name"].startswith(f"{shape} {dtype}") or f"({shape} {dtype}" in r["name"]]
            steps = [r["name"] for r in mine]
            for step in ("activations", "exact influence sweep", "approx kernel", "exact kernel", "head + layer",
                         "Hill α", "one checkpoint"):
                assert any(step in name for name in steps), (shape, dtype, step, steps)
            total = next(r for r in mine if "one checkpoint" in r["name"])
            assert total["value"] > 0 and "154 checkpoints" in total["note"]
    assert "# every checkpoint" in proc.stdout
