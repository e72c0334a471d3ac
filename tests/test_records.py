"""Record schema v2: round trips, the three-valued verdict (``decide``/``undecided``), the validator's
refusals (checks, headline, series conventions), documents of other schema versions, run metadata."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from harness.analysis.stats import empirical_p, percentile_ci, summarize_null
from harness.claims.settings import load_settings
from harness.records import (
    METADATA_FIELDS,
    RECORD_FIELDS,
    SCHEMA_VERSION,
    ClaimRecord,
    RecordError,
    RunMetadata,
    UnknownSchemaVersionError,
    append_jsonl,
    coerce_records,
    read_jsonl,
    run_document,
    run_metadata,
    validate_metadata,
    validate_record,
    validate_run,
    verdict_of,
)

SUBJECT = "zoo:neox-tiny@step16"


def _record(seed: int = 0) -> ClaimRecord:
    """A C5-like v2 record with numpy values, a NaN, a headline, provenance and a planted null."""
    rng = np.random.default_rng(seed)
    null = rng.normal(0.07, 0.01, size=200)
    observed = np.float64(null.mean())
    rec = ClaimRecord("C5", SUBJECT, paper="Q = 0.05–0.11 vs control 0.04–0.09", rule_version=2)
    rec.statistics = {"kappa": observed - np.median(null), "communities": np.int64(4), "undefined": float("nan")}
    rec.ci = {"kappa": list(percentile_ci(null - np.median(null), 0.9))}
    rec.ci_levels = {"kappa": 0.9}
    rec.p_values = {"kappa": empirical_p(observed, null, "greater")}
    rec.null = {"kappa": summarize_null(null)}
    rec.sample_sizes = {"null_draws": null.size}
    rec.seeds = {"null": seed}
    rec.thresholds = {"c5_margin": 0.1}
    rec.series = {"null_kappa": null, "observed_kappa": observed, "head_labels": ["L0H0"]}
    rec.headline = {"statistic": "kappa", "value": rec.statistics["kappa"], "ci": rec.ci["kappa"], "ci_level": 0.9,
                    "null_band": [-0.02, 0.02], "smallest_effect": 0.1, "units": "κ"}
    rec.provenance = {"weights_sha256": {SUBJECT: "ab" * 32}, "measurements": {"activations": "d1g35t"}}
    rec.calibration = {"size": 0.04, "power": 0.9, "n": 200}
    rec.decide({"dispersed_equivalent": np.bool_(True)}, {"concentrated": np.bool_(False)}, "κ inside ±0.1")
    return rec


# --- round trips ------------------------------------------------------------------------------


def test_record_round_trips_through_json_and_jsonl(tmp_path: Path) -> None:
    """JSON and JSON lines give back the same record; NaN becomes null, numpy ints become ints."""
    rec = _record()
    data = json.loads(json.dumps(rec.to_json()))
    back = validate_record(data)
    assert back.to_json() == rec.to_json() and back.schema_version == SCHEMA_VERSION == 2
    assert back.verdict == "supported" and back.supported_checks == {"dispersed_equivalent": True}
    assert back.statistics["undefined"] is None  # NaN is written as null
    assert isinstance(back.statistics["communities"], int)
    assert back.series["null_kappa"] == pytest.approx(rec.series["null_kappa"].tolist())

    path = tmp_path / "w" / "records.jsonl"
    append_jsonl(path, rec)
    append_jsonl(path, _record(seed=1))
    lines = read_jsonl([path])
    assert [ClaimRecord.from_json(d).seeds["null"] for d in lines] == [0, 1]
    assert [r.seeds["null"] for r in coerce_records([rec, lines[1]])] == [0, 1]


def test_numpy_values_in_a_dict_are_accepted() -> None:
    """numpy scalars and arrays in a JSON dict are converted, not refused."""
    data = _record().to_json()
    data["sample_sizes"] = {"positions": np.int64(512)}
    data["series"] = {"null_Q": np.zeros(3), "observed_Q": np.float32(0.5)}
    rec = validate_record(data)
    assert rec.sample_sizes == {"positions": 512} and rec.series["null_Q"] == [0.0, 0.0, 0.0]


def test_every_field_is_documented() -> None:
    """RECORD_FIELDS and METADATA_FIELDS document exactly the dataclass fields."""
    assert set(RECORD_FIELDS) == {f.name for f in fields(ClaimRecord)}
    assert set(METADATA_FIELDS) == {f.name for f in fields(RunMetadata)}


def test_add_merges_analysis_fields() -> None:
    """``add`` merges each named section into the record's existing one."""
    rec = ClaimRecord("C6", SUBJECT)
    rec.add({"statistics": {"pr": 3.0}, "p_values": {"pr": 0.01}})
    rec.add({"statistics": {"corr": 0.2}})
    assert rec.statistics == {"pr": 3.0, "corr": 0.2} and rec.p_values == {"pr": 0.01}


# --- the three-valued verdict -----------------------------------------------------------------


@pytest.mark.parametrize(
    "supported, contradicted, verdict",
    [
        ({"a": True, "b": True}, {"c": False}, "supported"),
        ({"a": True, "b": False}, {"c": False}, "inconclusive"),
        ({"a": True, "b": True}, {"c": True}, "contradicted"),  # contradiction takes precedence
        ({"a": False}, {"c": False, "d": True}, "contradicted"),
        ({}, {"c": False}, "inconclusive"),  # nothing shown is not support
        ({}, {}, "inconclusive"),
    ],
)
def test_verdict_of_the_checks(supported, contradicted, verdict) -> None:
    """Contradicted when any contradicting check holds (first), supported when every supporting check
    holds and there is one, else inconclusive; ``decide`` sets the same verdict and it validates."""
    assert verdict_of(supported, contradicted) == verdict
    rec = ClaimRecord("C1", "gpt2")
    rec.decide(supported, contradicted, "plateau score 0.1")
    assert rec.verdict == verdict and rec.message == "plateau score 0.1"
    assert validate_record(rec.to_json()).verdict == verdict


def test_decide_names_the_checks_that_decided() -> None:
    """The reason names the contradicting checks, all supporting ones, or the missing ones."""
    rec = ClaimRecord("C1", "gpt2")
    rec.decide({"delta_bic": True, "plateau_ci": True}, {"no_plateau": True, "flat": False}, "m")
    assert rec.reason == "contradicted by: no_plateau"
    rec.decide({"delta_bic": True, "plateau_ci": True}, {"no_plateau": False}, "m")
    assert rec.reason == "supported: delta_bic, plateau_ci"
    rec.decide({"delta_bic": True, "plateau_ci": False}, {"no_plateau": False}, "m")
    assert rec.reason.startswith("inconclusive: not shown plateau_ci;") and "delta_bic" not in rec.reason


def test_undecided_is_inconclusive_without_checks() -> None:
    """``undecided`` clears earlier checks: inconclusive, the reason given, valid."""
    rec = ClaimRecord("C5", SUBJECT)
    rec.decide({"a": True}, {}, "first")
    rec.undecided("the layer's graph is one community", "every matched group lies in one community")
    assert rec.verdict == "inconclusive" and rec.supported_checks == {} == rec.contradicted_checks
    assert rec.reason == "inconclusive: the layer's graph is one community"
    assert rec.message == "every matched group lies in one community"
    assert validate_record(rec.to_json()).verdict == "inconclusive"


# --- the validator's refusals -----------------------------------------------------------------


def _bad(**changes: object) -> dict:
    data = _record().to_json()
    data.update(changes)
    return data


def _headline(**changes: object) -> dict:
    return {**_record().headline, **changes}


def _series(**changes: object) -> dict:
    return {**_record().to_json()["series"], **changes}


@pytest.mark.parametrize(
    "data, fragment",
    [
        (_bad(verdict="pass"), "verdict 'pass'"),
        (_bad(colour="blue"), "unknown field(s) ['colour']"),
        (_bad(checks={"a": True}), "unknown field(s) ['checks']"),
        (_bad(p_values={"kappa": 1.5}), "p_values['kappa']"),
        (_bad(ci={"kappa": [0.1]}), "ci['kappa']"),
        (_bad(ci={"kappa": [0.3, 0.1]}), "lo <= hi"),
        (_bad(ci_levels={"kappa": 90}), "ci_levels['kappa']"),
        (_bad(statistics={"curve": [1.0, 2.0]}), "arrays belong in series"),
        (_bad(sample_sizes={"positions": -3}), "sample_sizes['positions']"),
        (_bad(supported_checks={"a": 1}), "supported_checks['a']"),
        (_bad(rule_version="2"), "rule_version"),
        # verdict vs checks
        (_bad(verdict="contradicted"), "disagrees with its checks"),
        (_bad(contradicted_checks={"concentrated": True}), "disagrees with its checks"),
        (_bad(supported_checks={"dispersed_equivalent": False}), "disagrees with its checks"),
        (_bad(verdict="error", message=""), "needs the exception"),
        # headline shape
        (_bad(headline=_headline(statistic=None)), "headline needs a 'statistic'"),
        (_bad(headline=_headline(value="large")), "headline value"),
        (_bad(headline=_headline(ci=[0.1, 0.2, 0.3])), "headline ci"),
        (_bad(headline=_headline(null_band=[0.2, -0.2])), "headline null_band"),
        (_bad(headline=[1.0]), "'headline' must be an object"),
        # series conventions
        (_bad(series=_series(null_Q=[0.1, 0.2])), "no 'observed_Q'"),
        (_bad(series=_series(null_Q=0.1, observed_Q=0.2)), "flat list of null draws"),
        (_bad(series=_series(observed_kappa=[0.1, 0.2])), "must be a number"),
        (_bad(series=_series(head_labels=["H0", 1])), "list of strings"),
        (_bad(series=_series(layer_labels="L0")), "list of strings"),
        (_bad(series=_series(curve=[[0.0, 1.0]])), "flat list of numbers"),
        (_bad(series=_series(null_band=[0.1])), "[lo, hi]"),
        (_bad(series=_series(ln_rank=[0.0, 0.7], ln_influence=[1.0])), "equal lengths"),
        (_bad(series=_series(ln_rank_common=[0.0, 0.7], ln_influence_common=[1.0])), "equal lengths"),
        (_bad(series=_series(head_effects=[1.0, 2.0], head_labels=["H0"])), "equal lengths"),
    ],
)
def test_validator_names_what_is_wrong(data: dict, fragment: str) -> None:
    """Each deviation is a RecordError naming the record and the offending field."""
    with pytest.raises(RecordError) as err:
        validate_record(data)
    assert fragment in str(err.value)
    assert f"C5[{SUBJECT}]" in str(err.value)


def test_error_verdict_may_keep_its_checks() -> None:
    """A measurement that raised after some checks: 'error' with its message is valid whatever the checks."""
    assert validate_record(_bad(verdict="error", message="RuntimeError: out of memory")).verdict == "error"


def test_missing_required_field_is_refused() -> None:
    """A record without its subject: RecordError naming the required field."""
    data = _record().to_json()
    del data["subject"]
    with pytest.raises(RecordError, match="required field"):
        validate_record(data)


# --- other schema versions --------------------------------------------------------------------


def _v1_record() -> dict:
    """A record as schema v1 wrote it: 'checks' and a pass/fail verdict, no v2 fields."""
    return {"claim_id": "C1", "subject": "gpt2", "verdict": "pass", "message": "ok", "checks": {"delta_bic": True},
            "statistics": {}, "series": {}, "schema_version": 1}


def _metadata() -> dict:
    settings = load_settings()
    claims = {"C5": {"name": "specialists_not_modular", "rule_version": 2, "scope": "subject"}}
    return run_metadata(["pytest", "claims/", "-n", "2"], [SUBJECT], "cpu", {"global": 0}, settings,
                        claims=claims, shard="1/2")


@pytest.mark.parametrize("version", [1, SCHEMA_VERSION + 1, None])
def test_records_of_other_versions_are_refused_by_version(version) -> None:
    """A v1 record (with v1-only fields), a future one, or one without a version: the error is about the
    version, names what this harness reads and is a ValueError."""
    data = _v1_record() | {"schema_version": version}
    with pytest.raises(UnknownSchemaVersionError) as err:
        validate_record(data)
    assert f"schema_version {version!r}" in str(err.value) and "[2]" in str(err.value)
    assert "rerun the claims" in str(err.value) and isinstance(err.value, ValueError)


def test_v1_metadata_and_run_documents_are_refused_by_version() -> None:
    """v1 metadata (with its 'thresholds' field) and v1 documents, at any level, fail on the version."""
    v1_meta = {k: v for k, v in _metadata().items() if k not in ("settings", "claims", "shard")}
    v1_meta |= {"thresholds": {"alpha": 0.05}, "schema_version": 1}
    with pytest.raises(UnknownSchemaVersionError, match="run metadata has schema_version 1"):
        validate_metadata(v1_meta)
    doc = json.loads(json.dumps(run_document(_metadata(), [_record(0)])))
    for bad, where in (({**doc, "schema_version": 1}, "run document"), ({**doc, "metadata": v1_meta}, "run metadata"),
                       ({**doc, "records": [_v1_record()]}, "record C1[gpt2]")):
        with pytest.raises(UnknownSchemaVersionError, match=re.escape(f"{where} has schema_version 1")):
            validate_run(bad)


# --- run metadata and documents ---------------------------------------------------------------


def test_run_metadata_states_versions_commit_settings_and_claims() -> None:
    """The command line, settings, claims, shard, package versions, schema version and git commit,
    and the metadata round-trips through the validator."""
    meta = _metadata()
    assert meta["command_line"] == "pytest claims/ -n 2"
    assert meta["settings"] == load_settings() and meta["shard"] == "1/2"
    assert meta["claims"]["C5"]["rule_version"] == 2
    assert meta["torch_version"] == importlib.metadata.version("torch")
    assert meta["transformer_lens_version"] == importlib.metadata.version("transformer-lens")
    assert meta["schema_version"] == SCHEMA_VERSION
    repo = Path(__file__).resolve().parents[1]
    if shutil.which("git") and (repo / ".git").exists():
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
        assert meta["git_commit"] == head
    assert validate_metadata(json.loads(json.dumps(meta))).to_json() == meta


def test_run_document_round_trips() -> None:
    """A run document with metadata and two records validates back to the same records."""
    doc = json.loads(json.dumps(run_document(_metadata(), [_record(0), _record(1)])))
    meta, recs = validate_run(doc)
    assert meta.subjects == [SUBJECT] and meta.schema_version == SCHEMA_VERSION
    assert [r.to_json() for r in recs] == doc["records"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"subjects": SUBJECT}, "'subjects' must be a list of strings"),
        ({"shard": 1}, "'shard'"),
        ({"claims": {"C5": "C5"}}, r"claims\['C5'\]"),
        ({"seeds": {"global": 0.5}}, r"seeds\['global'\]"),
        ({"thresholds": {}}, r"unknown field\(s\) \['thresholds'\]"),
    ],
)
def test_metadata_rejects_bad_fields(change, message) -> None:
    """Subjects not a list, a numeric shard, a claim that is not an object, a float seed, a v1 field: RecordError."""
    with pytest.raises(RecordError, match=message):
        validate_metadata(_metadata() | change)
