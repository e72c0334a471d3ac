"""Correlations of a neuron group beyond the layer's common factors, by the triad (instrumental-variable) estimate.

A group of neurons that all load strongly on a factor the whole layer shares co-activates for that
reason alone: a pair correlates by the product of its loadings. Selection by influence favours exactly
those neurons (influence goes with variance), and when the layer's loadings lie far below saturation
the product grows convexly beyond every matched control group (C6 v4 supported 67–83% of the time on
such a layer with nothing planted). What a claim of *structured* co-activation means is coordination
beyond the layer's common factors, and this module measures it: for each pair of a group the
correlation the layer's factors imply is subtracted from the observed one.

The implied correlation is estimated without attenuation. A factor seen through noisy neurons is
only partly captured by any regression on them (a neuron's correlation with a fitted factor score
is its loading times the score's reliability), and the specialists' large loadings would leave them
with a residual correlation their controls do not have. The triad identity of factor analysis
removes the reliability: with instruments Y_p and Y_q built from two disjoint sets of neurons (their
noise independent), Cov(x_i, x_j) = C(x_i, Y_p) C(Y_q, Y_p)⁻¹ C(Y_q, x_j) for any i outside p and j
outside q, however weakly Y_p and Y_q reflect the factors, as long as they span them.

- Parts: the pool (the usable non-specialists) is split into ``PARTS`` seeded parts; a pair's implied
  correlation averages the ordered pairs of distinct parts (p, q) with i outside p and j outside q, so
  no neuron's own noise enters its instruments.
- Shared instruments: part p's are the directions of its neurons most correlated with the rest of the
  pool — left singular vectors of the cross-correlation matrix of part p with the other parts whose
  singular value exceeds ``EDGE_MARGIN`` times the largest one between independent columns,
  (√m_p + √m_rest)/√n_fit, at most ``max_factors``. Cross-correlations between disjoint neurons carry no
  noise bulk, so a factor too weak for the Marchenko–Pastur edge of a part's own spectrum is still found.
  At the edge itself 2–4 noise directions per part passed on the calibration's layers (12 for 9
  factors); every noise instrument adds a near-zero canonical correlation to the bridge below, so the
  margin (1.15) keeps them out (9 of 9 there).
- Targeted instrument: a part's factors may not include the one a group shares when the rest of the
  layer carries it weakly — the hard null's top loaders hold most of it. So every group adds, per part,
  the part's neurons weighted by their correlation with the group's mean z-score, which picks out the
  direction the group loads on however weak it is in the pool.
- Positions: the weights of both kinds are fitted on other positions (``x_fit``: C6 uses the selection
  half of the sequences) than the correlations are measured on (``x_use``), so the instruments are
  fixed functions of data independent of the test: the triad identity holds for them exactly, and a
  bootstrap over the test positions that recomputes every correlation (C6's sampling gap) carries all
  of the estimate's noise.
- Bridges: C(Y_q, Y_p)⁻¹ is taken in whitened coordinates over the canonical directions whose
  correlation exceeds ``BRIDGE_SE`` standard errors (1/√n_obs). This trades bias for variance: a
  direction left out takes its share of every pair's implied correlation with it, and the weakest
  directions are the ones the specialists load on most (at 2 SEs the implied correlation of the
  specialists of a ln λ ≈ −3 layer was 25–35% short at 354 positions, unbiased at 3,000); a direction
  kept near zero divides by noise. At 0.5 SE the estimate is close to unbiased and noisier, and the
  bootstrap carries that noise; an implied correlation beyond ±1, which only such a division makes, is
  clipped to ±1 (unclipped, 1 of 1,700 calibration draws and one quick-calibration draw failed on a
  split-half participation ratio whose cross product came out negative).

Measured through C6 on the calibration's unsaturated layers (16 top-loading specialists of 512, 354
test positions, 40 draws; raw-correlation C6 v4: 67.5% and 82.5% supported): ln λ ≈ −2 5%, ln λ ≈ −3
with tight selection 10% (calibration table for 200 draws). Implied by a regression on each part's
leading principal components instead, the specialists' correlation came out 20–25% short.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.analysis.factors import PARTS, pool_parts  # a pool pair leaves an ordered pair of parts holding neither
from harness.analysis.stats import zscore_columns

BRIDGE_SE = 0.5    # a canonical direction enters the bridge when its correlation exceeds this many SEs of zero
EDGE_MARGIN = 1.15  # shared instruments: cross singular values above this multiple of the independent-column edge
_CHUNK = 256       # groups per batch in LayerInstruments.excess


@dataclass(frozen=True)
class Bridges:
    """What turns the neurons' correlations with the instruments into implied correlations, for one set of
    positions or for a batch of resamples (leading dims ``[...]``): ``whiten[p]`` ``[..., K_p, K_p]`` part p's
    whitening, ``links[(p, q)]`` ``[..., K_p, K_q]`` the thresholded inverse of the whitened C(Y_q, Y_p)."""

    sizes: tuple[int, ...]
    whiten: tuple[np.ndarray, ...]
    links: dict[tuple[int, int], np.ndarray]


def bridges(instrument_corr: np.ndarray, sizes: tuple[int, ...], n_obs: int) -> Bridges:
    """``Bridges`` from the instruments' correlation matrix ``[..., ΣK, ΣK]`` (parts in order, ``sizes`` each)
    over ``n_obs`` positions (module docstring)."""
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    block = [slice(bounds[p], bounds[p + 1]) for p in range(len(sizes))]
    whiten = tuple(_whitening(instrument_corr[..., b, b]) for b in block)
    links: dict[tuple[int, int], np.ndarray] = {}
    for p in range(len(sizes)):
        for q in range(p + 1, len(sizes)):
            if sizes[p] and sizes[q]:      # the (q, p) link is the transpose: pinv(Aᵀ) = pinv(A)ᵀ
                links[p, q] = _bridge(np.swapaxes(whiten[q], -1, -2) @ instrument_corr[..., block[q], block[p]]
                                      @ whiten[p], n_obs)
                links[q, p] = np.swapaxes(links[p, q], -1, -2)
    return Bridges(tuple(sizes), whiten, links)


def excess_correlations(corr: np.ndarray, member_instruments: np.ndarray, member_part: np.ndarray,
                        link: Bridges) -> np.ndarray:
    """Groups' correlations beyond the layer's factors ``[..., size, size]`` (diagonal 1): their correlation
    matrices ``corr`` ``[..., size, size]`` less the implied ones, from the neurons' correlations with the
    instruments ``member_instruments`` ``[..., size, ΣK]``, their parts ``member_part`` ``[..., size]`` and the
    ``link`` (leading dims broadcast; module docstring)."""
    size = corr.shape[-1]
    bounds = np.concatenate([[0], np.cumsum(link.sizes)]).astype(int)
    member = [member_instruments[..., bounds[p]:bounds[p + 1]] @ w for p, w in enumerate(link.whiten)]
    shape = np.broadcast_shapes(corr.shape, member_part.shape + (size,))
    total, count = np.zeros(shape), np.zeros(shape)
    for (p, q), bridge in link.links.items():
        valid = ((member_part != p)[..., :, None] & (member_part != q)[..., None, :]).astype(float)
        total += valid * (member[p] @ bridge @ np.swapaxes(member[q], -1, -2))
        count += valid
    out = corr - np.clip(total / np.maximum(count, 1.0), -1.0, 1.0)   # an implied |r| > 1 is a blow-up, not a factor
    idx = np.arange(size)
    out[..., idx, idx] = 1.0
    return out


@dataclass(frozen=True)
class LayerInstruments:
    """The layer's instruments on one set of positions (``use``), weights fitted on another (``fit``).

    ``part`` ``[n_neurons]``: each neuron's part (−1: not in the pool, e.g. the specialists); ``fit`` and
    ``use`` ``[n_fit | n_obs, n_neurons]``: the z-scored activations of the two position sets, and
    ``fit_parts[p]``, ``use_parts[p]`` their columns of part p; ``shared[p]`` ``[n_obs, K_p]``: part p's layer
    instruments, centred and whitened over ``use``; ``loadings[p]`` ``[n_neurons, K_p]``: every neuron's
    correlations with them; ``shared_cross[p][q]`` ``[K_p, K_q]``: the shared instruments' correlations. A group
    adds one targeted instrument per part (``targeted``), so part p's block holds K_p + 1 columns.
    """

    part: np.ndarray
    fit: np.ndarray
    use: np.ndarray
    fit_parts: tuple[np.ndarray, ...]
    use_parts: tuple[np.ndarray, ...]
    shared: tuple[np.ndarray, ...]
    loadings: tuple[np.ndarray, ...]
    shared_cross: tuple[tuple[np.ndarray, ...], ...]

    @property
    def n_obs(self) -> int:
        return int(self.use.shape[0])

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(y.shape[1]) + 1 for y in self.shared)

    def targeted(self, groups: np.ndarray) -> np.ndarray:
        """Each group's targeted instrument per part on ``use`` ``[n_groups, n_obs, PARTS]`` (centred, unit
        variance): the part's neurons weighted by their correlation, on ``fit``, with the group's mean z-score."""
        groups = np.atleast_2d(np.asarray(groups, dtype=np.int64))
        centre = self.fit[:, groups].mean(-1)                                     # [n_fit, n_groups]
        y = np.stack([use @ (fit.T @ centre) for fit, use in zip(self.fit_parts, self.use_parts)],
                     axis=-1)                                                     # [n_obs, n_groups, PARTS]
        return np.moveaxis(zscore_columns(y.reshape(self.n_obs, -1)).reshape(y.shape), 0, 1)

    def columns(self, group: np.ndarray) -> np.ndarray:
        """One group's instruments ``[n_obs, ΣK + PARTS]``, part by part (shared, then targeted)."""
        targeted = self.targeted(group[None])[0]
        return np.hstack([np.column_stack([y, targeted[:, p]]) for p, y in enumerate(self.shared)])

    def excess(self, corr: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """``excess_correlations`` ``[n_groups, size, size]`` of groups ``[n_groups, size]`` whose correlation
        matrices on these positions are ``corr`` ``[n_groups, size, size]``."""
        groups = np.atleast_2d(np.asarray(groups, dtype=np.int64))
        out = np.empty(corr.shape)
        for start in range(0, groups.shape[0], _CHUNK):
            g = groups[start:start + _CHUNK]
            targeted = self.targeted(g)                                           # [chunk, n_obs, PARTS]
            member_t = np.einsum("tgi,gtp->gip", self.use[:, g], targeted) / self.n_obs
            member = np.concatenate([np.concatenate([b[g], member_t[..., p:p + 1]], axis=-1)
                                     for p, b in enumerate(self.loadings)], axis=-1)
            blocks = [[self._block(p, q, targeted) for q in range(len(self.shared))] for p in range(len(self.shared))]
            instrument = np.concatenate([np.concatenate(row, axis=-1) for row in blocks], axis=-2)
            out[start:start + _CHUNK] = excess_correlations(corr[start:start + _CHUNK], member, self.part[g],
                                                            bridges(instrument, self.sizes, self.n_obs))
        return out

    def _block(self, p: int, q: int, targeted: np.ndarray) -> np.ndarray:
        """The correlations ``[n_groups, K_p + 1, K_q + 1]`` of part p's instruments with part q's, for groups
        whose targeted instruments are ``targeted`` ``[n_groups, n_obs, PARTS]``."""
        block = np.empty((targeted.shape[0], self.sizes[p], self.sizes[q]))
        block[:, :-1, :-1] = self.shared_cross[p][q]
        block[:, :-1, -1] = np.einsum("tk,gt->gk", self.shared[p], targeted[..., q]) / self.n_obs
        block[:, -1, :-1] = np.einsum("tk,gt->gk", self.shared[q], targeted[..., p]) / self.n_obs
        block[:, -1, -1] = np.einsum("gt,gt->g", targeted[..., p], targeted[..., q]) / self.n_obs
        return block


def layer_instruments(x_fit: np.ndarray, x_use: np.ndarray, pool: np.ndarray, max_factors: int, seed: int
                      ) -> LayerInstruments:
    """Instruments of the ``pool``'s ``PARTS`` seeded parts, weights fitted on ``x_fit`` ``[n_fit, n_neurons]`` and
    scores and correlations measured on ``x_use`` ``[n_obs, n_neurons]`` (module docstring)."""
    for x in (x_fit, x_use):
        if np.ndim(x) != 2 or not np.all(np.isfinite(x)):
            raise ValueError(f"instruments need finite activations [n_positions, n_neurons], got shape {np.shape(x)}")
    fit, use = zscore_columns(x_fit), zscore_columns(x_use)
    pool = np.unique(np.asarray(pool, dtype=np.int64))
    if fit.shape[1] != use.shape[1] or min(fit.shape[0], use.shape[0]) < 3:
        raise ValueError(f"instruments need two position sets of the same neurons, ≥ 3 positions each; got "
                         f"{fit.shape} and {use.shape}")
    if max_factors < 0 or pool.size < 2 * PARTS:
        raise ValueError(f"instruments need max_factors ≥ 0 and a pool of at least {2 * PARTS} neurons, got "
                         f"{max_factors} and {pool.size}")
    part = pool_parts(use.shape[1], pool, seed)
    shared = []
    for p in range(PARTS):
        own, rest = fit[:, part == p], fit[:, (part >= 0) & (part != p)]
        u, s, _ = np.linalg.svd(own.T @ rest / fit.shape[0], full_matrices=False)
        edge = EDGE_MARGIN * (np.sqrt(own.shape[1]) + np.sqrt(rest.shape[1])) / np.sqrt(fit.shape[0])
        shared.append(_whitened(use[:, part == p] @ u[:, s > edge][:, :max_factors]))
    return LayerInstruments(part, fit, use, tuple(fit[:, part == p] for p in range(PARTS)),
                            tuple(use[:, part == p] for p in range(PARTS)), tuple(shared),
                            tuple(use.T @ y / use.shape[0] for y in shared),
                            tuple(tuple(y.T @ z / use.shape[0] for z in shared) for y in shared))


def outlying_partners(x_fit: np.ndarray, x_use: np.ndarray, group: np.ndarray, candidates: np.ndarray, pool: np.ndarray,
                      max_factors: int, seed: int, z_limit: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``candidates`` that share a ``group``'s correlation beyond the layer's factors: each one's mean excess
    correlation with the group's neurons (instruments from ``pool``, weights fitted on ``x_fit``, correlations on
    ``x_use``, both ``[n_positions, n_neurons]``), in robust SDs (median and MAD) of the same statistic over the
    ``pool``'s neurons. Returns the candidates above ``z_limit`` and every candidate's z ``[n_candidates]``.

    Why: a neuron that shares the group's own factor but was left out of the group (a top-K cut misses members
    of a noisily selected group) is, in the pool, an instrument for that factor, and the triad estimate then
    counts the group's coordination as the layer's. A neuron that only loads on the layer's factors has an excess
    of ≈ 0 with the group, as every pool neuron has."""
    group, candidates = (np.asarray(a, dtype=np.int64) for a in (group, candidates))
    inst = layer_instruments(x_fit, x_use, pool, max_factors, seed)
    others = np.concatenate([candidates, np.unique(np.asarray(pool, dtype=np.int64))])
    size, z = group.size, inst.use
    corr = np.empty((others.size, size + 1, size + 1))
    corr[:, :size, :size] = z[:, group].T @ z[:, group] / inst.n_obs
    corr[:, size, :size] = corr[:, :size, size] = z[:, others].T @ z[:, group] / inst.n_obs
    idx = np.arange(size + 1)
    corr[:, idx, idx] = 1.0
    groups = np.column_stack([np.repeat(group[None], others.size, axis=0), others])
    score = inst.excess(np.clip(corr, -1.0, 1.0), groups)[:, size, :size].mean(-1)
    reference = score[candidates.size:]
    centre = np.median(reference)
    spread = 1.4826 * np.median(np.abs(reference - centre)) or np.std(reference)
    zs = (score[:candidates.size] - centre) / spread if spread > 0 else np.zeros(candidates.size)
    return candidates[zs > z_limit], zs


def _bridge(cross: np.ndarray, n_obs: int) -> np.ndarray:
    """Pseudo-inverse ``[..., K_p, K_q]`` of whitened cross-correlations ``cross`` ``[..., K_q, K_p]`` over the
    canonical directions whose correlation exceeds ``BRIDGE_SE`` / √n_obs: with cross = U S Vᵀ it is
    V S⁻¹ Uᵀ = V S⁻² Vᵀ crossᵀ, V and S² from the eigendecomposition of crossᵀ cross (≈ 1.7× faster than a
    batched SVD of these small matrices; the threshold, S² > 0.25 / n_obs, lies far above float64 rounding)."""
    gram = np.swapaxes(cross, -1, -2) @ cross                                   # [..., K_p, K_p]
    squared, vec = np.linalg.eigh(gram)
    inverse = np.where(squared > (BRIDGE_SE / np.sqrt(n_obs)) ** 2, 1.0 / np.where(squared > 0, squared, 1.0), 0.0)
    return (vec * inverse[..., None, :]) @ np.swapaxes(vec, -1, -2) @ np.swapaxes(cross, -1, -2)


def _whitening(gram: np.ndarray) -> np.ndarray:
    """A whitening ``W`` ``[..., K, K]`` of Gram matrices ``[..., K, K]`` (Wᵀ G W = I): L⁻ᵀ of the Cholesky factor
    G = L Lᵀ, or the symmetric inverse square root when a matrix of the batch is not positive definite. What
    ``bridges`` and ``excess_correlations`` compute is the same for every whitening (another is W R with R
    orthogonal, which rotates the canonical directions and leaves their correlations); the Cholesky route is
    ≈ 5× faster than an eigendecomposition for these small matrices."""
    try:
        return np.swapaxes(np.linalg.inv(np.linalg.cholesky(gram)), -1, -2)
    except np.linalg.LinAlgError:
        return _inverse_sqrt(gram)


def _inverse_sqrt(gram: np.ndarray) -> np.ndarray:
    """Symmetric inverse square root of Gram matrices ``[..., K, K]`` (eigenvalues floored at 1e-12)."""
    eig, vec = np.linalg.eigh(gram)
    return (vec / np.sqrt(np.maximum(eig, 1e-12))[..., None, :]) @ np.swapaxes(vec, -1, -2)


def _whitened(scores: np.ndarray) -> np.ndarray:
    """Columns ``[n_obs, K]`` centred and whitened so that their covariance over the positions is the identity."""
    centred = scores - scores.mean(0)
    return centred @ _inverse_sqrt(centred.T @ centred / centred.shape[0]) if centred.shape[1] else centred

