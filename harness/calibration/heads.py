"""Synthetic head-ablation evidence with known truth, for calibrating C7.

A ``HeadWorld`` has ``n_layers`` × ``n_heads`` attention heads feeding the final MLP. Ablating head h
changes the specialists' activations by ``head_effect_h`` % and the rare-target loss by a tenth of
that, per sequence with multiplicative noise of mean 1 (so the effects are the population means; until
2026-12-04 the noise had mean e^(noise²/2), 13% above them at noise 0.5, and the "12%" routing heads had
mean 13.6%, as an independent review found); ablating a whole layer changes them by ``layer_ratio`` ×
its largest head's effect (layers do more than their heads alone). Common-target effects are the
rare ones times lognormal noise of SD ``common_noise`` (the heads serve both), except for a routing
head, which acts on rare targets only (``routing_common``: on common targets as much).

Families: distributed processing (small heads ≈ 1–4%, layer / largest head = ``layer_ratio``, the
paper's ≈ 5: C7 true), and a routing head (one head at ``routing_effect`` % above the margin: C7 false);
with ``routing_noise`` the routing head's per-sequence noise is lognormal with that SD instead of ``noise``,
with ``routing_pareto`` Pareto with that tail index (its mean kept either way), so that a few sequences
carry its effect and most samples show it small; with ``routing_tail_share`` too, only that share of the
sequences follows the Pareto tail, over a lognormal body (``_routing_factor``). With ``noise_kind``
"exponential" every head's and layer's per-sequence factor is exponential with mean 1 instead of lognormal
(a tail that a Pareto fit over the top third reads as index ≈ 1.7: what C7's tail-aware bound pays for).
With ``routing_clean_power`` β > 0 each sequence's rare-target clean Σ|a| (and so every Σ|Δa| on it) is
multiplied by the routing head's per-sequence effect to the power β: sequences the head moves more carry more,
so the head's effect Σ|Δa| / Σ|a| is its factors' Σ|a|-weighted mean, E[f^(1+β)] / E[f^β] × ``routing_effect``
(1.5 × for a Pareto factor of index 2 and β = ½), not ``routing_effect`` — what C7's assumption ``clean_mass``
excludes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import norm

from harness.analysis.regimes import SequenceInfluence


@dataclass(frozen=True)
class HeadWorld:
    """Parameters of one synthetic subject's attention ablations (module docstring); effects in %."""

    n_seq: int = 128
    n_layers: int = 3
    n_heads: int = 8
    d_mlp: int = 512
    head_low: float = 1.0
    head_high: float = 4.0
    layer_ratio: float = 5.0
    routing_effect: float = 0.0
    noise: float = 0.5
    common_noise: float = 0.3
    routing_noise: float | None = None
    routing_pareto: float | None = None
    routing_tail_share: float | None = None
    routing_tail_mean: float = 0.4
    routing_common: bool = False
    noise_kind: str = "lognormal"
    routing_clean_power: float = 0.0
    routing_splice: bool = False

    def __post_init__(self) -> None:
        if self.noise_kind not in ("lognormal", "exponential"):
            raise ValueError(f"noise_kind must be 'lognormal' or 'exponential', got {self.noise_kind!r}")
        if self.routing_tail_share is not None and self.routing_pareto is None:
            raise ValueError("routing_tail_share needs routing_pareto (the tail's index)")
        if self.routing_splice and self.routing_tail_share is None:
            raise ValueError("routing_splice needs routing_tail_share (where the Pareto tail takes over)")


@dataclass
class SyntheticHeads:
    """Evidence for C7: ``head_ablation``, ``routing_layers`` and the influence that selects specialists."""

    world: HeadWorld
    seed: int
    label: str = "synthetic"
    step: int | None = None
    memo: dict[str, Any] = field(default_factory=dict)
    plateau_rule: bool = False

    def __post_init__(self) -> None:
        w = self.world
        rng = np.random.default_rng(self.seed)
        self.counts = np.maximum(rng.poisson(5.5, size=w.n_seq), 1)
        heads = rng.uniform(w.head_low, w.head_high, size=(w.n_layers, w.n_heads))
        common = heads * np.exp(w.common_noise * rng.standard_normal(heads.shape))
        if w.routing_effect > 0:
            heads[-1, 0] = w.routing_effect
            common[-1, 0] = w.routing_effect if w.routing_common else w.head_low
        self.effects = {"rare": heads, "common": common}
        self._rng = rng
        influence = np.exp(rng.standard_normal((w.n_seq, w.d_mlp))) * 1e-3
        self._influence = SequenceInfluence(influence, self.counts.astype(float))

    @property
    def n_sequences(self) -> int:
        return self.world.n_seq

    def sample_sizes(self) -> dict[str, int]:
        return {"sequences": self.world.n_seq, "rare_positions": int(self.counts.sum()),
                "heads": self.world.n_layers * self.world.n_heads}

    def rare_influence(self) -> SequenceInfluence:
        return self._influence

    def routing_layers(self, count: int) -> list[int]:
        return list(range(self.world.n_layers))[-count:]

    def head_ablation(self, specialists: np.ndarray, layers: list[int], ablation: str) -> dict[str, np.ndarray]:
        """Per-sequence sums with the keys ``harness.analysis.routing`` reads."""
        w, rng = self.world, np.random.default_rng(self.seed + 1)
        out: dict[str, np.ndarray] = {"layers": np.asarray(layers, dtype=np.int64)}
        routing = w.routing_effect > 0 and (w.routing_noise is not None or w.routing_pareto is not None)
        for g in ("rare", "common"):
            heads = self.effects[g][-len(layers):]
            layer = w.layer_ratio * self.effects["rare"][-len(layers):].max(axis=1) * heads.sum(1) / \
                self.effects["rare"][-len(layers):].sum(1)
            clean_act = self.counts * 10.0 * np.exp(0.3 * rng.standard_normal(w.n_seq))
            clean_ce = self.counts * 4.0 * np.exp(0.3 * rng.standard_normal(w.n_seq))

            def noisy(pct: np.ndarray, routing: bool = False) -> np.ndarray:
                z = rng.standard_normal((*pct.shape, w.n_seq))
                factor = np.exp(w.noise * z - w.noise ** 2 / 2) if w.noise_kind == "lognormal" \
                    else -np.log(norm.sf(z))                                   # mean 1: the effects are the means
                if routing:   # the routing head's own spread, its mean kept
                    factor[-1, 0] = _routing_factor(w, z[-1, 0])
                return pct[..., None] / 100.0 * factor

            out[f"{g}_count"] = self.counts.astype(np.int64)
            out[f"clean_{g}_act"], out[f"clean_{g}_ce"] = clean_act, clean_ce
            out[f"head_{g}_dact"] = noisy(heads, routing) * clean_act
            out[f"layer_{g}_dact"] = noisy(layer) * clean_act
            out[f"head_{g}_ce"] = clean_ce * (1 + noisy(heads / 10.0, routing))
            out[f"layer_{g}_ce"] = clean_ce * (1 + noisy(layer / 10.0))
        if routing and w.routing_clean_power:   # the rare sequences' clean Σ|a| grows with the routing head's effect
            grow = (out["head_rare_dact"][-1, 0] / out["clean_rare_act"]) ** w.routing_clean_power
            for key in ("clean_rare_act", "head_rare_dact", "layer_rare_dact"):
                out[key] = out[key] * grow
        return out


def _routing_factor(world: HeadWorld, z: np.ndarray) -> np.ndarray:
    """The routing head's per-sequence factors ``[n_seq]`` of mean 1 from standard normal draws ``z``: lognormal
    with SD ``routing_noise``; Pareto with tail index ``routing_pareto`` (> 1; inverse CDF of Φ(z)); or, with
    ``routing_tail_share`` too, a mixture: the sequences of the top ``routing_tail_share`` of z follow that
    Pareto tail and carry ``routing_tail_mean`` of the mean, the others lognormal with SD ``noise`` (an ordinary
    body above which a heavy tail begins: a tail index fitted on a fixed top share of the sequences mixes both);
    with ``routing_splice``, no mixing: the lognormal (SD ``noise``) below its 1 − share quantile t, the Pareto
    tail from t above it (the local index jumps to ``routing_pareto`` at t), scaled to mean 1 —
    exp(σ²/2) Φ(c − σ) + share · t · a / (a − 1) with c = Φ⁻¹(1 − share), t = e^(σc) — so the tail's part of
    the mean follows from σ, share and a (``routing_tail_mean`` is not read)."""
    if world.routing_pareto is None:
        return np.exp(world.routing_noise * z - world.routing_noise ** 2 / 2)
    a, share = world.routing_pareto, world.routing_tail_share
    if share is None:
        return norm.sf(z) ** (-1.0 / a) * (a - 1.0) / a
    u, above = norm.cdf(z), norm.sf(z)                                     # sf: no cancellation in the far tail
    tail = above < share
    if world.routing_splice:
        sigma, c = world.noise, norm.isf(share)
        t = np.exp(sigma * c)
        raw = np.where(tail, t * np.clip(above / share, 1e-300, 1.0) ** (-1.0 / a), np.exp(sigma * np.minimum(z, c)))
        return raw / (np.exp(sigma ** 2 / 2) * norm.cdf(c - sigma) + share * t * a / (a - 1.0))
    pareto = np.clip(above / share, 1e-300, 1.0) ** (-1.0 / a) * (a - 1.0) / a            # mean 1 within the tail
    body = np.exp(world.noise * norm.ppf(np.clip(u / (1.0 - share), 1e-16, 1 - 1e-16)) - world.noise ** 2 / 2)
    return np.where(tail, world.routing_tail_mean / share * pareto, (1.0 - world.routing_tail_mean) / (1.0 - share) * body)
