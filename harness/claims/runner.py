"""Running claims on subjects: what pytest (``claims/``) and ``python -m harness check`` share.

``targets(claims, subjects)`` turns subjects into what each claim's scope takes — one target
per family (its last listed checkpoint) for subject claims, one per training setup (every
listed checkpoint of each seed) for claims over training — in a fixed order with readable ids.
``Session.evaluate(target)`` runs the claim's registered procedure on cached studies and
returns its record with provenance (weight hashes, measurement digests) and the calibration of
its procedure. Both entry points call exactly this, so their records are identical.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from harness import zoo
from harness.claims.calibration_table import cite_calibration
from harness.claims.evidence import Trajectory
from harness.claims.registry import Claim
from harness.measure.cache import MeasurementCache
from harness.measure.study import Study, StudyConfig
from harness.records import ClaimRecord
from harness.subjects import Subject

SEED_SUFFIX = re.compile(r"-seed\d+$")


@dataclass(frozen=True)
class Target:
    """One claim on one subject (``subjects`` holds it alone) or on one training setup (every checkpoint
    of every seed, ``seeds`` lists the families)."""

    claim: Claim
    label: str
    subjects: tuple[Subject, ...]
    seeds: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """``C1_rare_three_regimes[zoo:neox-4l@step1000]``."""
        return f"{self.claim.test_id}[{self.label}]"


def families(subjects: list[Subject]) -> "OrderedDict[str, list[Subject]]":
    """Subjects grouped by family (first-appearance order), each family's checkpoints sorted by step."""
    out: OrderedDict[str, list[Subject]] = OrderedDict()
    for s in subjects:
        members = out.setdefault(s.family, [])
        if s not in members:
            members.append(s)
    for members in out.values():
        members.sort(key=lambda s: -1 if s.step is None else s.step)
    return out


def setup_name(family: str) -> str:
    """The training setup of a family: its name without a ``-seed{N}`` suffix (Pythia's seed families,
    zoo families built with several seeds)."""
    return SEED_SUFFIX.sub("", family)


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` → (K, N) with 1 ≤ K ≤ N; ValueError with one line otherwise."""
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise ValueError(f"--shard {text!r}: expected K/N with whole numbers 1 ≤ K ≤ N, e.g. 1/4")
    return int(k), int(n)


def shard_subjects(subjects: list[Subject], shard: str | None) -> list[Subject]:
    """The subjects of shard ``"K/N"`` (all of them when ``shard`` is None), in their given order.

    Whole training setups go to one shard — every checkpoint of every seed family of one
    ``setup_name`` — so claims over training see all their checkpoints. Setups are dealt
    largest first (by checkpoint count, then first appearance) to the shard holding the fewest
    checkpoints so far (the lowest-numbered on ties): deterministic for the same subject list,
    and balanced by checkpoints. A shard may be empty when N exceeds the number of setups.
    """
    if shard is None:
        return list(subjects)
    k, n = parse_shard(shard)
    setups: OrderedDict[str, list[Subject]] = OrderedDict()
    for family, members in families(subjects).items():
        setups.setdefault(setup_name(family), []).extend(members)
    load, owner = [0] * n, {}
    for setup in sorted(setups, key=lambda name: -len(setups[name])):  # sorted() is stable: ties keep their order
        target = min(range(n), key=lambda i: (load[i], i))
        owner[setup] = target
        load[target] += len(setups[setup])
    return [s for s in subjects if owner[setup_name(s.family)] == k - 1]


def _test_label(subject: Subject) -> str:
    return subject.test_id


def targets(claims: list[Claim], subjects: list[Subject]) -> list[Target]:
    """What each claim runs on, claim by claim (module docstring)."""
    fams = families(subjects)
    out: list[Target] = []
    for c in claims:
        if c.scope == "subject":
            out += [Target(c, _test_label(members[-1]), (members[-1],)) for members in fams.values()]
            continue
        setups: OrderedDict[str, list[str]] = OrderedDict()
        for fam, members in fams.items():
            if members[0].has_checkpoints and len(members) > 1:
                setups.setdefault(setup_name(fam), []).append(fam)
        for setup, seed_families in setups.items():
            members = tuple(s for f in seed_families for s in fams[f])
            label = (f"{_short(setup)}@*" if len(seed_families) == 1 else f"{_short(setup)}@* ({len(seed_families)} seeds)")
            out.append(Target(c, label, members, tuple(seed_families)))
    return out


def _short(family: str) -> str:
    """A family's readable name: a local directory shortened to its basename."""
    return "hf:" + family.rstrip("/").rsplit("/", 1)[-1] if family.startswith("hf:") else family


def build_zoo(subjects: list[Subject], progress: bool = True) -> None:
    """Build every zoo family the subjects name (once; a lookup never builds)."""
    for name in dict.fromkeys(s.family[4:] for s in subjects if s.kind == "zoo"):
        zoo.ensure_built(name, progress=progress)


@dataclass
class Session:
    """Cached studies of one run and the settings every claim reads."""

    settings: dict[str, Any]
    config: StudyConfig
    cache: MeasurementCache
    device: str = "cpu"
    studies: dict[Subject, Study] = field(default_factory=dict)
    on_measure: Callable[[str, str], None] | None = None

    def study(self, subject: Subject) -> Study:
        """The run's one ``Study`` of ``subject``."""
        if subject not in self.studies:
            self.studies[subject] = Study(subject, self.config, self.cache, self.device, self._announce)
        return self.studies[subject]

    def _announce(self, measurement: str, label: str) -> None:
        if self.on_measure is not None:
            self.on_measure(measurement, label)

    def trajectory(self, target: Target) -> Trajectory:
        """The target's checkpoints per seed, duplicates (identical weight hash) dropped."""
        seeds, duplicates = [], {}
        for family in target.seeds:
            kept: dict[str | None, Study] = {}
            run = []
            for subject in (s for s in target.subjects if s.family == family):
                study = self.study(subject)
                digest = study.weights_sha256
                if digest is not None and digest in kept:
                    duplicates[study.label] = kept[digest].label
                    continue
                kept[digest if digest is not None else study.label] = study
                run.append(study)
            seeds.append(run)
        return Trajectory(target.label, seeds, duplicates)

    def evaluate(self, target: Target) -> ClaimRecord:
        """The target's record: its claim's procedure on this session's studies, with provenance and calibration.

        A measurement error propagates (pytest shows its traceback; ``harness check`` turns it
        into an error record with ``error_record``).
        """
        start = time.perf_counter()
        if target.claim.scope == "subject":
            source: Any = self.study(target.subjects[0])
            studies = [source]
        else:
            source = self.trajectory(target)
            studies = source.checkpoints
        for s in studies:
            s.begin_claim()
        try:
            record = target.claim.evaluate(source, self.settings)
        finally:
            for s in studies:
                s.release_model()
        record.subject = target.label
        record.provenance = {
            "weights_sha256": {s.label: s.weights_sha256 for s in studies},
            "measurements": {f"{s.label}:{name}": digest for s in studies
                             for name, digest in s.used_measurements().items()},
        }
        record.calibration = cite_calibration(record)
        record.elapsed_s = time.perf_counter() - start
        return record


def error_record(target: Target, error: BaseException, settings: dict[str, Any]) -> ClaimRecord:
    """The record of a target whose measurement raised: verdict ``error`` and the exception's one line."""
    record = target.claim.new_record(target.label, settings)
    record.verdict = "error"
    record.message = f"{type(error).__name__}: {error}".splitlines()[0]
    record.reason = "the measurement raised an exception"
    return record
