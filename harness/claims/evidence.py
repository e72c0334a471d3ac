"""What a claim procedure reads: the evidence of one subject, and trajectories of checkpoints.

``Evidence`` is a protocol. ``harness.measure.study.Study`` implements it for real models
(cached measurements); the calibration's generators (``harness.calibration``) implement the
parts a claim needs with data whose truth is known. A claim's ``evaluate`` reads nothing else,
so a calibration runs exactly the procedure a real run does.

Every array is numpy; units and shapes are in each method's doc. ``memo`` is a per-subject
dict where procedures keep what several claims share (the C1 record, the specialists).
Optionally a source offers ``planted_neurons() -> ids [k] | None``, the neurons a positive control
planted; group records then report their recovery (``harness.claims.specialists.planted_recovery``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from harness.analysis.regimes import SequenceInfluence
from harness.analysis.spectra import MLPWeights


@runtime_checkable
class Evidence(Protocol):
    """One subject's measurements, as the claim procedures read them."""

    label: str
    step: int | None
    memo: dict[str, Any]

    @property
    def n_sequences(self) -> int:
        """Evaluation sequences (the bootstrap unit)."""

    def sample_sizes(self) -> dict[str, int]:
        """Sequences, positions and other counts for records."""

    def rare_influence(self) -> SequenceInfluence:
        """Per-sequence mean influence at rare-target positions ``[n_seq, d_mlp]`` (nats) and counts."""

    def common_influence(self) -> list[SequenceInfluence]:
        """The same for each common-target subsample matched to the rare count."""

    def null_curves(self, targets: str, repeat: int, n: int, seed: int, *, permutation: str, kernel: str,
                    exact_checks: int, tolerance: float) -> Any:
        """Read→write-permuted null influence curves ``.curves`` ``[n, d_mlp]`` (nats) and ``.details()``."""

    def step0(self) -> "Evidence | None":
        """The family's untrained checkpoint, or None."""

    def rare_activations(self) -> tuple[np.ndarray, np.ndarray]:
        """Final-MLP activations at rare-target positions ``[n_rare, d_mlp]`` and their sequence ids."""

    def mlp_weights(self) -> MLPWeights:
        """The final MLP's read and write rows."""

    def layer_alphas(self) -> dict[str, dict[str, float]]:
        """WeightWatcher's ESD α per final-MLP matrix (context only)."""

    def routing_layers(self, count: int) -> list[int]:
        """The last ``count`` attention layers that feed the final MLP."""

    def head_ablation(self, specialists: np.ndarray, layers: list[int], ablation: str) -> dict[str, np.ndarray]:
        """Per-sequence head and layer ablation sums (``harness.analysis.routing`` documents the keys)."""


@dataclass
class Trajectory:
    """The checkpoints a claim over training reads: one list per training seed, in step order.

    ``label`` names the family (``zoo:neox-4l@*``) or the setup of several seeds;
    ``duplicates`` maps a dropped checkpoint's label to the kept checkpoint it duplicates (same
    weight hash: Pythia's step0 = step1 and stale branches), so they do not enter a trend twice.
    """

    label: str
    seeds: list[list[Evidence]]
    duplicates: dict[str, str] = field(default_factory=dict)

    @property
    def checkpoints(self) -> list[Evidence]:
        """Every checkpoint of every seed."""
        return [e for seed in self.seeds for e in seed]


def settings_key(name: str, settings: dict[str, Any]) -> str:
    """A memo key for a result that depends on ``settings``: the name and every setting value."""
    return name + "|" + repr(sorted(settings.items()))


def memoized(source: Any, key: str, make: Any) -> Any:
    """``source.memo[key]``, computing it with ``make()`` the first time.

    A source that tracks measurement reads (a ``Study``) keeps the reads made by ``make`` with
    the result and replays them on every later hit, so a record's provenance lists the same
    measurements whichever claim computed the result first.
    """
    tracking = getattr(source, "tracking", None)
    if key not in source.memo:
        if tracking is None:
            source.memo[key] = (make(), {})
        else:
            with tracking() as reads:
                value = make()
            source.memo[key] = (value, reads)
    value, reads = source.memo[key]
    if reads:
        source.replay(reads)
    return value
