"""Wall time of building zoo families, against the targets of the foundation issue.

    python -m benchmarks.zoo_build            # the tiny pair (target: ≤ 30 s together on 2 cores)
    python -m benchmarks.zoo_build --default  # the default zoo (target: ≤ 20 min together on 2 cores)

Builds into a fresh temporary directory (never the user's zoo) and reports each family's wall
time, training throughput and final eval loss from its manifest, and the total against the
target. Builds share the cores with anything else running.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.measure import Result
from harness import zoo

TARGETS_S = {"tiny": 30.0, "default": 20 * 60.0}
FAMILIES = {"tiny": ("neox-tiny", "gpt2-tiny"), "default": ("neox-4l", "gpt2-4l")}


def build_times(default: bool) -> list[Result]:
    """One row per family built and one for the total against its target."""
    kind = "default" if default else "tiny"
    rows, total = [], 0.0
    with tempfile.TemporaryDirectory() as root:
        for name in FAMILIES[kind]:
            start = time.perf_counter()
            path = zoo.build(name, Path(root), progress=False)
            seconds = time.perf_counter() - start
            total += seconds
            m = json.loads((path / zoo.MANIFEST).read_text())
            rows.append(Result(f"zoo build: {name}", seconds, "s", seconds=seconds,
                               note=f"{m['tokens_per_s']:.0f} tokens/s, eval loss {m['final_eval_loss_nats']:.3f} nats "
                                    f"(unigram {m['eval_unigram_cross_entropy_nats']:.3f})"))
    rows.append(Result(f"zoo build: the {kind} zoo in all", total, "s", target_max=TARGETS_S[kind], seconds=total))
    return rows


def main() -> None:
    from benchmarks.table import print_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--default", action="store_true", help="build the default zoo instead of the tiny pair")
    print_table(build_times(parser.parse_args().default))


if __name__ == "__main__":
    main()
