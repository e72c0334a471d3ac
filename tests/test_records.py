"""Record schema: round trips, the validator's refusals, run metadata."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from harness.records import (
    METADATA_FIELDS,
    RECORD_FIELDS,
    SCHEMA_VERSION,
    ClaimRecord,
    RecordError,
    RunMetadata,
    UnknownSchemaVersionError,
    append_jsonl,
    read_jsonl,
    run_document,
    run_metadata,
    validate_metadata,
    validate_record,
    validate_run,
)
from harness.claims.registry import CLAIMS, load_settings
from harness.analysis.stats import empirical_p, percentile_ci, summarize_null


def _record(seed: int = 0) -> ClaimRecord:
    """A C5-like record with numpy values, a NaN and a planted null distribution."""
    rng = np.random.default_rng(seed)
    null = rng.normal(0.07, 0.01, size=200)
    observed = np.float64(null.mean())
    rec = ClaimRecord("C5", "zoo:neox-tiny@step16", paper=CLAIMS["C5"].paper)
    rec.statistics = {"Q_diff": observed - np.median(null), "n_communities": np.int64(4), "undefined": float("nan")}
    rec.ci = {"Q_diff": list(percentile_ci(null - np.median(null), 0.9))}
    rec.ci_levels = {"Q_diff": 0.9}
    rec.p_values = {"Q_diff": empirical_p(observed, null, "two-sided")}
    rec.null = {"Q": summarize_null(null)}
    rec.sample_sizes = {"null_draws": null.size}
    rec.seeds = {"null": seed}
    rec.thresholds = {"modularity_delta": 0.05}
    rec.series = {"null_Q": null, "observed_Q": observed}
    rec.decide({"equivalent": np.bool_(True)}, "Q_spec − median Q_null inside ±δ")
    return rec


def test_record_round_trips_through_json_and_jsonl(tmp_path: Path) -> None:
    rec = _record()
    data = json.loads(json.dumps(rec.to_json()))
    back = validate_record(data)
    assert back.to_json() == rec.to_json()
    assert back.statistics["undefined"] is None  # NaN is written as null
    assert isinstance(back.statistics["n_communities"], int)
    assert back.series["null_Q"] == pytest.approx(rec.series["null_Q"].tolist())

    path = tmp_path / "w" / "records.jsonl"
    append_jsonl(path, rec)
    append_jsonl(path, _record(seed=1))
    lines = read_jsonl([path])
    assert [ClaimRecord.from_json(d).seeds["null"] for d in lines] == [0, 1]


def test_numpy_values_in_a_dict_are_accepted() -> None:
    data = _record().to_json()
    data["sample_sizes"] = {"positions": np.int64(512)}
    data["series"] = {"null_Q": np.zeros(3), "observed_Q": np.float32(0.5)}
    rec = validate_record(data)
    assert rec.sample_sizes == {"positions": 512} and rec.series["null_Q"] == [0.0, 0.0, 0.0]


def test_every_field_is_documented() -> None:
    assert set(RECORD_FIELDS) == {f.name for f in fields(ClaimRecord)}
    assert set(METADATA_FIELDS) == {f.name for f in fields(RunMetadata)}


def _bad(**changes: object) -> dict:
    data = _record().to_json()
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "data, fragment",
    [
        (_bad(verdict="maybe"), "verdict 'maybe'"),
        (_bad(colour="blue"), "unknown field(s) ['colour']"),
        (_bad(p_values={"Q_diff": 1.5}), "p_values['Q_diff']"),
        (_bad(ci={"Q_diff": [0.1]}), "ci['Q_diff']"),
        (_bad(ci={"Q_diff": [0.3, 0.1]}), "lo <= hi"),
        (_bad(statistics={"curve": [1.0, 2.0]}), "arrays belong in series"),
        (_bad(sample_sizes={"positions": -3}), "sample_sizes['positions']"),
        (_bad(verdict="fail"), "disagrees with checks"),
        (_bad(verdict="error", message=""), "needs the exception"),
        (_bad(series={"ln_rank": [0.0, 1.0], "ln_influence": [1.0]}), "equal lengths"),
        (_bad(series={"null_Q": [0.1, 0.2]}), "no 'observed_Q'"),
        (_bad(series={"null_band": [0.1]}), "[lo, hi]"),
        (_bad(series={"head_effects": [1.0, 2.0], "head_labels": ["H0"]}), "one per head_effects"),
    ],
)
def test_validator_names_what_is_wrong(data: dict, fragment: str) -> None:
    with pytest.raises(RecordError) as err:
        validate_record(data)
    assert fragment in str(err.value)
    assert "C5[zoo:neox-tiny@step16]" in str(err.value)


def test_missing_required_field_is_refused() -> None:
    data = _record().to_json()
    del data["subject"]
    with pytest.raises(RecordError, match="required field"):
        validate_record(data)


def test_unknown_schema_version_is_refused_clearly() -> None:
    future = SCHEMA_VERSION + 1
    with pytest.raises(UnknownSchemaVersionError) as err:
        validate_record(_bad(schema_version=future))
    assert f"schema_version {future}" in str(err.value)
    assert str(SCHEMA_VERSION) in str(err.value)
    assert isinstance(err.value, ValueError)


def _metadata() -> dict:
    settings = load_settings()
    return run_metadata(["pytest", "claims/", "-n", "2"], ["zoo:neox-tiny@step16"], "cpu", {"global": 0}, settings)


def test_run_metadata_states_versions_commit_and_settings() -> None:
    meta = _metadata()
    assert meta["command_line"] == "pytest claims/ -n 2"
    assert meta["thresholds"] == load_settings()
    assert meta["torch_version"] == importlib.metadata.version("torch")
    assert meta["transformer_lens_version"] == importlib.metadata.version("transformer-lens")
    assert meta["schema_version"] == SCHEMA_VERSION
    repo = Path(__file__).resolve().parents[1]
    if shutil.which("git") and (repo / ".git").exists():
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
        assert meta["git_commit"] == head
    assert validate_metadata(json.loads(json.dumps(meta))).to_json() == meta


def test_run_document_round_trips_and_refuses_unknown_versions() -> None:
    doc = json.loads(json.dumps(run_document(_metadata(), [_record(0), _record(1)])))
    meta, recs = validate_run(doc)
    assert meta.subjects == ["zoo:neox-tiny@step16"]
    assert [r.to_json() for r in recs] == doc["records"]

    for path in (("schema_version",), ("metadata", "schema_version")):
        bad = json.loads(json.dumps(doc))
        target = bad
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = 99
        with pytest.raises(UnknownSchemaVersionError, match="schema_version 99"):
            validate_run(bad)


def test_metadata_rejects_bad_subjects() -> None:
    meta = _metadata()
    meta["subjects"] = "zoo:neox-tiny@step16"
    with pytest.raises(RecordError, match="'subjects' must be a list of strings"):
        validate_metadata(meta)


def test_decide_sets_verdict_and_names_failed_checks() -> None:
    rec = ClaimRecord("C1", "gpt2")
    rec.decide({"delta_bic": True, "plateau_ci": False}, "plateau score 0.1")
    assert rec.verdict == "fail"
    assert rec.message.endswith("[failed: plateau_ci]")
    assert validate_record(rec.to_json()).checks == {"delta_bic": True, "plateau_ci": False}
