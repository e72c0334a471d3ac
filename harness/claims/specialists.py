"""Specialist neurons: which final-MLP neurons the group claims (C5–C9) are about.

Selection and test never share data. The evaluation sequences are split once per subject by a
seeded permutation (``selection_fraction`` of them, default half, form the selection half A;
the rest the test half B). Specialists are the neurons of highest rare-target influence pooled
over A; activation claims (C5, C6, C7) test them on B only, so a group chosen for a property
of A's noise cannot show it again on B.

Group size: when C1 supports a plateau on the subject, the plateau of the 3-segment fit to
A's curve (if it holds 3 to 25% of the layer); otherwise a fixed top-K, K = max(``min_specialists``,
round(``specialist_fraction`` · d_mlp)) — the papers' ≈ 1.7%, at least 16. The record says which.
Claims over training keep K fixed along the trajectory (``fixed_size``).

Positive controls: a source whose ``planted_neurons()`` returns ids (a planted zoo family, a
directory shipping ``planted_neurons.json``, a calibration world with a planted group) gets the
recovery of those ids by the selected specialists in its group records (``planted_recovery``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.analysis.regimes import fit_regimes
from harness.claims.evidence import Evidence, memoized, settings_key

MAX_PLATEAU_FRACTION = 0.25


@dataclass(frozen=True)
class Specialists:
    """``ids`` (by descending influence on the selection half), how the size was chosen (``rule``:
    ``"plateau"`` or ``"top_k"``), the sequence ids of both halves, and the selection-half influence
    ``[d_mlp]`` (nats) the ranking used."""

    ids: np.ndarray
    rule: str
    selection_sequences: np.ndarray
    test_sequences: np.ndarray
    influence: np.ndarray

    @property
    def size(self) -> int:
        return int(self.ids.size)

    @property
    def ranked(self) -> np.ndarray:
        """Every neuron ``[d_mlp]`` by descending selection-half influence (non-finite last); ``ids`` are its first
        ``size``."""
        return by_influence(self.influence)

    def describe(self) -> dict[str, Any]:
        """For a record's details."""
        return {"ids": self.ids.tolist(), "size_rule": self.rule, "size": self.size,
                "selection_sequences": int(self.selection_sequences.size),
                "test_sequences": int(self.test_sequences.size)}


def by_influence(influence: np.ndarray) -> np.ndarray:
    """Neuron ids ``[d_mlp]`` by descending ``influence`` ``[d_mlp]`` (nats), non-finite values last, ties in id order."""
    return np.argsort(-np.where(np.isfinite(influence), influence, -np.inf), kind="stable")


def seeded_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ids ``0 … n-1`` into two sorted, non-empty parts: the first round(``fraction`` · n) (at least
    1, at most n − 1) of a permutation drawn from ``seed``, and the rest."""
    if n < 2:
        raise ValueError(f"a split into two non-empty parts needs at least 2 units, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    cut = min(max(1, round(fraction * n)), n - 1)
    return np.sort(order[:cut]), np.sort(order[cut:])


def split_sequences(n_seq: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of sequence ids ``0 … n_seq-1`` into a selection and a test half (``seeded_split``; at least 4
    sequences)."""
    if n_seq < 4:
        raise ValueError(f"splitting sequences into selection and test halves needs at least 4, got {n_seq}")
    return seeded_split(n_seq, fraction, seed)


def top_k_size(d_mlp: int, settings: dict[str, Any]) -> int:
    """The fixed group size: max(``min_specialists``, round(``specialist_fraction`` · d_mlp))."""
    return int(max(settings["min_specialists"], round(settings["specialist_fraction"] * d_mlp)))


def _plateau_supported(source: Evidence, settings: dict[str, Any]) -> bool:
    """Whether C1 supports a plateau on ``source`` (evaluated once per subject and settings). A source
    with ``plateau_rule = False`` (calibration data without null curves) always takes the top-K."""
    from harness.claims.registry import CLAIMS

    if not getattr(source, "plateau_rule", True):
        return False
    record = memoized(source, settings_key("C1", settings), lambda: CLAIMS["C1"].evaluate(source, settings))
    return record.verdict == "supported"


def select_specialists(source: Evidence, settings: dict[str, Any], fixed_size: int | None = None) -> Specialists:
    """The specialists of ``source`` (module docstring); memoized per subject and size rule."""
    def make() -> Specialists:
        a, b = split_sequences(source.n_sequences, settings["selection_fraction"], settings["seed"])
        influence = source.rare_influence().pooled(a)
        d_mlp = influence.size
        size, rule = fixed_size or top_k_size(d_mlp, settings), "top_k"
        if fixed_size is None and _plateau_supported(source, settings):
            plateau = fit_regimes(influence, settings["min_segment_points"]).plateau_size
            if 3 <= plateau <= MAX_PLATEAU_FRACTION * d_mlp:
                size, rule = plateau, "plateau"
        return Specialists(by_influence(influence)[:size], rule, a, b, influence)
    return memoized(source, settings_key(f"specialists:{fixed_size}", settings), make)


def recovery(found: set[int], planted: set[int]) -> dict[str, float]:
    """Precision and recall of the selected specialists ``found`` against the ``planted`` ids."""
    hits = len(found & planted)
    return {"selected": len(found), "planted": len(planted), "recovered": hits,
            "precision": hits / len(found) if found else 0.0, "recall": hits / len(planted) if planted else 0.0}


def planted_recovery(source: Evidence, specialists: Specialists) -> dict[str, float] | None:
    """The recovery of the source's planted neurons by ``specialists``, or None when nothing is planted
    (``planted_neurons`` is optional in the evidence protocol)."""
    planted = getattr(source, "planted_neurons", None)
    ids = planted() if callable(planted) else None
    if ids is None:
        return None
    return recovery({int(i) for i in specialists.ids}, {int(i) for i in ids})
