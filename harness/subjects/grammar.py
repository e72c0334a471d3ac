"""Subjects: one model at one checkpoint, written as one string, parsed and validated here.

Grammar (``PATTERN`` is a comma-separated list of these)::

    <hub-family>[@step<N> | @*]     pythia-410m@step143000, pythia-70m-deduped@*, gpt2-xl
    hf:<dir>[@step<N> | @*]         a local Hugging Face directory; @step<N> is its
                                    subfolder step<N>/, @* every such subfolder
    zoo:<name>[@step<N> | @*]       a family of the embedded zoo (harness.zoo.ZOO)
    zoo:*                           every default zoo family at all its checkpoints

A family with checkpoints written without ``@`` means its final checkpoint (a local
directory holding ``config.json`` itself means that directory). Families without
checkpoints (GPT-2, a plain local directory) take no ``@``. Every invalid string raises
:class:`SubjectError`, whose message lists what is valid. Directory paths must not contain
``@`` or ``,``.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness import zoo as _zoo

Kind = Literal["hub", "hf", "zoo"]

PYTHIA_SIZES = ("14m", "31m", "70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b")
PYTHIA_FAMILIES = tuple(f"pythia-{s}{d}" for s in PYTHIA_SIZES for d in ("", "-deduped"))
PYTHIA_STEPS: tuple[int, ...] = (0, *(2**k for k in range(10)), *range(1000, 143000 + 1, 1000))
PYTHIA_RULE = "step0, the powers of two step1 … step512, and every 1000 steps from step1000 to step143000"
GPT2_FAMILIES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
HUB_FAMILIES = PYTHIA_FAMILIES + GPT2_FAMILIES

GRAMMAR = (
    "a subject is '<family>[@step<N>|@*]' with family one of the hub names "
    "(pythia-<size>[-deduped], gpt2[-medium|-large|-xl]), 'hf:<directory>' or 'zoo:<name>'; "
    "'zoo:*' is every default zoo family; several subjects are separated by commas"
)

_SUBJECT_RE = re.compile(r"^(?P<family>[^@,\s]+)(?:@(?P<sel>\*|step(?P<step>\d+)))?$")
_STEP_DIR_RE = re.compile(r"^step(\d+)$")


class SubjectError(ValueError):
    """An invalid subject string; the message says what is wrong and lists what is valid."""


@dataclass(frozen=True)
class Subject:
    """One model at one checkpoint.

    ``kind`` is ``"hub"`` (a TransformerLens/Hugging Face hub model), ``"hf"`` (a local
    directory; ``family`` is ``"hf:" + absolute path``) or ``"zoo"`` (``family`` is
    ``"zoo:<name>"``). ``step`` is the training step of the checkpoint, or ``None`` for a
    model without checkpoints. Construction validates all three (raises SubjectError).
    """

    kind: Kind
    family: str
    step: int | None

    def __post_init__(self) -> None:
        if self.kind not in ("hub", "hf", "zoo"):
            raise SubjectError(f"subject kind {self.kind!r} is not one of 'hub', 'hf', 'zoo'")
        if _kind_of(self.family) != self.kind:
            raise SubjectError(f"family {self.family!r} is not of kind {self.kind!r}")
        if self.kind == "hf" and not Path(self.family[3:]).is_absolute():
            raise SubjectError(f"family {self.family!r}: an hf family holds an absolute path, 'hf:/…'")
        _check_step(self.family, family_steps(self.family), self.step)

    @property
    def spec(self) -> str:
        """The canonical string; ``parse_subject(s.spec) == s``."""
        return self.family if self.step is None else f"{self.family}@step{self.step}"

    @property
    def revision(self) -> str | None:
        """The checkpoint's revision name ``step{N}`` (hub branch or local subfolder), or None."""
        return None if self.step is None else f"step{self.step}"

    @property
    def has_checkpoints(self) -> bool:
        """Whether the family has more than one checkpoint to choose from (``@*`` is valid)."""
        return bool(family_steps(self.family))

    @property
    def hub_name(self) -> str | None:
        """The hub repository TransformerLens loads (``EleutherAI/pythia-70m``), or None."""
        if self.kind != "hub":
            return None
        org = "EleutherAI" if self.family.startswith("pythia-") else "openai-community"
        return f"{org}/{self.family}"

    @property
    def test_id(self) -> str:
        """A short readable pytest id: the spec, with a local directory shortened to its name."""
        if self.kind != "hf":
            return self.spec
        name = f"hf:{Path(self.family[3:]).name}"
        return name if self.step is None else f"{name}@step{self.step}"


def _kind_of(family: str) -> Kind:
    if family.startswith("hf:"):
        return "hf"
    if family.startswith("zoo:"):
        return "zoo"
    return "hub"


def _hf_family(path: str) -> str:
    if not path:
        raise SubjectError(f"'hf:' needs a directory path; {GRAMMAR}")
    directory = Path(path).expanduser().resolve()
    if not directory.is_dir():
        raise SubjectError(f"hf:{path}: no such directory ({directory})")
    return f"hf:{directory}"


def _hf_steps(directory: Path) -> list[int]:
    found = (_STEP_DIR_RE.match(p.name) for p in directory.iterdir() if (p / "config.json").is_file())
    return sorted(int(m.group(1)) for m in found if m)


def family_steps(subject_or_family: Subject | str) -> list[int]:
    """The checkpoint steps of a family, ascending; ``[]`` for a family without checkpoints.

    Accepts a Subject or a family string (``pythia-70m``, ``gpt2``, ``zoo:neox-4l``,
    ``hf:/abs/dir``). Raises SubjectError for an unknown family.
    """
    family = subject_or_family.family if isinstance(subject_or_family, Subject) else subject_or_family
    kind = _kind_of(family)
    if kind == "zoo":
        name = family[4:]
        if name not in _zoo.ZOO:
            raise SubjectError(f"unknown zoo family {name!r}; the zoo has: {', '.join(sorted(_zoo.ZOO))}")
        return list(_zoo.ZOO[name].steps)
    if kind == "hf":
        directory = Path(family[3:])
        if not directory.is_dir():
            raise SubjectError(f"{family}: no such directory")
        return _hf_steps(directory)
    if family in PYTHIA_FAMILIES:
        return list(PYTHIA_STEPS)
    if family in GPT2_FAMILIES:
        return []
    raise SubjectError(
        f"unknown model {family!r}; known hub families: {', '.join(HUB_FAMILIES)}; "
        f"or 'hf:<directory>', or zoo:<name> with name in {', '.join(sorted(_zoo.ZOO))}"
    )


def _step_rule(family: str, steps: list[int]) -> str:
    if family in PYTHIA_FAMILIES:
        return PYTHIA_RULE
    return ", ".join(f"step{s}" for s in steps)


def _hf_has_root(family: str) -> bool:
    """Whether an hf family's directory is itself a model (holds config.json)."""
    return family.startswith("hf:") and (Path(family[3:]) / "config.json").is_file()


def _check_step(family: str, steps: list[int], step: int | None) -> None:
    if step is None:
        if _hf_has_root(family) or (not steps and not family.startswith("hf:")):
            return
        if steps:
            raise SubjectError(f"{family} has checkpoints; name one with @step<N> ({_step_rule(family, steps)})")
        raise SubjectError(f"{family} holds neither config.json nor step<N>/ subfolders")
    if not steps:
        raise SubjectError(f"{family} has no checkpoints; write it without '@step{step}'")
    if step in steps:
        return
    i = bisect.bisect_left(steps, step)
    nearest = sorted({steps[j] for j in (i - 1, i) if 0 <= j < len(steps)})
    raise SubjectError(
        f"{family} has no checkpoint step{step}; nearest: {', '.join(f'step{s}' for s in nearest)}; "
        f"valid checkpoints: {_step_rule(family, steps)}"
    )


def _canonical_family(family: str) -> str:
    kind = _kind_of(family)
    if kind == "hf":
        return _hf_family(family[3:])
    family_steps(family)  # raises SubjectError for an unknown family
    return family


def _match(text: str) -> re.Match[str]:
    match = _SUBJECT_RE.match(text)
    if match is None:
        raise SubjectError(f"malformed subject {text!r}: {GRAMMAR}")
    return match


def _default_step(family: str) -> int | None:
    steps = family_steps(family)
    return None if not steps or _hf_has_root(family) else steps[-1]


def parse_subject(text: str) -> Subject:
    """Parse one subject string (no ``@*``, no commas) into a validated Subject."""
    match = _match(text.strip())
    if match["sel"] == "*" or match["family"] == "zoo:*":
        raise SubjectError(f"{text!r} names several subjects; use expand_subjects() for '@*' and 'zoo:*'")
    family = _canonical_family(match["family"])
    step = int(match["step"]) if match["step"] is not None else _default_step(family)
    return Subject(_kind_of(family), family, step)


def expand_subjects(pattern: str) -> list[Subject]:
    """Expand a comma-separated pattern into Subjects, in order, without duplicates.

    ``<family>@*`` gives every checkpoint of the family; ``zoo:*`` every checkpoint of
    every default zoo family.
    """
    subjects: list[Subject] = []
    parts = [p.strip() for p in pattern.split(",")]
    if not any(parts):
        raise SubjectError(f"empty subject pattern: {GRAMMAR}")
    for part in parts:
        if part == "zoo:*":
            defaults = [(n, spec) for n, spec in _zoo.ZOO.items() if spec.default]
            subjects += [Subject("zoo", f"zoo:{n}", s) for n, spec in defaults for s in spec.steps]
            continue
        match = _match(part)
        if match["sel"] != "*":
            subjects.append(parse_subject(part))
            continue
        family = _canonical_family(match["family"])
        steps = family_steps(family)
        if not steps:
            raise SubjectError(f"{family} has no checkpoints, so '@*' selects nothing; write it without '@'")
        subjects += [Subject(_kind_of(family), family, s) for s in steps]
    return list(dict.fromkeys(subjects))


def describe(pattern: str | None = None) -> str:
    """Text for ``python -m harness subjects [PATTERN]``: the known families, or the expansion.

    Without a pattern: every hub and zoo family with its checkpoints. With one: one
    canonical spec per line. Raises SubjectError for an invalid pattern.
    """
    if pattern:
        return "\n".join(s.spec for s in expand_subjects(pattern))
    lines = [f"Pythia (checkpoints: {PYTHIA_RULE}; no '@' means step{PYTHIA_STEPS[-1]}):"]
    lines += [f"  {f}" for f in PYTHIA_FAMILIES]
    lines += ["GPT-2 (no checkpoints):"] + [f"  {f}" for f in GPT2_FAMILIES]
    lines += ["Zoo ('zoo:*' = the default families at all checkpoints):"]
    for name, spec in _zoo.ZOO.items():
        tag = "default" if spec.default else "test"
        lines.append(f"  zoo:{name} [{tag}, {spec.arch}] steps {', '.join(map(str, spec.steps))}")
    lines += ["Local: hf:<directory>[@step<N>|@*] (step<N>/ subfolders)", f"Grammar: {GRAMMAR}"]
    return "\n".join(lines)
