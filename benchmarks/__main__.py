"""Run every benchmark and print one table (value, target, ratio, pass/miss), optionally as JSON.

    python -m benchmarks [--json PATH] [--default-zoo] [--quick] [--threads 2]

Rows, in order: the influence sweep against the per-neuron hook loop, its floor and their largest
difference on the default zoo's shape and on a Pythia-160m-shaped model (random weights,
``benchmarks.models``); C1's null curves (approx and exact kernels), C1's regime fits, C5's
Louvain with its null, C7's head and layer ablation, C8's spectra with their null (time and
peak memory each, ``benchmarks.analyses``); the analysis-level calibration's cost per claim and its
estimated wall time on 2 cores against the 15-minute target (``benchmarks.calibration``); the whole
claims suite on the default zoo, cold and warm (skipped unless the default zoo is built,
``benchmarks.claims_run``); the zoo build (the
tiny pair, or the default zoo with ``--default-zoo``); the sweep's scaling as positions, d_mlp
and vocabulary double. ``--quick`` shrinks every size (a smoke run, not a measurement).
Every ratio comes from this one run; nothing is timed inside a test.
"""

from __future__ import annotations

import argparse
import os
import platform
from typing import Callable

import torch

from benchmarks import analyses, calibration, claims_run, influence, zoo_build
from benchmarks.measure import Result
from benchmarks.models import SHAPES
from benchmarks.table import print_table, write_json

SMALL = SHAPES["zoo-4l"].scaled(name="small", n_layers=2, d_model=64, n_heads=4, d_mlp=256, vocab=1024)


def plan(quick: bool, default_zoo: bool) -> list[Callable[[], list[Result]]]:
    """The benchmarks to run, each a thunk returning its rows."""
    zoo_shape = SMALL if quick else SHAPES["zoo-4l"]
    pythia = SMALL.scaled(name="small-wide", d_mlp=512, vocab=4096) if quick else SHAPES["pythia-160m"]
    return [
        lambda: influence.sweep_vs_hooks(zoo_shape, 128 if quick else 512),
        lambda: influence.sweep_vs_hooks(pythia, 16 if quick else 32),
        lambda: analyses.model_analyses(zoo_shape, 64 if quick else analyses.RARE_POSITIONS, 8 if quick else 128,
                                        32 if quick else 128, exact_sample=2),
        lambda: analyses.regime_fits(),
        lambda: analyses.louvain(d_mlp=zoo_shape.d_mlp, positions=200 if quick else analyses.RARE_POSITIONS),
        lambda: calibration.calibration_cost(draws=1 if quick else 2),
        claims_run.claims_runs,
        lambda: zoo_build.build_times(default_zoo),
        lambda: influence.scaling(base=(32, 64, 512) if quick else influence.SCALING_BASE, doublings=1 if quick else 2),
    ]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", default=None, metavar="PATH", help="also write the rows as JSON")
    p.add_argument("--default-zoo", action="store_true", help="time the default zoo's build instead of the tiny pair's")
    p.add_argument("--quick", action="store_true", help="small sizes everywhere (smoke run)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the target machine's cores)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    context = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "torch_threads": torch.get_num_threads(),
               "torch": torch.__version__, "load_average_start": os.getloadavg(), "quick": args.quick}
    print(f"# {context['machine']}, {args.threads} torch threads, torch {torch.__version__}, load average "
          f"{context['load_average_start'][0]:.1f}{' (quick: not a measurement)' if args.quick else ''}", flush=True)
    rows: list[Result] = []
    for step in plan(args.quick, args.default_zoo):
        new = step()
        print_table(new)
        rows += new
    context["load_average_end"] = os.getloadavg()
    print("\n# all benchmarks")
    print_table(rows)
    if args.json:
        write_json(args.json, rows, context)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
