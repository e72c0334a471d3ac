"""Synthetic activation and weight evidence with known truth, for calibrating C5, C6, C8 and C9.

One ``GroupWorld`` is a final MLP of ``d_mlp`` neurons observed at the rare-target positions of
``n_seq`` sequences:

    x_t,n = λ_n f_t + γ_n g_{c(n),t} + β_n h_t + σ_n ε_t,n

— a global factor f with lognormal loadings λ (the hard null: neurons that load more vary more,
co-activate more and, with influence ∝ variance, are selected), community factors g (``n_communities``
blocks of neurons, Louvain's communities), and a factor h shared by the planted group only
(``coordination`` β, C6); σ_n keeps every neuron's variance at λ² + γ² + 1 so the planted group is not
told apart by its variance. The planted group falls into communities as any neurons do (dispersed,
C5 true), or a share ``module_fraction`` of it forms one community of its own (1: a cohesive module,
C5 false), or ``n_modules`` communities of their own of (nearly) equal size (4 modules of 4: modular, C5
false, though no single community holds the group).

Influence (what selects specialists) is per sequence ∝ the neuron's activation variance times
lognormal noise (``selection_noise``), plus ``boost`` for the planted group (0: selection without
specialisation). Weight rows (``d_model`` wide) are iid Gaussian with lognormal row norms; with
``spike`` > 0 the planted group's rows (read and write) share one direction with weight ``spike``
(heavy-tailed group spectra, C8). Trajectories (C9) evolve the rows as AR(1) or a random walk over
checkpoints with the spike growing.

Hard nulls of the independent review (each off at 0; drawn from a stream of their own, so the other
families' draws do not change): ``noise_volatility`` multiplies the planted group's noise by one
per-position volatility (lognormal, this ln-SD, mean square 1) — dependence without a shared factor;
``noise_sequence_share`` mixes a per-sequence random effect (independent per neuron) into it;
``row_direction_loading`` c₀ gives every neuron's rows one direction shared by the whole matrix, with
loading min(0.9, c₀ (n / median n)^``row_direction_power``) rising with the write norm n (or, by
``row_direction_driver``, with the read norm or the activation variance); and ``selection_norm_power``
multiplies influence by (n / median n)^power, so the longest rows are selected. Of the second
review: ``global_level`` lowers the global loadings below saturation (ln λ around −2: a pair's
correlation then grows as λ_i λ_j, convexly in every covariate), and ``planted_top_loadings`` gives the
planted group the layer's largest global loadings (a coordinated group whose matched controls all lie
below it). Of the review of C6 v8: ``n_global_factors`` K > 1 adds K − 1 more global factors, each neuron's
log-loading on them correlated ``global_loading_correlation`` with its log-loading on the first (same level
and spread; drawn from the review's stream) — several weak factors that the specialists, chosen by variance,
all load on more than the layer does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from harness.analysis.regimes import SequenceInfluence
from harness.analysis.spectra import MLPWeights


@dataclass(frozen=True)
class GroupWorld:
    """Parameters of one synthetic subject (module docstring)."""

    d_mlp: int = 512
    d_model: int = 256
    n_seq: int = 128
    positions_per_seq: float = 5.5
    global_spread: float = 0.8        # σ of ln λ (loadings on the global factor)
    global_level: float = -1.0        # mean of ln λ (−2, −3: loadings far below saturation, correlations ∝ λ_i λ_j)
    n_communities: int = 8
    community_loading: float = 0.6
    group_size: int = 16              # planted group size (also the default specialist count)
    coordination: float = 0.0         # β of the planted group's own factor
    planted_top_loadings: bool = False  # the planted group holds the layer's largest global loadings
    module_fraction: float = 0.0      # share of the planted group that forms one community of its own (1: a module)
    module_loading: float = 0.9       # loading of that module's own factor (strong enough for |r| ≥ 0.3 edges)
    n_modules: int = 1                # the module_fraction share split into this many modules of their own
    boost: float = 0.0                # influence added to the planted group (0: no specialists)
    selection_noise: float = 1.0      # σ of the lognormal noise of influence around variance
    spike: float = 0.0                # share of a common direction in the planted group's weight rows
    row_norm_spread: float = 0.3
    noise_volatility: float = 0.0     # ln-SD of a per-position volatility shared by the planted group's noise
    noise_sequence_share: float = 0.0  # share of per-sequence random effects in the planted group's noise
    row_direction_loading: float = 0.0  # c₀ of one direction shared by every neuron's rows
    row_direction_power: float = 0.0  # its loading grows as (driver / median)^power
    row_direction_driver: str = "write_norm"  # what drives that loading: write_norm, read_norm or variance
    selection_norm_power: float = 0.0  # influence × (driver's row norm / median)^power (a norm driver only)
    n_global_factors: int = 1         # K global factors (the first as above, K − 1 more from the review's stream)
    global_loading_correlation: float = 0.0  # correlation of a neuron's ln-loadings across the global factors


@dataclass
class SyntheticGroups:
    """Evidence for the group claims drawn from a ``GroupWorld``: ``rare_influence``, ``rare_activations``,
    ``mlp_weights``, ``layer_alphas`` as a real ``Study`` has them. ``plateau_rule = False``: C1 does not
    apply, so specialists are always the top-K."""

    world: GroupWorld
    seed: int
    label: str = "synthetic"
    step: int | None = None
    memo: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, np.ndarray] | None = None
    plateau_rule: bool = False

    def __post_init__(self) -> None:
        w = self.world
        rng = np.random.default_rng(self.seed)
        n = w.d_mlp
        counts = rng.poisson(w.positions_per_seq, size=w.n_seq)
        counts[counts == 0] = 1
        self.seq = np.repeat(np.arange(w.n_seq), counts)
        t = self.seq.size
        self.planted = np.sort(rng.choice(n, size=w.group_size, replace=False))
        community = rng.integers(0, w.n_communities, size=n)
        together = int(round(w.module_fraction * w.group_size))
        community[self.planted[:together]] = w.n_communities + np.arange(together) % w.n_modules   # their own
        lam = _top_to(np.exp(w.global_level + w.global_spread * rng.standard_normal(n)),
                      self.planted if w.planted_top_loadings else None)
        gam = np.full(n, w.community_loading)
        gam[self.planted[:together]] = w.module_loading
        beta = np.zeros(n)
        beta[self.planted] = w.coordination
        sigma = np.sqrt(np.maximum(1.0 - beta**2, 0.05))
        f = rng.standard_normal(t)
        g = rng.standard_normal((t, w.n_communities + w.n_modules))
        h = rng.standard_normal(t)
        review = np.random.default_rng(self.seed + 99991)    # the review's nulls draw from their own stream
        noise = _planted_noise(rng.standard_normal((t, n)), self.seq, self.planted, w, review)
        extra = _more_global_loadings(lam, w, review)                      # [n, K − 1]
        self.x = lam * f[:, None] + gam * g[:, community] + beta * h[:, None] + sigma * noise \
            + review.standard_normal((t, extra.shape[1])) @ extra.T
        variance = lam**2 + (extra**2).sum(1) + gam**2 + beta**2 + sigma**2
        per_seq = variance[None] * np.exp(w.selection_noise * rng.standard_normal((w.n_seq, n)))
        per_seq[:, self.planted] += w.boost * np.median(variance)
        if self.rows is None:
            self.rows = _shared_row_direction(weight_rows(w, self.planted, rng), w, variance, review)
        ratio = _relative(self.rows, variance, w.row_direction_driver)
        power = w.selection_norm_power if w.row_direction_driver != "variance" else 0.0
        self._influence = SequenceInfluence(per_seq * ratio[None] ** power * 1e-3, counts.astype(float))

    @property
    def n_sequences(self) -> int:
        return self.world.n_seq

    def sample_sizes(self) -> dict[str, int]:
        return {"sequences": self.world.n_seq, "rare_positions": int(self.seq.size), "neurons": self.world.d_mlp}

    def rare_influence(self) -> SequenceInfluence:
        return self._influence

    def rare_activations(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x, self.seq

    def planted_neurons(self) -> np.ndarray | None:
        """The planted group's ids when it is boosted into the specialists (``boost`` > 0), else None."""
        return self.planted if self.world.boost > 0 else None

    def mlp_weights(self) -> MLPWeights:
        return MLPWeights(read={"read": self.rows["read"]}, write=self.rows["write"])

    def layer_alphas(self) -> dict[str, dict[str, float]]:
        return {}

    def step0(self) -> None:
        return None


def weight_rows(world: GroupWorld, planted: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Read and write rows ``[d_mlp, d_model]``: iid Gaussian directions with lognormal norms; the planted
    rows share one direction with weight ``world.spike`` (module docstring)."""
    out = {}
    for name in ("read", "write"):
        z = rng.standard_normal((world.d_mlp, world.d_model))
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        if world.spike > 0:
            u = rng.standard_normal(world.d_model)
            u /= np.linalg.norm(u)
            signs = rng.choice([-1.0, 1.0], size=planted.size)
            z[planted] = np.sqrt(1 - world.spike**2) * z[planted] + world.spike * signs[:, None] * u
        out[name] = z * np.exp(world.row_norm_spread * rng.standard_normal(world.d_mlp))[:, None]
    return out


def _planted_noise(noise: np.ndarray, seq: np.ndarray, planted: np.ndarray, world: GroupWorld,
                  rng: np.random.Generator) -> np.ndarray:
    """The noise ``[n_positions, d_mlp]`` with the planted group's columns given a shared per-position
    volatility and per-sequence random effects (module docstring); each column keeps variance ≈ 1."""
    if world.noise_sequence_share > 0:
        effect = rng.standard_normal((int(seq.max()) + 1, planted.size))[seq]
        share = world.noise_sequence_share
        noise[:, planted] = np.sqrt(share) * effect + np.sqrt(1 - share) * noise[:, planted]
    if world.noise_volatility > 0:
        volatility = np.exp(world.noise_volatility * rng.standard_normal(noise.shape[0]))
        noise[:, planted] *= (volatility / np.sqrt(np.mean(volatility**2)))[:, None]
    return noise


def _more_global_loadings(lam: np.ndarray, world: GroupWorld, rng: np.random.Generator) -> np.ndarray:
    """Loadings ``[d_mlp, K − 1]`` of the global factors after the first: ln λ = level + spread·(√ρ z + √(1 − ρ) e)
    with z a neuron's standardised ln-loading on the first factor, e independent normal (module docstring);
    ``[d_mlp, 0]`` (no draws) for K = 1."""
    k, rho = world.n_global_factors - 1, world.global_loading_correlation
    if k == 0:
        return np.zeros((lam.size, 0))
    z = (np.log(lam) - world.global_level) / world.global_spread
    e = rng.standard_normal((lam.size, k))
    return np.exp(world.global_level + world.global_spread * (np.sqrt(rho) * z[:, None] + np.sqrt(1 - rho) * e))


def _top_to(lam: np.ndarray, planted: np.ndarray | None) -> np.ndarray:
    """The loadings ``[d_mlp]`` with the ``planted`` neurons given the largest values (the others keep the rest
    in their order); unchanged when ``planted`` is None."""
    if planted is None:
        return lam
    order = np.argsort(-lam, kind="stable")
    out = np.empty_like(lam)
    out[planted] = lam[order[: planted.size]]
    out[np.setdiff1d(np.arange(lam.size), planted)] = lam[np.sort(order[planted.size:])]
    return out


def _relative(rows: dict[str, np.ndarray], variance: np.ndarray, driver: str) -> np.ndarray:
    """Each neuron's ``driver`` (its write or read row norm, or activation variance) over the layer's median."""
    if driver == "variance":
        value = variance
    elif driver in ("write_norm", "read_norm"):
        value = np.linalg.norm(rows[driver.removesuffix("_norm")], axis=1)
    else:
        raise ValueError(f"row_direction_driver must be write_norm, read_norm or variance, got {driver!r}")
    return value / np.median(value)


def _shared_row_direction(rows: dict[str, np.ndarray], world: GroupWorld, variance: np.ndarray,
                          rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every neuron's rows moved towards one direction per matrix (random sign per neuron), at a loading that
    rises with the world's driver (module docstring); row norms are kept."""
    if world.row_direction_loading <= 0:
        return rows
    ratio = _relative(rows, variance, world.row_direction_driver)
    loading = np.minimum(0.9, world.row_direction_loading * ratio ** world.row_direction_power)
    out = {}
    for name, w in rows.items():
        length = np.linalg.norm(w, axis=1, keepdims=True)
        signs = rng.choice([-1.0, 1.0], size=w.shape[0])
        shared = np.sqrt(1 - loading[:, None] ** 2) * w / length + (loading * signs)[:, None] * _unit(
            rng.standard_normal(w.shape[1]))
        out[name] = length * shared
    return out


def evolve_rows(rows: dict[str, np.ndarray], process: str, phi: float, rng: np.random.Generator
                ) -> dict[str, np.ndarray]:
    """One checkpoint later: every row moves as AR(1) (coefficient ``phi``, variance kept) or a random
    walk (steps of variance 1 − φ² of the row scale), with no drift towards any structure."""
    out = {}
    for name, w in rows.items():
        scale = np.linalg.norm(w, axis=1, keepdims=True) / np.sqrt(w.shape[1])
        step = rng.standard_normal(w.shape) * scale * np.sqrt(1 - phi**2)
        out[name] = (phi * w if process == "ar1" else w) + step
    return out


def group_trajectory(world: GroupWorld, seed: int, n_checkpoints: int, process: str, phi: float,
                     final_spike: float, start_spike: float = 0.0) -> list[SyntheticGroups]:
    """Checkpoints of one synthetic training run for C9: rows evolve (``evolve_rows``) while the planted
    group's shared direction moves linearly from ``start_spike`` to ``final_spike`` (both 0: a drift-free
    null; equal: a separation present from the start that does not grow); activations and influence are
    those of the same subject at every checkpoint (the same sequences, the same planted group), so the
    trend can only come from the weights."""
    rng = np.random.default_rng(seed + 7919)
    first = SyntheticGroups(replace(world, spike=0.0), seed)
    rows = first.rows
    u = {name: _unit(rng.standard_normal(world.d_model)) for name in rows}
    out = []
    for i in range(n_checkpoints):
        strength = start_spike + (final_spike - start_spike) * i / max(n_checkpoints - 1, 1)
        shown = {name: _with_spike(r, first.planted, u[name], strength) for name, r in rows.items()}
        out.append(SyntheticGroups(world, seed, label=f"synthetic-{seed}@step{i}", step=i, rows=shown))
        rows = evolve_rows(rows, process, phi, rng)
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _with_spike(rows: np.ndarray, planted: np.ndarray, u: np.ndarray, strength: float) -> np.ndarray:
    out = rows.copy()
    norms = np.linalg.norm(out[planted], axis=1, keepdims=True)
    out[planted] = np.sqrt(1 - strength**2) * out[planted] / norms + strength * u
    out[planted] *= norms
    return out
