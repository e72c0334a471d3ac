"""Sharded runs: ``--shard K/N`` keeps training setups whole and splits deterministically, and the
merged shards (``python -m harness report --merge``) equal the unsharded run on the tiny zoo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli
from harness.claims.runner import setup_name, shard_subjects
from harness.records import validate_run
from harness.subjects import expand_subjects

TINY = "zoo:neox-tiny@*,zoo:gpt2-tiny@*"
SEEDS = "zoo:neox-tiny@*,zoo:gpt2-tiny@*,zoo:neox-tiny-seed1@*,zoo:neox-tiny-seed2@*"
# C8 (one subject per family, Holm across subjects) and C9 (every checkpoint): cheap, and both scopes.
CLAIMS = "C8,C9"
QUICK = {"n_bootstrap": 50, "n_null": 100, "n_null_curves": 5, "louvain_seeds": 2, "min_rare_positions": 50}
VOLATILE = ("elapsed_s", "test_id")  # what differs between two runs of the same records


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_shards_partition_the_subjects_and_keep_setups_whole(n: int) -> None:
    subjects = expand_subjects(SEEDS)
    shards = [shard_subjects(subjects, f"{k}/{n}") for k in range(1, n + 1)]
    assert sorted(s.spec for shard in shards for s in shard) == sorted(s.spec for s in subjects)
    for shard in shards:
        assert [s for s in subjects if s in shard] == shard  # the given order
    owners = {setup_name(s.family): k for k, shard in enumerate(shards) for s in shard}
    assert all(owners[setup_name(s.family)] == k for k, shard in enumerate(shards) for s in shard)
    assert shards == [shard_subjects(subjects, f"{k}/{n}") for k in range(1, n + 1)]  # deterministic
    if n == 2:  # the three neox-tiny seeds (21 checkpoints) against gpt2-tiny (7)
        assert {setup_name(s.family) for s in shards[0]} == {"zoo:neox-tiny"}


@pytest.mark.parametrize("bad", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_a_bad_shard_is_one_line(bad: str, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["check", TINY, "--shard", bad]) == 2
    err = capsys.readouterr().err.strip()
    assert "--shard" in err and "\n" not in err


def _check(tmp: Path, name: str, *extra: str) -> Path:
    config = tmp / "quick.json"
    config.write_text(json.dumps(QUICK))
    args = ["check", TINY, "--claims", CLAIMS, "--eval-sequences", "24", "--eval-length", "64",
            "--claims-config", str(config), "--cache-dir", str(tmp / "cache"), "--report-dir", str(tmp / "reports"),
            "--run-name", name, "--device", "cpu", *extra]
    assert cli.main(args) == 0
    return tmp / "reports" / name


def _records(run: Path) -> tuple[dict, dict]:
    metadata, records = validate_run(json.loads((run / "claims.json").read_text()))
    return metadata, {(r.claim_id, r.subject): {k: v for k, v in r.to_json().items() if k not in VOLATILE}
                      for r in records}


@pytest.mark.slow
def test_merged_shards_equal_the_unsharded_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("RARE_ZOO_DIR", str(tmp_path / "zoo"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    whole = _check(tmp_path, "whole")
    shards = [_check(tmp_path, f"shard{k}", "--shard", f"{k}/2") for k in (1, 2)]
    assert [validate_run(json.loads((s / "claims.json").read_text()))[0].shard for s in shards] == ["1/2", "2/2"]
    merged = tmp_path / "reports" / "merged"
    assert cli.main(["report", "--merge", *map(str, shards), "--out", str(merged)]) == 0
    meta_whole, want = _records(whole)
    meta_merged, got = _records(merged)
    assert got == want  # every field, Holm-adjusted p-values included, but timing and test ids
    assert sorted(meta_merged.subjects) == sorted(meta_whole.subjects) and meta_merged.shard is None
    assert (merged / "claims.md").is_file() and (merged / "claims.html").is_file()

    capsys.readouterr()
    assert cli.main(["report", "--merge", str(shards[0]), str(shards[0]), "--out", str(tmp_path / "dup")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: duplicate record C") and "\n" not in err

    doc = json.loads((shards[1] / "claims.json").read_text())
    for record in doc["records"]:
        record["rule_version"] += 1
    changed = tmp_path / "reports" / "changed-rule"
    changed.mkdir()
    (changed / "claims.json").write_text(json.dumps(doc))
    assert cli.main(["report", "--merge", str(shards[0]), str(changed), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: rule-version mismatch: C") and "\n" not in err
