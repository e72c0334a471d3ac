"""Command line: ``python -m harness {subjects,zoo,report,cache} …``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _subjects(args: argparse.Namespace) -> int:
    from harness.subjects import SubjectError, describe

    try:
        print(describe(args.pattern))
    except SubjectError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _zoo(args: argparse.Namespace) -> int:
    from harness import zoo

    if args.action == "list":
        for name, spec in zoo.ZOO.items():
            built = zoo.is_built(name, args.root)
            tag = "default" if spec.default else "tiny"
            print(f"zoo:{name:<12} {spec.arch:<9} {tag:<8} steps={list(spec.steps)} {'built' if built else 'not built'}")
        return 0
    names = args.names or [n for n, s in zoo.ZOO.items() if s.default]
    unknown = [n for n in names if n not in zoo.ZOO]
    if unknown:
        print(f"error: unknown zoo family {unknown[0]!r}; known: {sorted(zoo.ZOO)}", file=sys.stderr)
        return 2
    for name in names:
        path = zoo.build(name, args.root, progress=not args.no_progress, force=args.force)
        m = json.loads((path / zoo.MANIFEST).read_text())
        print(f"zoo:{name}: {path}  eval loss {m['final_eval_loss_nats']:.3f} nats (unigram "
              f"{m['eval_unigram_cross_entropy_nats']:.3f}), {m['tokens_per_s']:.0f} tokens/s, {m['wall_time_s']:.0f} s")
    return 0


def _report(args: argparse.Namespace) -> int:
    from harness import report

    if args.compare:
        print(report.compare(Path(args.compare[0]), Path(args.compare[1])))
        return 0
    run_dir = Path(args.run_dir or "reports/latest")
    report.render(run_dir)
    print(f"rendered {run_dir}/claims.md and claims.html")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from harness.cache import MeasurementCache

    cache = MeasurementCache(Path(args.cache_dir) if args.cache_dir else None)
    if args.action == "clear":
        cache.clear()
        print(f"cleared {cache.root}")
    else:
        entries = list(cache.entries())
        print(f"{cache.root}: {len(entries)} entries")
        for e in entries:
            print(f"  {e}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("subjects", help="list what a subject pattern expands to")
    p.add_argument("pattern", nargs="?", default="zoo:*")
    p.set_defaults(func=_subjects)
    p = sub.add_parser("zoo", help="build or list the embedded model zoo")
    p.add_argument("action", choices=["build", "list"])
    p.add_argument("names", nargs="*", help="families (default: every default-zoo family)")
    p.add_argument("--root", type=Path, default=None, help="zoo directory (default: $RARE_ZOO_DIR or user cache)")
    p.add_argument("--force", action="store_true", help="rebuild complete families")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_zoo)
    p = sub.add_parser("report", help="re-render a run's report from its records, or compare two runs")
    p.add_argument("run_dir", nargs="?", help="default: reports/latest")
    p.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"))
    p.set_defaults(func=_report)
    p = sub.add_parser("cache", help="measurement cache housekeeping")
    p.add_argument("action", choices=["info", "clear"])
    p.add_argument("--cache-dir")
    p.set_defaults(func=_cache)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
