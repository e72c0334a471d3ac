"""Start-up checks shared by pytest and ``harness check``: bad input stops a run with one line, before any work.

``check_startup(options)`` validates the settings (unknown, mistyped, out of range), the claim
ids, the subjects, the evaluation-data options and a token-count file (its length against each
subject's tokenizer and unembedding, without building anything); ``check_data(subjects, config)``,
run once the zoo families are built, checks that every local or zoo subject's evaluation data can
be built and reach ``min_rare_positions`` (growing them first). Every failure is a
``StartupError`` whose message is one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from harness.claims.registry import CLAIMS, ClaimRegistryError, select_claims
from harness.claims.runner import parse_shard, shard_subjects
from harness.claims.settings import SettingsError, load_settings
from harness.data.evaldata import EvalSpec, TooFewPositionsError
from harness.measure.study import StudyConfig
from harness.records import run_metadata
from harness.subjects import Subject, SubjectError, expand_subjects
from harness.subjects.loading import vocabulary_sizes


class StartupError(ValueError):
    """Bad input found before a run starts; the message is one line."""


OPTION_NAMES = ("subjects", "claims", "claims_config", "eval_sequences", "eval_length", "eval_seed", "eval_corpus",
                "rare_definition", "conditioning", "token_counts", "frequency_corpus", "dtype", "shard")


def study_config(options: Mapping[str, Any], settings: dict[str, Any]) -> StudyConfig:
    """The measurement configuration of a run's options."""
    return StudyConfig(
        eval=EvalSpec(n_sequences=options["eval_sequences"], seq_len=options["eval_length"], seed=options["eval_seed"]),
        rare_definition=options["rare_definition"], conditioning=options["conditioning"],
        min_rare_positions=settings["min_rare_positions"], max_eval_sequences=settings["max_eval_sequences"],
        dtype=options["dtype"], eval_corpus=options["eval_corpus"], token_counts=options["token_counts"],
        frequency_corpus=options["frequency_corpus"], selection_seed=settings["seed"],
    )


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def check_startup(options: Mapping[str, Any], check_files: bool = True) -> dict[str, Any]:
    """The run's settings after every check of the module docstring but the data (raises StartupError)."""
    try:
        settings = load_settings(options.get("claims_config"))
        select_claims(options.get("claims"))
        subjects = expand_subjects(options["subjects"])
        if options.get("shard") is not None:
            parse_shard(options["shard"])
        study_config(options, settings)
    except (SettingsError, ClaimRegistryError, SubjectError, ValueError) as err:
        raise StartupError(_one_line(err)) from None
    for name in ("eval_corpus", "frequency_corpus", "token_counts"):
        if options.get(name) and not Path(options[name]).exists():
            raise StartupError(f"--{name.replace('_', '-')} {options[name]}: no such file or directory")
    if check_files and options.get("token_counts"):
        check_token_counts(options["token_counts"], subjects)
    return settings


def check_token_counts(path: str, subjects: list[Subject]) -> None:
    """A token-count file must hold one count per tokenizer id or per unembedding row of every subject."""
    try:
        counts = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise StartupError(f"--token-counts {path}: cannot read a .npy array ({_one_line(err)})") from None
    if counts.ndim != 1:
        raise StartupError(f"--token-counts {path}: expected one count per vocabulary id, got shape {counts.shape}")
    for subject in {s.family: s for s in subjects}.values():
        tokenizer, rows = vocabulary_sizes(subject)
        if counts.size not in (tokenizer, rows):
            raise StartupError(f"--token-counts {path} holds {counts.size} counts; {subject.spec} has {tokenizer} "
                               f"tokenizer ids and {rows} unembedding rows (either length is accepted)")


def check_data(subjects: list[Subject], config: StudyConfig) -> None:
    """Every local or zoo family's evaluation data can be built (frequencies found, sequences within the
    context) and reach ``min_rare_positions`` (after growing)."""
    from harness.measure.cache import MeasurementCache
    from harness.measure.study import Study

    for subject in {s.family: s for s in subjects if s.kind != "hub"}.values():
        study = Study(subject, config, MeasurementCache(None))
        try:
            study.selection
        except TooFewPositionsError as err:
            raise StartupError(f"{subject.spec}: {_one_line(err)} (the data grew to {study.n_sequences} sequences; "
                               f"max_eval_sequences = {config.max_eval_sequences})") from None
        except (ValueError, OSError) as err:
            raise StartupError(f"{subject.spec}: {_one_line(err)}") from None


def run_subjects(options: Mapping[str, Any]) -> list[Subject]:
    """The subjects this run measures: ``options["subjects"]`` expanded, then ``options["shard"]``'s share."""
    return shard_subjects(expand_subjects(options["subjects"]), options.get("shard"))


def run_metadata_for(command_line: str, options: Mapping[str, Any], settings: dict[str, Any], device: str
                     ) -> dict[str, Any]:
    """The run document's metadata: subjects (of the shard, if any), device, seeds, every setting, the
    claims' descriptions, the shard."""
    subjects = [s.spec for s in run_subjects(options)]
    claims = {c.id: c.describe() for c in select_claims(options.get("claims"))}
    return run_metadata(command_line=command_line, subjects=subjects, device=device,
                        seeds={"eval": options["eval_seed"], "claims": settings["seed"]}, settings=settings,
                        claims=claims, shard=options.get("shard"))


__all__ = ["CLAIMS", "OPTION_NAMES", "StartupError", "check_data", "check_startup", "check_token_counts",
           "run_metadata_for", "run_subjects", "study_config"]
