"""Synthetic influence evidence with known truth, for calibrating C1–C4.

The toy model behind every generator: neuron n of a final MLP has a magnitude m_n (how far its
ablation moves the residual: activation change × write norm), a relevance d_n of its write
*direction* for the target set (rare or common tokens), and per-sequence noise. Its mean influence
over the positions of sequence s is

    I_ns = m_n · d_n · e_ns + ε_ns,     e_ns ~ Gamma(mean 1, shape κ·c_s),  ε_ns ~ N(0, τ² / c_s),

with c_s the sequence's positions (Poisson, as rare targets fall). A null curve writes each
neuron's ablation along another neuron's direction, keeping its own magnitude — exactly what
the direction-permuting null of the real measurement does: I^π_n = m_n · d_π(n) · ē_n + ε̄_n on
the same positions. With ``null_permutation = "row"`` the magnitude's write-norm part moves
too (m_n = a_n · w_n, and w moves with d).

Families (``InfluenceWorld`` parameters):
- iid heavy-tailed magnitudes and directions (lognormal, gamma): every rank curve bends, nothing
  is specialised — C1 must not be supported;
- magnitude correlated with write norm (a_n and w_n lognormal with correlation ρ): the hard null
  of a row permutation, which moves w and so changes the spread of the null curves;
- a planted plateau: ``k`` neurons whose direction relevance lifts them to a flat top ``height``
  (ln nats) above the highest unplanted influence — C1 must be supported;
- common targets get their own directions (a plateau there only when ``common_plateau``) — C2;
- a curved (lognormal) or power-law middle between a flat top and a rapid decay — C3
  (``power_law_middle``: each neuron's magnitude is the three-regime function of a rank drawn iid,
  and the direction relevances get no spread, so the curve is a sample of the planted one); a
  lognormal with a small high component (``mixture_share``) bends like an S, which a quadratic
  misses — a C3 null.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from harness.analysis.regimes import SequenceInfluence


@dataclass(frozen=True)
class InfluenceWorld:
    """Parameters of one synthetic subject's influence (module docstring). Influences are in nats."""

    d_mlp: int = 1024
    n_seq: int = 128
    positions_per_seq: float = 5.5
    magnitude: str = "lognormal"          # "lognormal" | "gamma"
    spread: float = 1.0                   # σ of ln m (lognormal) or 1/shape (gamma)
    write_correlation: float = 0.0        # ρ between ln a and ln w (magnitude = a · w)
    direction_spread: float = 0.5         # σ of ln d
    direction_correlation: float = 0.0    # ρ between ln d and ln m: relevance that follows magnitude smoothly
    noise_shape: float = 2.0              # κ: per-position Gamma shape of e
    additive_noise: float = 0.02          # τ, relative to the median neuron's influence
    plateau_k: int = 0                    # planted plateau size (neurons)
    plateau_height: float = 0.0           # ln of the plateau's level over the top unplanted influence
    plateau_strength: float = 1.0         # 0: the planted neurons keep ordinary directions; 1: the full plateau
    plateau_slope: float = 0.0            # > 0: the planted top follows (rank within it)^−slope instead of
                                          # staying flat — a separate group that is no plateau (C1 false)
    common_plateau_k: int = 0             # a plateau in the common-target directions too (C2 false)
    common_plateau_height: float = 0.0
    power_law_middle: float = 0.0         # > 0: magnitudes follow rank^−β (C3 true), β = this
    power_law_ranks: str = "iid"          # "iid": ranks drawn uniformly (a sample); "grid": exactly 1…n
    mixture_share: float = 0.0            # share of neurons whose ln m is N(mixture_location, 0.5²) instead
    mixture_location: float = 3.0
    scale: float = 1e-3                   # median influence (nats)


def _magnitudes(world: InfluenceWorld, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(a, w): activation-change and write-norm parts of every neuron's magnitude."""
    n = world.d_mlp
    if world.power_law_middle > 0:
        # the papers' three regimes: a flat top of 1.7% of the neurons, a power law of exponent β down
        # to rank 0.3 n, then a rapid (Gaussian in rank) decay
        # in rank. Each neuron's population rank is drawn iid uniform on [1, n + 1), so the layer is a
        # sample of that distribution with the sampling noise of a real layer (a fixed rank grid has
        # none, and made the planted power law 3× easier to recognise than an iid one);
        # ``power_law_ranks = "grid"``: the ranks 1…n exactly, with 5% jitter — a layer whose curve is the
        # population's own, as easy as a power law gets
        if world.power_law_ranks == "grid":
            ranks = rng.permutation(np.arange(1, n + 1, dtype=float)) * np.exp(0.05 * rng.standard_normal(n))
        else:
            ranks = 1.0 + n * rng.random(n)
        top, knee = max(2, round(0.017 * n)), 0.3 * n
        m = np.maximum(ranks, top) ** -world.power_law_middle
        m *= np.exp(-np.maximum(ranks - knee, 0.0) ** 2 / (0.05 * n) ** 2)
        return m, np.ones(n)
    if world.magnitude == "gamma":
        shape = 1.0 / world.spread
        return rng.gamma(shape, 1.0 / shape, n), rng.gamma(4.0, 0.25, n)
    rho = world.write_correlation
    z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
    half = world.spread / np.sqrt(2.0)
    a, w = np.exp(half * z1), np.exp(half * (rho * z1 + np.sqrt(1 - rho**2) * z2))
    high = rng.random(n) < world.mixture_share
    a[high] = np.exp(world.mixture_location + 0.5 * rng.standard_normal(high.sum())) / w[high]
    return a, w


def _directions(n: int, spread: float, k: int, height: float, strength: float, base: np.ndarray,
                rng: np.random.Generator, correlation: float = 0.0,
                slope: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Direction relevances, with ``k`` planted neurons (returned) moved, by ``strength`` in [0, 1]
    (geometrically), from their own random relevance to a flat top ``height`` (ln) above the highest
    unplanted product ``base · d``."""
    z = (np.log(base) - np.log(base).mean()) / np.log(base).std()
    d = np.exp(spread * (correlation * z + np.sqrt(1 - correlation**2) * rng.standard_normal(n)))
    planted = rng.choice(n, size=k, replace=False) if k else np.zeros(0, dtype=int)
    jitter = 0.02 * rng.standard_normal(k)
    if k:
        others = np.setdiff1d(np.arange(n), planted)
        top = np.max(base[others] * d[others])
        plateau = top * np.exp(height + jitter) / base[planted]
        if slope > 0:  # the top group falls off as (rank / k)^−slope from height above the rest
            plateau *= (rng.permutation(np.arange(1, k + 1)) / k) ** -slope
        d[planted] = d[planted] ** (1 - strength) * plateau**strength
    return d, planted


@dataclass
class SyntheticInfluence:
    """Evidence for C1–C4 drawn from an ``InfluenceWorld``: ``rare_influence``, ``common_influence``,
    ``null_curves`` and ``step0`` as a real ``Study`` has them (``harness.claims.evidence``)."""

    world: InfluenceWorld
    seed: int
    label: str = "synthetic"
    step: int | None = None
    memo: dict[str, Any] = field(default_factory=dict)
    noise_state: dict[str, np.ndarray] | None = None   # per-sequence noise shared along a trajectory

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        w = self.world
        self.a, self.w = _magnitudes(w, rng)
        base = self.a * self.w
        spread = 0.0 if w.power_law_middle > 0 else w.direction_spread
        self.d, self.planted = _directions(w.d_mlp, spread, w.plateau_k, w.plateau_height,
                                           w.plateau_strength, base, rng, w.direction_correlation, w.plateau_slope)
        self.d_common, _ = _directions(w.d_mlp, w.direction_spread, w.common_plateau_k, w.common_plateau_height,
                                       1.0, base, rng)
        self.counts = rng.poisson(w.positions_per_seq, size=w.n_seq).astype(float)
        self.counts[self.counts == 0] = 1.0
        scale = w.scale / np.median(base * self.d)
        self._unit = scale
        state = self.noise_state or {}
        self._noise = {t: state.get(t, self._draw_noise(rng)) for t in ("rare", "common")}

    def _draw_noise(self, rng: np.random.Generator) -> np.ndarray:
        """Per-sequence noise: ``[2, n_seq, d_mlp]`` (multiplicative e − 1 standardised, additive ε standardised)."""
        return rng.standard_normal((2, self.world.n_seq, self.world.d_mlp))

    def _noise_factors(self, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Multiplicative factors e and additive terms ε ``[n_seq, d_mlp]`` of per-sequence ``noise``."""
        w = self.world
        c = self.counts[:, None]
        # Gamma(κc, κc) has mean 1 and SD 1/√(κc): a normal approximation keeps the noise shareable.
        e = np.maximum(1.0 + noise[0] / np.sqrt(w.noise_shape * c), 0.0)
        return e, noise[1] * w.additive_noise * w.scale / np.sqrt(c)

    def _means(self, direction: np.ndarray, magnitude: np.ndarray, noise: np.ndarray) -> np.ndarray:
        e, eps = self._noise_factors(noise)
        return self._unit * magnitude[None] * direction[None] * e + eps

    @property
    def n_sequences(self) -> int:
        return self.world.n_seq

    def sample_sizes(self) -> dict[str, int]:
        return {"sequences": self.world.n_seq, "rare_positions": int(self.counts.sum()), "neurons": self.world.d_mlp}

    def rare_influence(self) -> SequenceInfluence:
        return SequenceInfluence(self._means(self.d, self.a * self.w, self._noise["rare"]), self.counts)

    def common_influence(self) -> list[SequenceInfluence]:
        return [SequenceInfluence(self._means(self.d_common, self.a * self.w, self._noise["common"]), self.counts)]

    def null_curves(self, targets: str, repeat: int, n: int, seed: int, *, permutation: str, kernel: str,
                    exact_checks: int, tolerance: float) -> "NullDraws":
        rng = np.random.default_rng(seed)
        direction = self.d if targets == "rare" else self.d_common
        perms = np.stack([rng.permutation(self.world.d_mlp) for _ in range(n)])      # [n, d_mlp]
        magnitude = self.a * (self.w[perms] if permutation == "row" else self.w[None])
        # the noise stays with the neuron, so every curve pools the same factors (position-weighted means)
        e, eps = (self.counts @ f / self.counts.sum() for f in self._noise_factors(self._noise[targets]))
        return NullDraws(self._unit * magnitude * direction[perms] * e + eps, permutation)

    def step0(self) -> None:
        return None

    def with_noise(self, noise_state: dict[str, np.ndarray], step: int, world: InfluenceWorld | None = None,
                   label: str | None = None) -> "SyntheticInfluence":
        """The same subject (same seed) with other per-sequence noise and optionally another world: one
        checkpoint of a trajectory."""
        return SyntheticInfluence(world or self.world, self.seed, label or f"{self.label}@step{step}", step,
                                  noise_state=noise_state)


@dataclass(frozen=True)
class NullDraws:
    """Null curves of a synthetic subject (what ``Study.null_curves`` returns)."""

    curves: np.ndarray
    permutation: str

    def details(self) -> dict[str, Any]:
        return {"permutation": self.permutation, "kernel": "synthetic", "approx_error_nats": None,
                "n": int(self.curves.shape[0])}


def influence_subject(world: InfluenceWorld, seed: int) -> SyntheticInfluence:
    """One synthetic subject."""
    return SyntheticInfluence(world, seed, label=f"synthetic-{seed}")


def noise_path(world: InfluenceWorld, n_checkpoints: int, process: str, phi: float, rng: np.random.Generator
               ) -> list[dict[str, np.ndarray]]:
    """Per-sequence noise of every checkpoint of a trajectory: AR(1) with coefficient ``phi`` (stationary,
    unit variance) or a random walk (``process="random_walk"``, steps of variance 1 − φ², starting at a
    unit-variance draw), for the rare and common target sets alike."""
    shape = (2, world.n_seq, world.d_mlp)
    states = []
    current = {t: rng.standard_normal(shape) for t in ("rare", "common")}
    for _ in range(n_checkpoints):
        states.append({t: v.copy() for t, v in current.items()})
        for t in current:
            innovation = rng.standard_normal(shape) * np.sqrt(1 - phi**2)
            current[t] = (phi * current[t] if process == "ar1" else current[t]) + innovation
    return states


def trajectory_worlds(world: InfluenceWorld, n_checkpoints: int) -> list[InfluenceWorld]:
    """Worlds along training: the planted plateau's strength grows linearly in checkpoint index from 0
    (ordinary neurons) to 1 (no plateau at all when ``world.plateau_k`` is 0)."""
    return [replace(world, plateau_strength=i / max(n_checkpoints - 1, 1)) for i in range(n_checkpoints)]
