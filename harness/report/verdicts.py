"""Verdicts and the order of things: labels and glyphs, the worst of several verdicts, counts, the
order of claims and subjects, and the family a subject belongs to.

Every page (report, front page, comparison, terminal summary) takes these from here.
"""

from __future__ import annotations

import re
from typing import Sequence

from harness.records import VERDICTS, ClaimRecord

VERDICT_LABELS = {"supported": "SUPPORTED", "contradicted": "CONTRADICTED", "inconclusive": "INCONCLUSIVE",
                  "error": "ERROR"}
# A glyph beside every verdict so that colour is never the only cue.
VERDICT_GLYPHS = {"supported": "✓", "contradicted": "✗", "inconclusive": "?", "error": "!"}
# A cell holding several verdicts shows the worst one.
SEVERITY = {"supported": 0, "inconclusive": 1, "contradicted": 2, "error": 3}
assert set(VERDICT_LABELS) == set(VERDICTS) == set(SEVERITY)

_STEP = re.compile(r"@step(\d+)$")
_SEED_SUFFIX = re.compile(r"-seed\d+$")  # the runner's training-setup rule (harness.claims.runner.setup_name)


def claim_order(claim_id: str) -> tuple[int, str]:
    """Sort key putting C2 before C10."""
    digits = "".join(ch for ch in claim_id if ch.isdigit())
    return (int(digits) if digits else 10**9, claim_id)


def ordered_claims(records: Sequence[ClaimRecord]) -> list[str]:
    """Claim ids present in the records, C1 before C2 before C10."""
    return sorted({r.claim_id for r in records}, key=claim_order)


def ordered_subjects(records: Sequence[ClaimRecord], requested: Sequence[str] = ()) -> list[str]:
    """Subjects present in the records: the requested order first, then first appearance."""
    present = list(dict.fromkeys(r.subject for r in records))
    return [s for s in requested if s in present] + [s for s in present if s not in requested]


def worst_verdict(records: Sequence[ClaimRecord]) -> str:
    """The most severe verdict of the records (error > contradicted > inconclusive > supported)."""
    return max((r.verdict for r in records), key=SEVERITY.__getitem__)


def verdict_counts(records: Sequence[ClaimRecord]) -> str:
    """``"3 supported, 1 contradicted, 0 inconclusive, 1 error (5 records)"``."""
    counts = ", ".join(f"{sum(r.verdict == v for r in records)} {v}" for v in VERDICT_LABELS)
    return f"{counts} ({len(records)} records)"


def verdict_text(verdict: str) -> str:
    """``"✓ SUPPORTED"``."""
    return f"{VERDICT_GLYPHS[verdict]} {VERDICT_LABELS[verdict]}"


def family_of(subject: str) -> str:
    """The family a subject or trajectory label belongs to, training seeds joined into their setup.

    ``pythia-70m@step143000`` → ``pythia-70m``; ``zoo:neox-4l@*`` → ``zoo:neox-4l``;
    ``pythia-70m-seed3@step0`` and ``pythia-70m@* (5 seeds)`` → ``pythia-70m``; ``gpt2`` → ``gpt2``.
    """
    return _SEED_SUFFIX.sub("", subject.split("@", 1)[0].strip())


def is_trajectory(subject: str) -> bool:
    """Whether a record's subject names a whole family (``…@*``): a claim over training checkpoints."""
    return "@*" in subject


def earlier_checkpoints(subjects: Sequence[str]) -> set[str]:
    """The subjects that are not their family's last checkpoint (the headline shows the last; the rest fold)."""
    last: dict[str, str] = {}
    for s in subjects:
        if not is_trajectory(s):
            key = family_of(s)
            if key not in last or (step_of(s) or -1) > (step_of(last[key]) or -1):
                last[key] = s
    return {s for s in subjects if not is_trajectory(s) and last[family_of(s)] != s}


def step_of(subject: str) -> int | None:
    """The training step of ``…@step<N>``, else None."""
    match = _STEP.search(subject)
    return int(match.group(1)) if match else None


def slug(text: str) -> str:
    """A file- and anchor-safe name: runs of other characters become ``_``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "x"


def record_anchor(claim_id: str, subject: str) -> str:
    """The page anchor of one record's headline: ``C1--pythia_70m_step143000``."""
    return f"{claim_id}--{slug(subject)}"
