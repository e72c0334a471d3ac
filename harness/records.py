"""Claim records and run metadata: what every claim test produces, in one versioned JSON schema.

A record (``ClaimRecord``) holds one claim on one subject (or one family, for the claims over
checkpoints): the statistics, CIs, p-values, null summaries, sample sizes, seeds, thresholds,
the verdict and the paper's numbers, plus ``series`` (small arrays a figure needs). Workers
append records as JSON lines (``append_jsonl``); the controller merges them with the run's
metadata (``run_metadata``) into ``reports/<run>/claims.json``::

    {"schema_version": 2, "metadata": {...RunMetadata...}, "records": [{...ClaimRecord...}, ...]}

``validate_record`` / ``validate_metadata`` / ``validate_run`` check that shape; a record or run
of a schema version this harness does not know is refused with ``UnknownSchemaVersionError``.
``RECORD_FIELDS`` and ``METADATA_FIELDS`` document every field (the schema's documentation;
``reports/README.md`` points here).

Conventions inside a record
---------------------------
- Use one key per quantity across ``statistics``, ``ci``, ``null``, ``p_values`` (e.g.
  ``statistics["plateau_score"]``, ``ci["plateau_score"]``, ``p_values["plateau_score"]``):
  the report puts them on one row. ``statistics`` values are scalars (number, bool, string
  or null); arrays go to ``series``, anything else to ``details``.
- ``ci[key]`` is ``[lo, hi]``; its level is ``ci_levels[key]`` (default 0.95).
- ``p_values`` are raw; the report fills ``p_values_holm`` (Holm across the subjects of one
  claim, per key) when it writes ``claims.json``. Tests leave ``p_values_holm`` empty.
- NaN and infinities are written as ``null``.
- A claim whose measurement raised an exception has verdict ``"error"`` and the exception
  message in ``message``; an ``"error"`` record without a message is invalid.
- When ``supported_checks`` or ``contradicted_checks`` is non-empty the verdict is the one
  ``verdict_of`` gives them (``decide`` sets all three); ``undecided`` leaves both empty.

Series conventions (figures)
----------------------------
The report draws a figure for every record whose ``series`` holds the keys below
(``harness.report.claim_figures``); a record without them simply has no figure. The first
figure a record gets is its claim's main figure, shown beside the headline. All arrays are
flat lists of numbers (``null`` allowed); paired arrays have equal lengths; ``*_labels`` are
lists of strings. Other keys are allowed and ignored by the figures. Intervals are at the
headline's ``ci_level``.

- C1, C2, C3 — rank plot (``rank``), one per subject: ``ln_rank``, ``ln_influence``: the
  claim's own curve (ln rank, ln I with I the mean loss increase in nats, I > 0): rare targets
  for C1 and C3, common targets for C2. Optional: ``fit_x``, ``fit_y`` (its fitted 3-segment
  curve), ``breakpoints`` (fitted breakpoints, ln rank); ``band_x``, ``band_lo``, ``band_hi``
  (pointwise central band of the null curves of the own curve: ln I per ln-rank bin); a
  companion curve ``ln_rank_common``, ``ln_influence_common`` (C1) or ``ln_rank_rare``,
  ``ln_influence_rare`` (C2; its presence marks the own curve as the common one);
  ``ln_rank_step0``, ``ln_influence_step0`` (the untrained checkpoint's rare curve, C1);
  ``middle_x``, ``middle_y`` (the middle window's points, C3).
- C4, C9 — statistic over training (``training``), one per family record: ``steps`` (training
  steps), ``standardized`` (the statistic at each checkpoint in null SDs of that checkpoint),
  optional ``standardized_lo``, ``standardized_hi`` (its per-checkpoint bootstrap CI) and
  ``null_band`` (``[lo, hi]`` in null SDs). ``details["early_steps"]`` / ``["late_steps"]``
  shade the windows of the late − early change.
- C5 — co-activation graph (``graph``): ``node_x``, ``node_y`` (a 2-D layout of every neuron
  of the final layer, arbitrary units), ``node_community`` (its Louvain community, an integer),
  ``specialist_ids`` (indices of the specialists, highlighted in their community's colour).
- C7 — head vs layer effects (``heads``): ``head_labels`` ("L2H5"), ``layer_labels`` ("L2");
  for metric m in ``activation`` (decisive: % change of the specialists' activations, Σ|Δa| /
  Σ|a|) and ``loss`` (% increase of rare-target loss): ``{m}_head_effects`` with
  ``{m}_head_lo``, ``{m}_head_hi`` (CIs), ``{m}_layer_effects`` with ``{m}_layer_lo``,
  ``{m}_layer_hi``, and optional ``{m}_head_effects_common`` (common targets). The line
  ``thresholds["c7_head_margin_pct"]`` is drawn on the activation panel.
- Null distributions (``null``; C1, C5, C6, C8): for each statistic ``<stat>``,
  ``null_<stat>`` (the null draws: matched, adjusted control groups or null curves) always
  with ``observed_<stat>`` (a number), and optional ``unmatched_<stat>`` (draws of unmatched
  random groups). Names with built-in axis labels: ``plateau_score`` (C1), ``kappa`` (C5),
  ``participation_ratio``, ``mean_corr`` (C6), ``alpha_<matrix>`` (C8: ``read``, or ``gate``
  and ``up``, and ``write``). ``null_band`` is not a null distribution (see C4).
- C6 — spectrum (``spectrum``): ``spec_eigenvalues`` (the specialists' correlation matrix).
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
import shlex
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from harness import __version__

SCHEMA_VERSION = 2
KNOWN_SCHEMA_VERSIONS = (2,)
VERDICTS = ("supported", "contradicted", "inconclusive", "error")
DEFAULT_CI_LEVEL = 0.95


class RecordError(ValueError):
    """A record, run metadata or run document does not follow the schema."""


class UnknownSchemaVersionError(RecordError):
    """A record or run was written with a schema version this harness cannot read."""


@dataclass
class ClaimRecord:
    """One claim on one subject (or family, for claims over checkpoints)."""

    claim_id: str
    subject: str
    verdict: str = "error"
    message: str = ""
    reason: str = ""
    rule_version: int = 0
    headline: dict[str, Any] = field(default_factory=dict)
    statistics: dict[str, Any] = field(default_factory=dict)
    ci: dict[str, list[float]] = field(default_factory=dict)
    p_values: dict[str, float] = field(default_factory=dict)
    null: dict[str, dict[str, float]] = field(default_factory=dict)
    sample_sizes: dict[str, int] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    supported_checks: dict[str, bool] = field(default_factory=dict)
    contradicted_checks: dict[str, bool] = field(default_factory=dict)
    paper: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    series: dict[str, Any] = field(default_factory=dict)
    test_id: str = ""
    elapsed_s: float = 0.0
    schema_version: int = SCHEMA_VERSION
    ci_levels: dict[str, float] = field(default_factory=dict)
    p_values_holm: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (numpy values become Python values, NaN/inf become None)."""
        return _jsonable(asdict(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClaimRecord:
        """The record of a JSON dict, validated (see ``validate_record``)."""
        return validate_record(data)

    def add(self, fields: Mapping[str, Mapping[str, Any]]) -> None:
        """Merge ``{"statistics": {...}, "p_values": {...}, …}`` (an analysis's ``record_fields()``) into this record."""
        for name, values in fields.items():
            getattr(self, name).update(values)

    def decide(self, supported: Mapping[str, bool], contradicted: Mapping[str, bool], message: str) -> None:
        """Set the three-valued verdict from the rule's named checks and the one-line message.

        ``contradicted`` when any contradicting check holds; else ``supported`` when every
        supporting check holds; else ``inconclusive``. ``reason`` names the checks that decided.
        """
        self.supported_checks = {k: bool(v) for k, v in supported.items()}
        self.contradicted_checks = {k: bool(v) for k, v in contradicted.items()}
        self.verdict = verdict_of(self.supported_checks, self.contradicted_checks)
        against = [k for k, v in self.contradicted_checks.items() if v]
        missing = [k for k, v in self.supported_checks.items() if not v]
        if self.verdict == "contradicted":
            self.reason = "contradicted by: " + ", ".join(against)
        elif self.verdict == "supported":
            self.reason = "supported: " + ", ".join(self.supported_checks)
        else:
            self.reason = "inconclusive: not shown " + ", ".join(missing) + "; nothing contradicts the claim"
        self.message = message

    def undecided(self, reason: str, message: str) -> None:
        """Verdict ``inconclusive`` without a test: the data cannot tell (too few positions, neurons, …)."""
        self.supported_checks, self.contradicted_checks = {}, {}
        self.verdict, self.reason, self.message = "inconclusive", f"inconclusive: {reason}", message


def verdict_of(supported: Mapping[str, bool], contradicted: Mapping[str, bool]) -> str:
    """The three-valued rule every claim shares (see ``ClaimRecord.decide``)."""
    if any(contradicted.values()):
        return "contradicted"
    if supported and all(supported.values()):
        return "supported"
    return "inconclusive"


RECORD_FIELDS: dict[str, str] = {
    "claim_id": "claim id of the registry, e.g. 'C1' (harness.registry.CLAIMS)",
    "subject": "subject string ('pythia-70m@step143000', 'zoo:neox-4l@step512') or family ('zoo:neox-4l@*')",
    "verdict": "'supported', 'contradicted', 'inconclusive' or 'error' (the measurement raised; see message)",
    "message": "one sentence: the measured statistic next to its null and the paper's number, or the exception",
    "reason": "why this verdict: the checks that decided it, or why the data cannot tell",
    "rule_version": "version of the claim's decision rule (harness.claims.registry); comparisons need equal versions",
    "headline": "the decisive statistic: {statistic, value, ci, ci_level, null_band, smallest_effect, paper, "
                "scale_note, units}",
    "statistics": "name -> scalar statistic (number, bool, string or null); units in the claim's docs",
    "ci": "name -> [lo, hi] confidence interval of the statistic of the same name",
    "ci_levels": "name -> confidence level of ci[name] (default 0.95)",
    "p_values": "name -> raw p-value in [0, 1]",
    "p_values_holm": "name -> Holm-adjusted p across the subjects of this claim (filled by the report)",
    "null": "name -> summary of a null distribution (mean, sd, q05, q50, q95, B)",
    "sample_sizes": "name -> count (sequences, positions, neurons, null draws, bootstrap draws)",
    "seeds": "name -> integer seed used",
    "thresholds": "name -> threshold or setting value the decision rule used",
    "supported_checks": "name -> bool: the conditions that together support the claim",
    "contradicted_checks": "name -> bool: conditions any one of which contradicts the claim (checked first)",
    "paper": "the paper's numbers for this claim (and subject, where the papers give them)",
    "details": "free-form JSON: anything else worth keeping (ablation type, layer, fitted segments)",
    "series": "arrays for figures, by the conventions in this module's docstring",
    "test_id": "pytest node id that produced the record",
    "elapsed_s": "wall time of the claim test, seconds",
    "schema_version": f"record schema version (this harness writes {SCHEMA_VERSION})",
    "provenance": "where the numbers come from: {weights_sha256: {subject: hash}, measurements: {name: cache digest}}",
    "calibration": "the calibration of this procedure nearest to the record's sample sizes: size, power, n",
}


@dataclass
class RunMetadata:
    """What a run was: when, which code, which command, subjects, device, versions, settings."""

    date: str
    harness_version: str
    command_line: str
    subjects: list[str] = field(default_factory=list)
    device: str = ""
    git_commit: str | None = None
    git_dirty: bool | None = None
    python_version: str = ""
    platform: str = ""
    torch_version: str | None = None
    transformer_lens_version: str | None = None
    seeds: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    shard: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return _jsonable(asdict(self))


METADATA_FIELDS: dict[str, str] = {
    "date": "run start, ISO 8601 UTC",
    "harness_version": "harness.__version__",
    "command_line": "the command that ran the claims, shell-quoted",
    "subjects": "subjects requested, in order",
    "device": "torch device of the measurements ('cpu', 'cuda', 'cuda:0..n' under xdist)",
    "git_commit": "commit of the harness's working tree, or null outside git",
    "git_dirty": "whether that working tree had uncommitted changes, or null outside git",
    "python_version": "Python version",
    "platform": "operating system and machine",
    "torch_version": "installed torch version, or null",
    "transformer_lens_version": "installed transformer-lens version, or null",
    "seeds": "name -> run-level seed",
    "settings": "name -> value of every setting (harness.claims.settings.SETTINGS, after overrides)",
    "claims": "claim id -> {name, statement, rule, effect, paper, rule_version, scope} of the claims run",
    "shard": "'K/N' when this run is shard K of N (harness check / pytest --shard), else null",
    "schema_version": f"schema version of the run document (this harness writes {SCHEMA_VERSION})",
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def append_jsonl(path: Path, record: ClaimRecord) -> None:
    """Append one record as a JSON line (one ``write`` call, safe for concurrent appenders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record.to_json(), sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)


def read_jsonl(paths: list[Path]) -> list[dict[str, Any]]:
    """All records from JSON-lines files, in file order."""
    out: list[dict[str, Any]] = []
    for p in paths:
        for line in Path(p).read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


# --- metadata -------------------------------------------------------------------------------


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def run_metadata(
    command_line: str | Sequence[str],
    subjects: Sequence[str],
    device: str,
    seeds: Mapping[str, int],
    settings: Mapping[str, Any],
    claims: Mapping[str, Mapping[str, Any]] | None = None,
    shard: str | None = None,
) -> dict[str, Any]:
    """The run's metadata as a JSON-safe dict (``RunMetadata`` fields), stamped now.

    ``command_line`` is a string or an argv list (shell-quoted into one string). The git commit
    is that of the working tree holding this harness (null outside git).
    """
    here = Path(__file__).resolve().parent
    commit = _git(["rev-parse", "HEAD"], here)
    status = _git(["status", "--porcelain"], here) if commit else None
    command = command_line if isinstance(command_line, str) else shlex.join(command_line)
    meta = RunMetadata(
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        harness_version=__version__,
        command_line=command,
        subjects=list(subjects),
        device=str(device),
        git_commit=commit,
        git_dirty=None if status is None else bool(status),
        python_version=platform.python_version(),
        platform=f"{platform.system()} {platform.release()} {platform.machine()}",
        torch_version=_package_version("torch"),
        transformer_lens_version=_package_version("transformer-lens"),
        seeds=dict(seeds),
        settings=dict(settings),
        claims={k: dict(v) for k, v in (claims or {}).items()},
        shard=shard,
    )
    return meta.to_json()


# --- validation -----------------------------------------------------------------------------

_NUM = (int, float)


def _is_num(v: Any) -> bool:
    return v is None or (isinstance(v, _NUM) and not isinstance(v, bool))


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _check_version(data: Mapping[str, Any], what: str) -> None:
    """Refuse another schema version first: its fields differ, and the version is what to report."""
    if not isinstance(data, Mapping):
        raise RecordError(f"{what} must be a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version not in KNOWN_SCHEMA_VERSIONS:
        raise UnknownSchemaVersionError(
            f"{what} has schema_version {version!r}, which this harness cannot read "
            f"(it reads {list(KNOWN_SCHEMA_VERSIONS)}); render it with the harness version that "
            f"wrote it, or rerun the claims"
        )


def _check_fields(data: Mapping[str, Any], known: Mapping[str, str], required: Sequence[str], what: str) -> None:
    if not isinstance(data, Mapping):
        raise RecordError(f"{what} must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise RecordError(f"{what} has unknown field(s) {unknown}; known fields: {sorted(known)}")
    missing = [k for k in required if k not in data]
    if missing:
        raise RecordError(f"{what} lacks required field(s) {missing}")


def _check_mapping(
    data: Mapping[str, Any], name: str, ok: Callable[[Any], bool], expected: str, what: str
) -> None:
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise RecordError(f"{what}: field {name!r} must be an object (name -> {expected})")
    for key, v in value.items():
        if not ok(v):
            raise RecordError(f"{what}: {name}[{key!r}] = {v!r} is not {expected}")


def _check_type(data: Mapping[str, Any], name: str, types: type | tuple[type, ...], what: str) -> None:
    if name in data and not isinstance(data[name], types):
        raise RecordError(f"{what}: field {name!r} = {data[name]!r} must be of type {types}")


def _is_ci(v: Any) -> bool:
    if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_num(x) for x in v)):
        return False
    lo, hi = v
    return lo is None or hi is None or lo <= hi


def _is_p(v: Any) -> bool:
    return v is None or (_is_num(v) and 0.0 <= v <= 1.0)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_count(v: Any) -> bool:
    return _is_int(v) and v >= 0


def _is_null_summary(v: Any) -> bool:
    return isinstance(v, Mapping) and all(_is_num(x) for x in v.values())


def _is_array(v: Any) -> bool:
    return isinstance(v, list) and all(_is_num(x) for x in v)


def _series_pairs(series: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Keys of ``series`` whose arrays the figures draw against each other (equal lengths)."""
    pairs = [(k, "ln_influence" + k[len("ln_rank"):]) for k in series if k.startswith("ln_rank")]
    pairs += [("fit_x", "fit_y"), ("head_effects", "head_labels")]
    return pairs + [("steps", k) for k in ("plateau_score", "exponent", "alpha_spec", "alpha_null_median")]


def validate_series(series: Mapping[str, Any], what: str = "series") -> None:
    """Check the figure conventions of ``series`` (module docstring); raise ``RecordError``.

    Every value is a number or a flat list of numbers, except ``*_labels`` (lists of strings);
    a null distribution ``null_<stat>`` is a list and comes with its ``observed_<stat>``, a
    number; ``null_band`` is ``[lo, hi]``; paired arrays have equal lengths.
    """
    if not isinstance(series, Mapping):
        raise RecordError(f"{what} must be an object, got {type(series).__name__}")
    for key, value in series.items():
        if key.endswith("_labels"):
            if not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
                raise RecordError(f"{what}[{key!r}] must be a list of strings")
            continue
        if not (_is_array(value) or _is_num(value)):
            raise RecordError(f"{what}[{key!r}] must be a number or a flat list of numbers")
        if key.startswith("null_") and key != "null_band":
            stat = key[len("null_"):]
            if not _is_array(value):
                raise RecordError(f"{what}[{key!r}] must be a flat list of null draws (numbers)")
            if f"observed_{stat}" not in series:
                raise RecordError(f"{what} has {key!r} but no 'observed_{stat}' (the observed value)")
        if key.startswith("observed_") and not _is_num(value):
            raise RecordError(f"{what}[{key!r}] must be a number (the observed value)")
    if "null_band" in series and not (_is_array(series["null_band"]) and len(series["null_band"]) == 2):
        raise RecordError(f"{what}['null_band'] must be [lo, hi], got {series['null_band']!r}")
    for a, b in _series_pairs(series):
        if a in series and b in series and np.size(series[a]) != np.size(series[b]):
            raise RecordError(f"{what}: {a!r} and {b!r} must have equal lengths, got "
                              f"{np.size(series[a])} and {np.size(series[b])}")


def validate_record(data: Mapping[str, Any]) -> ClaimRecord:
    """The ``ClaimRecord`` of a JSON dict after checking it against the schema.

    Raises ``UnknownSchemaVersionError`` for a schema version this harness does not read and
    ``RecordError`` (a ``ValueError``) naming the offending field for anything else.
    """
    what = "record"
    if isinstance(data, Mapping) and {"claim_id", "subject"} <= set(data):
        what = f"record {data['claim_id']}[{data['subject']}]"
    _check_version(data, what)
    _check_fields(data, RECORD_FIELDS, ("claim_id", "subject", "verdict", "schema_version"), what)
    data = _jsonable(dict(data))
    for name in ("claim_id", "subject", "verdict", "message", "reason", "paper", "test_id"):
        _check_type(data, name, str, what)
    _check_type(data, "elapsed_s", _NUM, what)
    _check_type(data, "rule_version", int, what)
    if data["verdict"] not in VERDICTS:
        raise RecordError(f"{what}: verdict {data['verdict']!r} is not one of {list(VERDICTS)}")
    _check_mapping(data, "statistics", _is_scalar, "a scalar (arrays belong in series)", what)
    _check_mapping(data, "ci", _is_ci, "an interval [lo, hi] with lo <= hi", what)
    _check_mapping(data, "ci_levels", lambda v: _is_num(v) and v is not None and 0 < v < 1, "a level in (0, 1)", what)
    _check_mapping(data, "p_values", _is_p, "a p-value in [0, 1]", what)
    _check_mapping(data, "p_values_holm", _is_p, "a p-value in [0, 1]", what)
    _check_mapping(data, "null", _is_null_summary, "a summary {name: number}", what)
    _check_mapping(data, "sample_sizes", _is_count, "a non-negative integer", what)
    _check_mapping(data, "seeds", _is_int, "an integer seed", what)
    _check_mapping(data, "thresholds", lambda v: True, "", what)
    for name in ("supported_checks", "contradicted_checks"):
        _check_mapping(data, name, lambda v: isinstance(v, bool), "a bool", what)
    for name in ("details", "headline", "provenance", "calibration"):
        _check_mapping(data, name, lambda v: True, "", what)
    _check_headline(data.get("headline", {}), what)
    validate_series(data.get("series", {}), f"{what}: series")
    if data["verdict"] == "error" and not data.get("message"):
        raise RecordError(f"{what}: verdict 'error' needs the exception in 'message'")
    supported, contradicted = data.get("supported_checks", {}), data.get("contradicted_checks", {})
    if data["verdict"] != "error" and (supported or contradicted) and verdict_of(supported, contradicted) != data["verdict"]:
        raise RecordError(f"{what}: verdict {data['verdict']!r} disagrees with its checks (supported "
                          f"{dict(supported)}, contradicted {dict(contradicted)})")
    return ClaimRecord(**data)


def _check_headline(headline: Mapping[str, Any], what: str) -> None:
    if not headline:
        return
    if not isinstance(headline.get("statistic"), str):
        raise RecordError(f"{what}: headline needs a 'statistic' name")
    if "value" in headline and not _is_num(headline["value"]):
        raise RecordError(f"{what}: headline value must be a number or null")
    for key in ("ci", "null_band"):
        if headline.get(key) is not None and not _is_ci(headline[key]):
            raise RecordError(f"{what}: headline {key} must be [lo, hi] with lo <= hi")


def validate_metadata(data: Mapping[str, Any]) -> RunMetadata:
    """The ``RunMetadata`` of a JSON dict after checking it; raises ``RecordError``."""
    what = "run metadata"
    _check_version(data, what)
    _check_fields(data, METADATA_FIELDS, ("date", "harness_version", "command_line", "schema_version"), what)
    data = _jsonable(dict(data))
    for name in ("date", "harness_version", "command_line", "device", "python_version", "platform"):
        _check_type(data, name, str, what)
    for name in ("git_commit", "torch_version", "transformer_lens_version"):
        _check_type(data, name, (str, type(None)), what)
    _check_type(data, "git_dirty", (bool, type(None)), what)
    subjects = data.get("subjects", [])
    if not (isinstance(subjects, list) and all(isinstance(s, str) for s in subjects)):
        raise RecordError(f"{what}: 'subjects' must be a list of strings, got {subjects!r}")
    _check_mapping(data, "seeds", _is_int, "an integer seed", what)
    _check_mapping(data, "settings", lambda v: True, "", what)
    _check_mapping(data, "claims", lambda v: isinstance(v, Mapping), "an object", what)
    _check_type(data, "shard", (str, type(None)), what)
    return RunMetadata(**data)


def run_document(metadata: Mapping[str, Any], records: Sequence[ClaimRecord]) -> dict[str, Any]:
    """The ``claims.json`` document of a run: schema version, metadata and records."""
    return {
        "schema_version": SCHEMA_VERSION,
        "metadata": validate_metadata(metadata).to_json(),
        "records": [r.to_json() for r in records],
    }


def validate_run(data: Mapping[str, Any]) -> tuple[RunMetadata, list[ClaimRecord]]:
    """Metadata and records of a ``claims.json`` document, each validated.

    Raises ``UnknownSchemaVersionError`` when the document, its metadata or any record has a
    schema version this harness does not read; ``RecordError`` for any other deviation.
    """
    if not isinstance(data, Mapping):
        raise RecordError(f"a run document must be a JSON object, got {type(data).__name__}")
    _check_version(data, "run document")
    _check_fields(data, {"schema_version": "", "metadata": "", "records": ""}, ("schema_version", "metadata", "records"), "run document")
    if not isinstance(data["records"], list):
        raise RecordError("run document: 'records' must be a list of records")
    return validate_metadata(data["metadata"]), [validate_record(r) for r in data["records"]]


def coerce_records(records: Sequence[ClaimRecord | Mapping[str, Any]]) -> list[ClaimRecord]:
    """Validated ``ClaimRecord`` objects from records or their JSON dicts (e.g. ``read_jsonl``)."""
    return [validate_record(r.to_json() if isinstance(r, ClaimRecord) else r) for r in records]

