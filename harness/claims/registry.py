"""The registry of claims: each claim is a decision procedure registered by a decorator.

A claim module writes::

    @claim("C1", "rare_three_regimes", scope="subject", rule_version=2, statement=..., rule=...,
           effect=..., paper=..., settings=("alpha", "c1_min_excess", ...))
    def rare_three_regimes(source, settings) -> ClaimRecord: ...

and ``CLAIMS["C1"].evaluate(source, settings)`` runs it. pytest (``claims/``), ``python -m harness
check`` and ``python -m harness calibrate`` all call ``evaluate``; none holds a copy of a rule.

Scope: ``"subject"`` claims take one subject's evidence (``harness.claims.evidence.Evidence``);
``"trajectory"`` claims take a ``Trajectory`` (the checkpoints of one family, or of several
training seeds of one setup). The scope decides how runners parametrise a claim.

``rule_version`` changes whenever the decision rule changes what it decides for the same
data; records carry it and ``harness check --baseline`` refuses to compare across versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

from harness.records import ClaimRecord

Scope = Literal["subject", "trajectory"]
SCOPES: tuple[str, ...] = ("subject", "trajectory")


class ClaimRegistryError(ValueError):
    """A claim registered twice, or asked for by an id that does not exist."""


@dataclass(frozen=True)
class Claim:
    """One claim of the papers as a decision procedure.

    ``effect`` states the smallest effect of interest (and the setting holding it); ``paper``
    the papers' numbers; ``rule`` the decision rule in words, for the three verdicts. ``assumptions``
    (name → statement) are what a verdict rests on beyond the data, where a rule cannot do without one
    (C7: no test bounds a mean from above without an assumption on its tail); calibration families that
    break one are measured and shown apart, outside the size bound the rule promises
    (``harness.calibration.families.Family.breaks``).
    """

    id: str
    name: str
    statement: str
    rule: str
    effect: str
    paper: str
    rule_version: int
    scope: Scope
    settings: tuple[str, ...]
    evaluate: Callable[[Any, dict[str, Any]], ClaimRecord]
    assumptions: Mapping[str, str] = field(default_factory=dict)

    @property
    def test_id(self) -> str:
        """``C1_rare_three_regimes``: how tests and reports name the claim."""
        return f"{self.id}_{self.name}"

    def new_record(self, label: str, settings: dict[str, Any]) -> ClaimRecord:
        """An empty record of this claim on ``label``, with the rule version and the settings the rule reads."""
        return ClaimRecord(claim_id=self.id, subject=label, paper=self.paper, rule_version=self.rule_version,
                           thresholds={name: settings[name] for name in self.settings})

    def describe(self) -> dict[str, Any]:
        """The claim's metadata (no procedure), for run documents and reports."""
        return {"id": self.id, "name": self.name, "statement": self.statement, "rule": self.rule,
                "effect": self.effect, "paper": self.paper, "rule_version": self.rule_version,
                "scope": self.scope, "assumptions": dict(self.assumptions)}


CLAIMS: dict[str, Claim] = {}


def claim(id: str, name: str, *, scope: Scope, rule_version: int, statement: str, rule: str, effect: str,
          paper: str, settings: tuple[str, ...], assumptions: Mapping[str, str] | None = None
          ) -> Callable[[Callable], Callable]:
    """Register the decorated ``evaluate(source, settings) -> ClaimRecord`` as claim ``id``.

    A duplicate id, an unknown scope or an unknown setting name is a ClaimRegistryError.
    """
    from harness.claims.settings import SETTINGS

    if scope not in SCOPES:
        raise ClaimRegistryError(f"claim {id}: scope must be one of {SCOPES}, got {scope!r}")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ClaimRegistryError(f"claim {id} reads unknown settings {unknown}")

    def register(evaluate: Callable) -> Callable:
        if id in CLAIMS:
            raise ClaimRegistryError(f"claim id {id!r} is registered twice ({CLAIMS[id].evaluate.__module__} and "
                                     f"{evaluate.__module__})")
        CLAIMS[id] = Claim(id, name, statement, rule, effect, paper, rule_version, scope, tuple(settings), evaluate,
                           dict(assumptions or {}))
        return evaluate
    return register


def claim_order(claim_id: str) -> tuple[int, str]:
    """Sort key putting C2 before C10."""
    digits = "".join(ch for ch in claim_id if ch.isdigit())
    return (int(digits) if digits else 10**9, claim_id)


def select_claims(ids: str | None = None) -> list[Claim]:
    """The claims named in a comma-separated ``ids`` (all when empty), in registry order.

    An unknown id is a ClaimRegistryError listing the known ones.
    """
    if not ids:
        return sorted(CLAIMS.values(), key=lambda c: claim_order(c.id))
    wanted = [i.strip() for i in ids.split(",") if i.strip()]
    unknown = [i for i in wanted if i not in CLAIMS]
    if unknown:
        raise ClaimRegistryError(f"unknown claim id(s) {unknown}; known: {', '.join(sorted(CLAIMS, key=claim_order))}")
    return sorted((CLAIMS[i] for i in dict.fromkeys(wanted)), key=lambda c: claim_order(c.id))


def headline(statistic: str, value: float, ci: tuple[float, float] | None, level: float, *,
             null_band: tuple[float, float] | None = None, smallest_effect: float | None = None,
             paper: str = "", scale_note: str = "", units: str = "") -> dict[str, Any]:
    """The decisive statistic of a record, as the report's headline shows it (``ClaimRecord.headline``)."""
    return {"statistic": statistic, "value": value, "ci": list(ci) if ci is not None else None, "ci_level": level,
            "null_band": list(null_band) if null_band is not None else None, "smallest_effect": smallest_effect,
            "paper": paper, "scale_note": scale_note, "units": units}
