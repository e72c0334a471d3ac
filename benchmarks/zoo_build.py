"""Benchmark: wall time of building zoo families, against the targets of the foundation issue.

    python benchmarks/zoo_build.py            # the tiny pair (target: ≤ 30 s together on 2 cores)
    python benchmarks/zoo_build.py --default  # the default zoo (target: ≤ 20 min together on 2 cores)

Builds into a fresh temporary directory (never the user's zoo), prints each family's wall
time, training throughput and final eval loss from its manifest, and the total against the
target. Run it on an otherwise idle machine: builds share the cores with anything else.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from harness import zoo

TARGETS_S = {"tiny": 30.0, "default": 20 * 60.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--default", action="store_true", help="build the default zoo instead of the tiny pair")
    args = parser.parse_args()
    kind = "default" if args.default else "tiny"
    names = [n for n, s in zoo.ZOO.items() if s.default == args.default]
    with tempfile.TemporaryDirectory() as root:
        total = 0.0
        for name in names:
            start = time.perf_counter()
            path = zoo.build(name, Path(root), progress=False)
            seconds = time.perf_counter() - start
            total += seconds
            m = json.loads((path / zoo.MANIFEST).read_text())
            print(f"{name:<10} {seconds:8.1f} s  {m['tokens_per_s']:8.0f} tokens/s  eval loss "
                  f"{m['final_eval_loss_nats']:.3f} nats (unigram {m['eval_unigram_cross_entropy_nats']:.3f})")
    target = TARGETS_S[kind]
    print(f"{kind} zoo: {total:.1f} s in all = {total / target:.2f}× the {target:.0f} s target")


if __name__ == "__main__":
    main()
