"""Command line: ``python -m harness {check,claims,calibrate,subjects,zoo,report,cache} …``.

``check`` runs the registered claim procedures on subjects outside pytest — the same runner,
the same records, the same report as ``pytest claims/`` — and compares the verdicts with a
baseline when given one.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shlex
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
            print(f"zoo:{name:<18} {spec.arch:<9} {tag:<8} steps={list(spec.steps)} {'built' if built else 'not built'}")
        return 0
    names = args.names or [n for n, s in zoo.ZOO.items() if s.default]
    unknown = [n for n in names if n not in zoo.ZOO]
    if unknown:
        print(f"error: unknown zoo family {unknown[0]!r}; known: {sorted(zoo.ZOO)}", file=sys.stderr)
        return 2
    for name in names:
        path = zoo.build(name, args.root, progress=not args.no_progress, force=args.force)
        m = json.loads((path / zoo.MANIFEST).read_text())
        if "final_eval_loss_nats" in m:
            print(f"zoo:{name}: {path}  eval loss {m['final_eval_loss_nats']:.3f} nats (unigram "
                  f"{m['eval_unigram_cross_entropy_nats']:.3f}), {m['tokens_per_s']:.0f} tokens/s, {m['wall_time_s']:.0f} s")
        else:
            print(f"zoo:{name}: {path}  {len(m['planted_neurons'])} planted neurons from {m['base']}, "
                  f"{m['wall_time_s']:.0f} s")
    return 0


def _claims(args: argparse.Namespace) -> int:
    from harness.claims import select_claims

    for c in select_claims():
        print(f"{c.id:<4} {c.name:<26} scope={c.scope:<10} rule v{c.rule_version}  {c.statement}")
    return 0


def _add_run_options(p: argparse.ArgumentParser) -> None:
    from harness.data.evaldata import EvalSpec
    from harness.measure.study import StudyConfig

    p.add_argument("--claims", default=None, help="claim ids, comma-separated (default: all)")
    p.add_argument("--claims-config", default=None, help="JSON file overriding settings")
    p.add_argument("--cache-dir", default=None,
                   help="measurement cache: a directory or an fsspec URL such as s3://bucket/prefix "
                        "(default $RARE_CACHE_DIR or user cache)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--report-dir", default="reports", help="where the run is written (reports/<run>/)")
    p.add_argument("--run-name", default=None, help="run directory name (default: a UTC timestamp)")
    p.add_argument("--eval-sequences", type=int, default=EvalSpec.n_sequences)
    p.add_argument("--eval-length", type=int, default=EvalSpec.seq_len)
    p.add_argument("--eval-seed", type=int, default=EvalSpec.seed)
    p.add_argument("--eval-corpus", default=None)
    p.add_argument("--rare-definition", default=StudyConfig.rare_definition, choices=["longtail_50", "elbow_15"])
    p.add_argument("--conditioning", default=StudyConfig.conditioning, choices=["target", "input"])
    p.add_argument("--token-counts", default=None)
    p.add_argument("--frequency-corpus", default=None)
    p.add_argument("--dtype", default=StudyConfig.dtype, choices=["float32", "float16", "bfloat16", "float64"])
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="run shard K of N: whole training setups per shard (harness.claims.runner.shard_subjects)")


def _check(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from harness import report
    from harness.claims import select_claims
    from harness.claims.runner import Session, build_zoo, error_record, targets
    from harness.claims.startup import (OPTION_NAMES, StartupError, check_data, check_startup, run_metadata_for,
                                        run_subjects, study_config)
    from harness.measure.cache import MeasurementCache
    from harness.report.baseline import BaselineError, compare_verdicts, load_baseline, write_baseline

    options = {k: getattr(args, k) for k in OPTION_NAMES}
    try:
        settings = check_startup(options)
        baseline = load_baseline(args.baseline) if args.baseline else None
        subjects = run_subjects(options)
        build_zoo(subjects)
        config = study_config(options, settings)
        check_data(subjects, config)
    except (StartupError, BaselineError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    device = args.device or _default_device()
    session = Session(settings, config, MeasurementCache(args.cache_dir), device)
    todo = targets(select_claims(args.claims), subjects)
    records = []
    bar = tqdm(todo, desc="claims", unit="claim", file=sys.stderr)
    for target in bar:
        bar.set_postfix_str(target.id)
        session.on_measure = lambda name, label: bar.set_postfix_str(f"{target.id}: measuring {name} of {label}")
        try:
            record = session.evaluate(target)
        except Exception as err:  # noqa: BLE001 — a measurement error becomes an error record, the run goes on
            record = error_record(target, err, settings)
        record.test_id = f"harness check {target.id}"
        records.append(record)
        tqdm.write(f"{record.verdict.upper():<13} {target.id}: {record.message[:160]}", file=sys.stderr)
    name = args.run_name or _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(args.report_dir).resolve() / name
    if (run_dir / "claims.json").exists():
        print(f"error: {run_dir} already holds a run; choose a new --run-name", file=sys.stderr)
        return 2
    command = _command_line(args)
    report.write_run(run_dir, records, run_metadata_for(command, options, settings, device))
    report.point_latest(run_dir)
    print(report.terminal_summary(records, run_dir / "claims.md"))
    if args.write_baseline:
        write_baseline(args.write_baseline, records, command)
        print(f"wrote the verdict baseline {args.write_baseline}")
    if baseline is not None:
        try:
            changed = compare_verdicts(records, baseline)
        except BaselineError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if changed:
            print(f"{len(changed)} verdict(s) differ from the baseline {args.baseline}:")
            print("\n".join(f"  {line}" for line in changed))
            return 1
        print(f"every verdict matches the baseline {args.baseline}")
        return 0
    return 1 if any(r.verdict == "error" for r in records) else 0


def _command_line(args: argparse.Namespace) -> str:
    """This invocation, shell-quoted."""
    return shlex.join(["python", "-m", "harness", *sys.argv[1:]]) if args.argv is None else shlex.join(args.argv)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _report(args: argparse.Namespace) -> int:
    from harness import report

    if args.compare:
        print(report.compare(Path(args.compare[0]), Path(args.compare[1])))
        print(f"wrote {report.write_compare(Path(args.compare[0]), Path(args.compare[1]))}")
        return 0
    if args.merge:
        from harness.records import RecordError
        from harness.report.merge import MergeError, merge_runs

        if not args.out:
            print("error: --merge needs --out DIR (the merged run directory)", file=sys.stderr)
            return 2
        command = _command_line(args)
        try:
            out = merge_runs(args.merge, args.out, command)
        except (MergeError, RecordError, FileNotFoundError) as err:
            print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
            return 2
        print(f"merged {len(args.merge)} runs into {out}/claims.md (html: claims.html)")
        return 0
    run_dir = Path(args.run_dir or "reports/latest")
    if args.write_baseline:
        from harness.report.baseline import write_baseline

        metadata, records = report.load_run(run_dir)
        write_baseline(args.write_baseline, records, f"{_command_line(args)}  # the run: {metadata.command_line}")
        print(f"wrote the verdict baseline {args.write_baseline} from {run_dir} ({len(records)} records)")
        return 0
    if args.baseline:
        from harness.report.baseline import BaselineError, compare_verdicts, load_baseline

        try:
            _, records = report.load_run(run_dir)
            changed = compare_verdicts(records, load_baseline(args.baseline))
        except (BaselineError, FileNotFoundError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        errors = [r for r in records if r.verdict == "error"]
        for r in errors:
            print(f"ERROR {r.claim_id}[{r.subject}]: {r.message}")
        for line in changed:
            print(f"CHANGED {line}")
        if not (changed or errors):
            print(f"{len(records)} records: every verdict matches {args.baseline}")
        return 1 if changed or errors else 0
    report.render(run_dir)
    print(f"rendered {run_dir}/claims.md and claims.html")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from harness.measure.cache import MeasurementCache

    cache = MeasurementCache(args.cache_dir)
    if args.action == "clear":
        cache.clear()
        print(f"cleared {cache.root}")
    else:
        entries = list(cache.entries())
        print(f"{cache.root}: {len(entries)} entries")
        for e in entries:
            print(f"  {e}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from harness.calibration.command import run_calibration

    return run_calibration(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="run the claims on subjects (same procedures and report as pytest claims/)")
    p.add_argument("subjects", help="subject pattern(s): 'zoo:*', 'hf:/dir@*', 'pythia-70m@step143000', …")
    _add_run_options(p)
    p.add_argument("--baseline", default=None, help="verdict baseline file or run directory; exit 1 if a verdict changed")
    p.add_argument("--write-baseline", default=None, help="write this run's verdicts as a baseline file")
    p.set_defaults(func=_check)
    p = sub.add_parser("claims", help="list the registered claims (id, scope, rule version, statement)")
    p.set_defaults(func=_claims)
    p = sub.add_parser("calibrate", help="measure each claim's size and power on null and planted data")
    p.add_argument("--claims", default=None, help="claim ids, comma-separated (default: all)")
    p.add_argument("--reps", type=int, default=None, help="repetitions per family (default 200; --quick: 40)")
    p.add_argument("--quick", action="store_true", help="a fast run: fewer repetitions and effect sizes")
    p.add_argument("--report-dir", default="reports", help="where calibration.json and figures are written")
    p.add_argument("--run-name", default=None)
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per CPU)")
    p.add_argument("--write-table", action="store_true",
                   help="also write the table records cite (harness/claims/calibration.json); the claims run "
                        "replace their entries, the others are kept")
    p.add_argument("--model-level", action="store_true", help="also run the model-level calibration (tiny zoo, every claim)")
    p.set_defaults(func=_calibrate)
    p = sub.add_parser("subjects", help="list what a subject pattern expands to")
    p.add_argument("pattern", nargs="?", default=None)
    p.set_defaults(func=_subjects)
    p = sub.add_parser("zoo", help="build or list the embedded model zoo")
    p.add_argument("action", choices=["build", "list"])
    p.add_argument("names", nargs="*", help="families (default: every default-zoo family)")
    p.add_argument("--root", type=Path, default=None, help="zoo directory (default: $RARE_ZOO_DIR or user cache)")
    p.add_argument("--force", action="store_true", help="rebuild complete families")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_zoo)
    p = sub.add_parser("report", help="re-render a run's report, compare two runs, or check verdicts against a baseline")
    p.add_argument("run_dir", nargs="?", help="default: reports/latest")
    p.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"),
                   help="print what changed from A to B and write the page <RUN_B>/compare-<A>.html")
    p.add_argument("--merge", nargs="+", metavar="RUN", help="merge the runs of a sharded run (--shard K/N) into --out")
    p.add_argument("--out", default=None, help="with --merge: the merged run directory")
    p.add_argument("--baseline", default=None, help="exit 1 when a verdict differs from this baseline or a record is an error")
    p.add_argument("--write-baseline", default=None, metavar="FILE", help="write the run's verdicts as a baseline file")
    p.set_defaults(func=_report)
    p = sub.add_parser("cache", help="measurement cache housekeeping")
    p.add_argument("action", choices=["info", "clear"])
    p.add_argument("--cache-dir")
    p.set_defaults(func=_cache)
    args = parser.parse_args(argv)
    args.argv = None if argv is None else ["python", "-m", "harness", *argv]
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
