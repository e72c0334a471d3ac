"""``python -m harness calibrate``: run the calibration, print its table, write calibration.json."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from harness.calibration.runner import calibrate
from harness.claims import select_claims
from harness.claims.calibration_table import TABLE, load_table

FULL_REPS, QUICK_REPS = 200, 40


def table(document: dict[str, Any]) -> str:
    """The terminal table: claim × (size per null family, power at the papers' effect, effect for power 0.8)."""
    lines = [f"{'claim':<5} {'family':<42} {'reps':>5} {'rate':>6} {'95% CI':>15}  judged"]
    for claim_id, entries in document["claims"].items():
        for fam in entries[0]["families"]:
            if fam["kind"] == "null":
                ok = "ok" if fam["size_ok"] else "SIZE ABOVE α + 2 SE"
                if fam.get("breaks"):
                    ok = f"{'within' if fam['size_ok'] else 'above'}, not judged: breaks the rule's assumption " \
                         f"'{fam['breaks']}'"
                lines.append(f"{claim_id:<5} {fam['name'][:42]:<42} {fam['reps']:>5} {fam['rate']:>6.3f} "
                             f"[{fam['ci'][0]:.3f}, {fam['ci'][1]:.3f}]  size ≤ {fam['bound']:.3f}: {ok}")
            else:
                for e, r, p, ci in zip(fam["effects"], fam["reps"], fam["power"], fam["power_ci"]):
                    mark = " ← papers' effect" if e == fam["paper_effect"] else ""
                    lines.append(f"{claim_id:<5} {(fam['name'] + f' @ {e:g}')[:42]:<42} {r:>5} {p:>6.3f} "
                                 f"[{ci[0]:.3f}, {ci[1]:.3f}]  power{mark}")
                e80 = fam["effect_for_power_80"]
                lines.append(f"{claim_id:<5} {'  effect for power 0.8 (' + fam['effect_name'][:18] + ')':<42} "
                             f"{'':>5} {('—' if e80 is None else f'{e80:.3g}'):>6}")
    return "\n".join(lines)


def model_table(level: dict[str, Any]) -> str:
    """Verdicts per tiny family and claim, and the recovery of the planted specialists."""
    claims = sorted({c for v in level["verdicts"].values() for c in v}, key=lambda c: int(c[1:]))
    lines = [f"{'model-level subject':<32} " + " ".join(f"{c:<13}" for c in claims)]
    for subject, verdicts in level["verdicts"].items():
        lines.append(f"{subject:<32} " + " ".join(f"{verdicts.get(c, '-'):<13}" for c in claims))
    r = level["recovery"]
    lines.append(f"planted specialists recovered: {r['recovered']} of {r['planted']} (precision {r['precision']:.2f}, "
                 f"recall {r['recall']:.2f})")
    return "\n".join(lines)


def merged_table(table: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """The committed table with ``document``'s claims replaced: a run over some claims keeps the others'
    entries, stamps its own with the time it was written (records cite it) and lists itself under
    ``updates`` (command, claims, repetitions, time written); its model-level section, when it ran one,
    replaces the table's."""
    if not table or set(table["claims"]) <= set(document["claims"]):
        return document
    update = {k: document[k] for k in ("command", "written", "repetitions", "planted_repetitions", "wall_time_s")}
    fresh = {c: [e | {"written": document["written"]} for e in entries] for c, entries in document["claims"].items()}
    model = {"model_level": document["model_level"]} if "model_level" in document else {}
    return {**table, "claims": {**table["claims"], **fresh}, **model,
            "updates": [*table.get("updates", []), {**update, "claims": sorted(document["claims"])}]}


def run_calibration(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    claims = [c.id for c in select_claims(args.claims)]
    reps = args.reps or (QUICK_REPS if args.quick else FULL_REPS)
    planted = max(10, reps // 4)
    bar = tqdm(total=1, desc="calibration", unit="chunk", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
    start = time.perf_counter()
    command = shlex.join(["python", "-m", "harness", "calibrate", *(sys.argv[2:] if args.argv is None else args.argv[3:])])
    document = calibrate(claims, reps, planted, workers=args.workers, command=command, progress=progress)
    bar.close()
    if args.model_level:
        from harness.calibration.models import model_level
        from harness.calibration.runner import CALIBRATION_SETTINGS
        from harness.claims.settings import load_settings

        document["model_level"] = model_level(load_settings(overrides=CALIBRATION_SETTINGS))   # every claim
    document["wall_time_s"] = time.perf_counter() - start
    name = args.run_name or _dt.datetime.now(_dt.timezone.utc).strftime("calibration-%Y%m%dT%H%M%SZ")
    out = Path(args.report_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(json.dumps(document, indent=1) + "\n")
    print(table(document))
    if "model_level" in document:
        print(model_table(document["model_level"]))
    print(f"wrote {out / 'calibration.json'} ({document['wall_time_s']:.0f} s)")
    if args.write_table:
        TABLE.write_text(json.dumps(merged_table(load_table(), document), indent=1) + "\n")
        print(f"wrote {TABLE} (the calibration every record cites)")
    bad = [c for c, e in document["claims"].items() if not e[0]["size_ok"]]
    if bad:
        print(f"size above α + 2 SE for: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0
