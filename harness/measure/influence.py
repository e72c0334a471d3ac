"""Neuron influence: the loss change from ablating each final-MLP neuron, exactly and in batch.

Δℓ_n(t) = CE(t | neuron n's activation replaced) − CE(t | clean), in nats, for every
evaluation position t and every neuron n of the final MLP (methods.md §3.2).

Because the layer is the last, ablating neuron n at position t only moves that position's
final residual: r → r + δ·W_out[n] with δ = value − a_n(t). Write the final norm as
N(r) = g ⊙ u/σ(r) + β, with u = r − mean r for a LayerNorm and u = r for an RMSNorm (no
centring, β = 0); c_n is W_out[n], centred likewise. Then

    σ²(t, n)  = (‖u‖² + 2δ⟨u, c_n⟩ + δ²‖c_n‖²)/d_model + ε
    L0 = (g ⊙ u) W_U   [positions, vocab]      M = (g ⊙ c) W_U   [d_mlp, vocab]
    z(t, n)   = (L0[t] + δ M[n]) / σ(t, n) + β W_U + b_U          (ablated logits)

and δ = 0 gives the clean logits z0(t). g is the norm's effective gain: its weight, or
1 + weight for the Gemma-style RMSNorms that store the offset from one
(``UNIT_OFFSET_RMS_NORMS``). No per-neuron matmul remains; the exact cost is
positions × d_mlp × vocab exponentials. The log-sum-exp is taken with the clean
log-sum-exp as its shift, Δlse = log Σ_v exp(z_v − lse(z0)), so no max pass is needed and
the difference comes out directly (not as a difference of two large numbers); the rare
(position, neuron) pairs whose sum overflows or underflows are recomputed with a max shift.
Δℓ = Δlse − (z_target − z0_target).

``mode="approx"`` replaces the log-sum-exp by its third-order cumulant expansion around the
clean softmax p: Δlse ≈ κ1 + κ2/2 + κ3/6 of Δz under p, six matmuls. It is a screen, never the
default; its error is bounded by 13 R⁴ / 1152 per pair, R = max_v Δz − min_v Δz (fourth-order
Taylor remainder κ4/24 of the cumulant generating function, with |κ4| ≤ μ4 + 3σ⁴ ≤ R⁴/12 + 3R⁴/16
on an interval of length R). The third cumulant matters where a few neurons fire hard: on the
planted zoo family the second-order curves were off by up to 1.3e-5 nats RMS, the third-order
ones by 2.6e-6.

All of this needs only, at the evaluation positions, the final norm's input
(``ln_final.hook_in``), the final MLP's post-activations (``blocks.{L}.mlp.hook_post``), the
next-token targets, and the weights gathered by ``final_readout``, which refuses, by name,
models where the algebra does not hold: a final logit soft-cap (Gemma-2), a norm on the MLP
output before the residual sum (Gemma-2/3, OLMo-2), a final norm of another kind.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch
from torch import Tensor, nn

Array = Tensor | np.ndarray  # inputs may be numpy arrays (as cached); outputs are tensors
Mode = Literal["exact", "approx"]
AblationKind = Literal["mean", "zero", "resample"]
ABLATION_KINDS: tuple[str, ...] = ("mean", "zero", "resample")

# Default chunk sizes (positions, neurons) per device type: the exact sweep holds a
# [chunk_positions, chunk_neurons, d_vocab] tensor (eager kernel). Small CPU chunks stay in cache.
DEFAULT_CHUNKS: dict[str, tuple[int, int]] = {"cpu": (8, 32), "cuda": (64, 256)}
# The approximation's chunks are matmuls [chunk_positions, d_vocab] × [d_vocab, d_mlp].
DEFAULT_APPROX_CHUNK_POSITIONS = 256
# Automatic torch.compile of the exact kernel pays off (compile ≈ 5–20 s) above this many terms.
COMPILE_MIN_TERMS = 2 * 10**9
# RMSNorm classes that scale by (1 + weight): their weight is stored as the offset from one.
UNIT_OFFSET_RMS_NORMS = ("GemmaRMSNorm", "Gemma2RMSNorm", "Gemma3RMSNorm", "RecurrentGemmaRMSNorm",
                         "VaultGemmaRMSNorm", "Qwen3NextRMSNorm")


@dataclass(frozen=True)
class Readout:
    """The weights from the final MLP's output to the logits.

    ``W_out`` [d_mlp, d_model] (row n = neuron n's write vector), the final norm's effective
    gain ``ln_weight`` g and bias ``ln_bias`` β [d_model] (zeros for an RMSNorm) and ``eps``,
    ``W_U`` [d_model, d_vocab], ``b_U`` [d_vocab] (zeros when the unembedding has no bias);
    ``centre``: the norm subtracts the mean first (LayerNorm), or not (RMSNorm).
    """

    W_out: Tensor
    ln_weight: Tensor
    ln_bias: Tensor
    eps: float
    W_U: Tensor
    b_U: Tensor
    centre: bool = True

    @property
    def d_mlp(self) -> int:
        return self.W_out.shape[0]

    @property
    def d_model(self) -> int:
        return self.W_out.shape[1]

    @property
    def d_vocab(self) -> int:
        return self.W_U.shape[1]

    def to(self, device: torch.device | str, dtype: torch.dtype) -> "Readout":
        """The same readout on ``device`` in ``dtype``."""
        move = lambda t: t.detach().to(device=device, dtype=dtype)  # noqa: E731
        return Readout(move(self.W_out), move(self.ln_weight), move(self.ln_bias), float(self.eps),
                       move(self.W_U), move(self.b_U), self.centre)

    def centred(self, x: Tensor) -> Tensor:
        """``x`` [..., d_model] minus its mean over d_model for a LayerNorm; ``x`` itself for an RMSNorm."""
        return x - x.mean(-1, keepdim=True) if self.centre else x


def final_readout(model: nn.Module) -> Readout:
    """Gather the final readout of a TransformerLens ``TransformerBridge`` (not compatibility mode).

    The final norm is read from the bridge's ``ln_final.original_component``: an
    ``nn.LayerNorm``, or an RMSNorm (a class named ``…RMSNorm``; gain 1 + weight for
    ``UNIT_OFFSET_RMS_NORMS``), checked against the module's own output on a probe. Raises
    ValueError (one line) for a model the algebra does not fit: a final logit soft-cap
    (``final_logit_softcapping``), a norm on the final MLP's output (``ln2_post``), a final norm
    of another kind or one that does not compute what its class says, or a weight whose shape
    is not the one the model's config says.
    """
    cfg = model.cfg
    hf_config = getattr(getattr(model, "original_model", None), "config", None)
    cap = getattr(hf_config, "final_logit_softcapping", None)
    if cap is not None:
        raise ValueError(f"{getattr(hf_config, 'model_type', 'the model')} soft-caps its logits "
                         f"(final_logit_softcapping = {cap}); the exact influence algebra needs logits linear in "
                         "the final norm's output")
    if hasattr(model.blocks[-1], "ln2_post"):
        post = type(model.blocks[-1].ln2_post.original_component).__name__
        raise ValueError(f"the final block normalises its MLP output ({post}) before the residual sum; the exact "
                         "influence algebra needs the MLP output added to the residual as it is")
    W_out = model.blocks[-1].mlp.W_out.detach()
    if tuple(W_out.shape) != (cfg.d_mlp, cfg.d_model):
        raise ValueError(f"final MLP W_out has shape {tuple(W_out.shape)}; expected [d_mlp, d_model] = "
                         f"[{cfg.d_mlp}, {cfg.d_model}]")
    norm = model.ln_final.original_component
    g, beta, eps, centre = _final_norm(norm, cfg.d_model, W_out)
    W_U = model.unembed.W_U.detach()
    if tuple(W_U.shape) != (cfg.d_model, cfg.d_vocab):
        raise ValueError(f"W_U has shape {tuple(W_U.shape)}; expected [d_model, d_vocab] = "
                         f"[{cfg.d_model}, {cfg.d_vocab}]")
    b_U = getattr(model.unembed, "b_U", None)
    b_U = b_U.detach() if b_U is not None else torch.zeros(cfg.d_vocab, dtype=W_U.dtype, device=W_U.device)
    readout = Readout(W_out, g, beta, eps, W_U, b_U, centre)
    _check_norm(norm, readout)
    return readout


def _final_norm(norm: nn.Module, d_model: int, like: Tensor) -> tuple[Tensor, Tensor, float, bool]:
    """(effective gain g [d_model], bias β [d_model], ε, centre) of a LayerNorm or RMSNorm module;
    ones and zeros where it has no weight or bias take ``like``'s dtype and device."""
    name = type(norm).__name__
    weight = getattr(norm, "weight", None)
    if isinstance(norm, nn.LayerNorm):
        if tuple(norm.normalized_shape) != (d_model,):
            raise ValueError(f"final LayerNorm normalises over {tuple(norm.normalized_shape)}, not [d_model]")
        bias, eps, centre = norm.bias, norm.eps, True
    elif name.endswith("RMSNorm"):
        eps = next((getattr(norm, a) for a in ("eps", "variance_epsilon") if getattr(norm, a, None) is not None), None)
        if eps is None:
            raise ValueError(f"the final {name} names no epsilon (eps / variance_epsilon)")
        bias, centre = None, False
        if weight is not None and name in UNIT_OFFSET_RMS_NORMS:  # computed in float32 or wider, as the module does
            weight = 1 + weight.detach().to(torch.promote_types(weight.dtype, torch.float32))
    else:
        raise ValueError(f"the final normalisation is {name}; the exact influence algebra knows LayerNorm "
                         "(centre, scale, shift) and RMSNorm (scale only)")
    if weight is not None and tuple(weight.shape) != (d_model,):
        raise ValueError(f"the final {name}'s weight has shape {tuple(weight.shape)}, not [d_model] = [{d_model}]")
    ones = torch.ones(d_model, dtype=like.dtype, device=like.device)
    g = ones if weight is None else weight.detach()
    beta = torch.zeros_like(ones) if bias is None else bias.detach()
    return g, beta, float(eps), centre


def _check_norm(norm: nn.Module, readout: Readout) -> None:
    """Raise unless ``norm`` computes g ⊙ u/σ + β with the readout's g, β, ε and centring (module
    docstring), to 16 units of rounding of the module's dtype, on 8 seeded random residuals."""
    dtype = readout.W_out.dtype
    x = torch.randn(8, readout.d_model, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        got = norm(x.to(device=readout.W_out.device, dtype=dtype)).double().cpu()
    ro = readout.to("cpu", torch.float64)
    u = ro.centred(x)
    expected = ro.ln_weight * u * torch.rsqrt(u.square().mean(-1, keepdim=True) + ro.eps) + ro.ln_bias
    error = float(((got - expected).abs() / (1 + expected.abs())).max())
    if error > 16 * torch.finfo(dtype).eps:
        kind = "a LayerNorm" if ro.centre else "an RMSNorm"
        raise ValueError(f"the final {type(norm).__name__} does not compute {kind} with its weights "
                         f"(relative difference {error:.2g} on a probe); its exact influence algebra is unknown")


def ablation_values(kind: AblationKind, acts: Array, *, mean_act: Array | None = None,
                    seed: int = 0) -> Tensor:
    """The replacement activation for each neuron, by name.

    - ``"mean"``: ā [d_mlp], ``mean_act`` when given (the mean over *all* evaluation positions),
      else the mean of ``acts`` over its positions;
    - ``"zero"``: zeros [d_mlp];
    - ``"resample"``: [n_pos, d_mlp], position t takes the activations of another position of
      ``acts``, drawn by a seeded random single-cycle permutation (no position keeps its own).

    ``acts`` is [n_pos, d_mlp], the activations at the evaluation positions.
    """
    acts = torch.as_tensor(acts)
    if acts.ndim != 2:
        raise ValueError(f"acts must be [n_pos, d_mlp], got shape {tuple(acts.shape)}")
    if kind == "mean":
        if mean_act is None:
            return acts.mean(0)
        mean_act = torch.as_tensor(mean_act)
        if tuple(mean_act.shape) != (acts.shape[1],):
            raise ValueError(f"mean_act must be [d_mlp] = [{acts.shape[1]}], got {tuple(mean_act.shape)}")
        return mean_act.to(device=acts.device, dtype=acts.dtype)
    if kind == "zero":
        return torch.zeros(acts.shape[1], dtype=acts.dtype, device=acts.device)
    if kind == "resample":
        n_pos = acts.shape[0]
        if n_pos < 2:
            raise ValueError("resample ablation needs at least 2 positions")
        order = torch.randperm(n_pos, generator=torch.Generator().manual_seed(seed))
        source = torch.empty_like(order)
        source[order] = order.roll(-1)
        return acts[source.to(acts.device)]
    raise ValueError(f"unknown ablation kind {kind!r}; use one of {ABLATION_KINDS}")


def influence(resid: Array, acts: Array, targets: Array, readout: Readout,
              ablated_value: Array | float, *, mode: Mode = "exact",
              chunk_positions: int | None = None, chunk_neurons: int | None = None,
              device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
              compile: bool | None = None) -> Tensor:
    """Δℓ_n(t) in nats, [n_pos, d_mlp]: CE with neuron n set to ``ablated_value`` minus clean CE.

    ``resid`` [n_pos, d_model] is the final LayerNorm's input, ``acts`` [n_pos, d_mlp] the final
    MLP's post-activations, ``targets`` [n_pos] the next-token ids; ``ablated_value`` is a scalar,
    [d_mlp] (one value per neuron) or [n_pos, d_mlp] (per position, e.g. resampling).
    Computed on ``device`` (default: the device of ``resid``) in ``dtype``.

    ``mode="exact"`` is exact to float rounding; peak extra memory is about
    4·chunk_positions·chunk_neurons·d_vocab bytes (float32) plus M [d_mlp, d_vocab].
    ``compile``: run the exact kernel through ``torch.compile`` (one fused pass, no chunk
    tensor); None compiles when the sweep has at least ``COMPILE_MIN_TERMS`` terms, and falls
    back to the eager kernel with a warning if compilation fails.
    ``mode="approx"`` is the third-order cumulant expansion (see the module docstring).
    """
    resid, acts, targets = torch.as_tensor(resid), torch.as_tensor(acts), torch.as_tensor(targets)
    device = torch.device(device) if device is not None else resid.device
    value = _check_inputs(resid, acts, targets, readout, ablated_value, mode)
    chunk_p, chunk_n = _chunk_sizes(mode, device, chunk_positions, chunk_neurons)
    ro = readout.to(device, dtype)
    resid, acts = resid.to(device=device, dtype=dtype), acts.to(device=device, dtype=dtype)
    targets, value = targets.to(device=device, dtype=torch.long), value.to(device=device, dtype=dtype)
    n_pos, d_mlp = acts.shape
    if compile is None:
        compile = mode == "exact" and n_pos * d_mlp * ro.d_vocab >= COMPILE_MIN_TERMS
    kernel = _compiled_kernel() if compile else _sum_exp_eager

    with torch.no_grad():
        neurons = _NeuronTerms.build(ro)
        M_powers = _powers(neurons.M) if mode == "approx" else None
        out = torch.empty(n_pos, d_mlp, dtype=dtype, device=device)
        for p0 in range(0, n_pos, chunk_p):
            sl = slice(p0, p0 + chunk_p)
            pos = _PositionTerms.build(resid[sl], targets[sl], ro, neurons)
            delta = (value[sl] if value.ndim == 2 else value) - acts[sl]
            inv_sigma = pos.inv_sigma(delta, neurons, ro)
            # change of the target logit, Δz_target = z(t, n)[target] − z0(t)[target]
            d_target = pos.L0_target[:, None] * (inv_sigma - pos.inv_sigma0[:, None]) \
                + delta * pos.M_target * inv_sigma
            if mode == "exact":
                d_lse = _exact_delta_lse(pos, neurons, delta, inv_sigma, chunk_n, kernel)
            else:
                d_lse = _approx_delta_lse(pos, M_powers, delta, inv_sigma)
            out[sl] = d_lse - d_target
    return out


def clean_loss(resid: Array, targets: Array, readout: Readout, *,
               device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
               chunk_positions: int = DEFAULT_APPROX_CHUNK_POSITIONS) -> Tensor:
    """Clean cross-entropy [n_pos] in nats, by the same formula as ``influence`` with δ = 0."""
    resid, targets = torch.as_tensor(resid), torch.as_tensor(targets)
    device = torch.device(device) if device is not None else resid.device
    ro = readout.to(device, dtype)
    resid, targets = resid.to(device=device, dtype=dtype), targets.to(device=device, dtype=torch.long)
    with torch.no_grad():
        neurons = _NeuronTerms.build(ro)
        parts = []
        for p0 in range(0, resid.shape[0], chunk_positions):
            sl = slice(p0, p0 + chunk_positions)
            pos = _PositionTerms.build(resid[sl], targets[sl], ro, neurons)
            z0_target = pos.L0_target * pos.inv_sigma0 + neurons.bias[targets[sl]]
            parts.append(pos.lse0 - z0_target)
    return torch.cat(parts)


def per_sequence_means(delta: Array, seq_ids: Array, mask: Array, *, absolute: bool = False,
                       n_seq: int | None = None) -> tuple[Tensor, Tensor]:
    """Per-sequence means of Δℓ over the selected positions, for a bootstrap over sequences.

    ``delta`` [n_pos, d_mlp] (nats), ``seq_ids`` [n_pos] the sequence index (0..n_seq−1) of each
    position, ``mask`` [n_pos] bool, the positions to average (e.g. rare targets). With
    ``absolute`` the means are of |Δℓ|. Returns ``(means [n_seq, d_mlp] float64, counts [n_seq])``;
    a sequence without selected positions has count 0 and NaN means. ``n_seq`` defaults to
    ``max(seq_ids) + 1``.
    """
    delta, seq_ids, mask = torch.as_tensor(delta), torch.as_tensor(seq_ids), torch.as_tensor(mask)
    if delta.ndim != 2:
        raise ValueError(f"delta must be [n_pos, d_mlp], got shape {tuple(delta.shape)}")
    n_pos = delta.shape[0]
    if tuple(seq_ids.shape) != (n_pos,) or tuple(mask.shape) != (n_pos,):
        raise ValueError(f"seq_ids and mask must be [n_pos] = [{n_pos}], got {tuple(seq_ids.shape)} "
                         f"and {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {mask.dtype}")
    if seq_ids.dtype.is_floating_point or seq_ids.dtype == torch.bool:
        raise ValueError(f"seq_ids must be integers, got {seq_ids.dtype}")
    if n_pos and int(seq_ids.min()) < 0:
        raise ValueError("seq_ids must be non-negative")
    n_seq = (int(seq_ids.max()) + 1 if n_pos else 0) if n_seq is None else n_seq
    if n_pos and int(seq_ids.max()) >= n_seq:
        raise ValueError(f"seq_ids go up to {int(seq_ids.max())}, beyond n_seq = {n_seq}")
    mask = mask.to(delta.device)
    ids = seq_ids.to(device=delta.device, dtype=torch.long)[mask]
    values = delta[mask].to(torch.float64)
    if absolute:
        values = values.abs_()
    sums = torch.zeros(n_seq, delta.shape[1], dtype=torch.float64, device=delta.device).index_add_(0, ids, values)
    counts = torch.bincount(ids, minlength=n_seq)
    return sums / counts[:, None], counts


# ---------------------------------------------------------------- internals


@dataclass
class _NeuronTerms:
    """Per-neuron quantities: write vectors c [d_mlp, d_model] (centred for a LayerNorm), ‖c‖² [d_mlp],
    M = (g ⊙ c) W_U [d_mlp, d_vocab], and the constant logit term β W_U + b_U [d_vocab]."""

    c: Tensor
    cc: Tensor
    M: Tensor
    bias: Tensor

    @classmethod
    def build(cls, ro: Readout) -> "_NeuronTerms":
        c = ro.centred(ro.W_out)
        return cls(c, (c * c).sum(1), (c * ro.ln_weight) @ ro.W_U, ro.ln_bias @ ro.W_U + ro.b_U)


@dataclass
class _PositionTerms:
    """Per-position quantities of one chunk of cp positions."""

    u: Tensor           # residual, centred for a LayerNorm [cp, d_model]
    uu: Tensor          # ‖u‖² [cp]
    L0: Tensor          # (g ⊙ u) W_U [cp, d_vocab]
    inv_sigma0: Tensor  # clean 1/σ [cp]
    lse0: Tensor        # clean log-sum-exp [cp]
    shift: Tensor       # bias − lse0, added to every logit [cp, d_vocab]
    L0_target: Tensor   # L0 at the target [cp]
    M_target: Tensor    # M[n, target(t)] [cp, d_mlp]

    @classmethod
    def build(cls, resid: Tensor, targets: Tensor, ro: Readout, neurons: _NeuronTerms) -> "_PositionTerms":
        u = ro.centred(resid)
        uu = (u * u).sum(1)
        L0 = (u * ro.ln_weight) @ ro.W_U
        inv_sigma0 = torch.rsqrt(uu / ro.d_model + ro.eps)
        lse0 = torch.logsumexp(torch.addcmul(neurons.bias, L0, inv_sigma0[:, None]), dim=1)
        shift = neurons.bias - lse0[:, None]
        L0_target = L0.gather(1, targets[:, None])[:, 0]
        M_target = neurons.M[:, targets].T
        return cls(u, uu, L0, inv_sigma0, lse0, shift, L0_target, M_target)

    def inv_sigma(self, delta: Tensor, neurons: _NeuronTerms, ro: Readout) -> Tensor:
        """1/σ(t, n) [cp, d_mlp] of the ablated residual u + δ c_n."""
        uc = self.u @ neurons.c.T
        var = (self.uu[:, None] + delta * (2 * uc + delta * neurons.cc)) / ro.d_model + ro.eps
        return torch.rsqrt(var)


Kernel = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]


def _sum_exp(L0: Tensor, M: Tensor, delta: Tensor, inv_sigma: Tensor, shift: Tensor) -> Tensor:
    """Σ_v exp(z(t, n)_v − lse0(t)) [cp, cn] for L0/shift [cp, V], M [cn, V], delta/inv_sigma [cp, cn]."""
    z = (L0[:, None, :] + delta[:, :, None] * M[None]) * inv_sigma[:, :, None] + shift[:, None, :]
    return z.exp().sum(-1)


def _sum_exp_eager(L0: Tensor, M: Tensor, delta: Tensor, inv_sigma: Tensor, shift: Tensor) -> Tensor:
    """``_sum_exp`` in four in-place passes over one [cp, cn, V] buffer."""
    z = torch.addcmul(L0[:, None, :], delta[:, :, None], M[None])
    torch.addcmul(shift[:, None, :], z, inv_sigma[:, :, None], out=z)
    return z.exp_().sum(-1)


_COMPILED: dict[str, Kernel] = {}


def _compiled_kernel() -> Kernel:
    """``_sum_exp`` through torch.compile (dynamic shapes, so chunk edges don't recompile);
    if compiling fails, a warning and the eager kernel."""
    if "kernel" not in _COMPILED:
        compiled = torch.compile(_sum_exp, dynamic=True)

        def guarded(*args: Tensor) -> Tensor:
            try:
                return compiled(*args)
            except Exception as err:  # a missing compiler or backend: fall back, loudly
                warnings.warn(f"torch.compile of the influence kernel failed ({type(err).__name__}: "
                              f"{err}); using the eager kernel", RuntimeWarning, stacklevel=2)
                _COMPILED["kernel"] = _sum_exp_eager
                return _sum_exp_eager(*args)

        _COMPILED["kernel"] = guarded
    return _COMPILED["kernel"]


def _exact_delta_lse(pos: _PositionTerms, neurons: _NeuronTerms, delta: Tensor, inv_sigma: Tensor,
                     chunk_n: int, kernel: Kernel) -> Tensor:
    """Exact lse(z(t, n)) − lse(z0(t)) [cp, d_mlp]."""
    d_mlp = delta.shape[1]
    sums = torch.empty_like(delta)
    for n0 in range(0, d_mlp, chunk_n):
        sl = slice(n0, n0 + chunk_n)
        sums[:, sl] = kernel(pos.L0, neurons.M[sl], delta[:, sl], inv_sigma[:, sl], pos.shift)
    # Terms below finfo.tiny may be lost; with sums ≥ V·tiny/eps that loss is below rounding.
    info = torch.finfo(delta.dtype)
    bad = ~torch.isfinite(sums) | (sums < pos.L0.shape[1] * info.tiny / info.eps)
    d_lse = sums.log()
    if bad.any():
        p, n = bad.nonzero(as_tuple=True)
        z = (pos.L0[p] + delta[p, n, None] * neurons.M[n]) * inv_sigma[p, n, None] + pos.shift[p]
        d_lse[p, n] = torch.logsumexp(z, dim=1)
    return d_lse


@dataclass
class _Cumulants:
    """The moments under the clean softmax p that the expansion needs, for one chunk of cp positions.

    With Z = L0/σ0 [cp, V] and M_n the logit direction of output row n, per position:
    ``EZ``, ``var_Z``, ``k3_Z`` [cp, 1]; per position and row [cp, d_mlp]: ``EM``, ``var_M``,
    ``k3_M`` and the mixed central moments ``cov_ZM`` = E[Zc Mc], ``c_ZZM`` = E[Zc² Mc],
    ``c_ZMM`` = E[Zc Mc²] (c: centred under p).
    """

    EZ: Tensor
    var_Z: Tensor
    k3_Z: Tensor
    EM: Tensor
    var_M: Tensor
    k3_M: Tensor
    cov_ZM: Tensor
    c_ZZM: Tensor
    c_ZMM: Tensor

    @classmethod
    def build(cls, pos: _PositionTerms, M_powers: tuple[Tensor, Tensor, Tensor]) -> "_Cumulants":
        """``M_powers`` = (M, M², M³) [d_mlp, V] (``_powers``)."""
        M, M_sq, M_cube = M_powers
        Z = pos.L0 * pos.inv_sigma0[:, None]
        p = torch.softmax(Z + pos.shift, dim=1)
        EZ = (p * Z).sum(1, keepdim=True)
        Zc = Z - EZ
        pZc = p * Zc                                  # centred, so sums of pZc·(const) vanish
        var_Z = (pZc * Zc).sum(1, keepdim=True)
        EM, EM_sq = p @ M.T, p @ M_sq.T
        cov_ZM = pZc @ M.T
        return cls(EZ=EZ, var_Z=var_Z, k3_Z=(pZc * Zc * Zc).sum(1, keepdim=True), EM=EM, var_M=EM_sq - EM * EM,
                   k3_M=p @ M_cube.T - 3 * EM * EM_sq + 2 * EM**3, cov_ZM=cov_ZM,
                   c_ZZM=(pZc * Zc) @ M.T - var_Z * EM, c_ZMM=pZc @ M_sq.T - 2 * EM * cov_ZM)

    def delta_lse(self, a: Tensor, b: Tensor, rows: Tensor | slice = slice(None)) -> Tensor:
        """κ1 + κ2/2 + κ3/6 of Δz = a·Z + b·M_row under p [cp, n]; ``rows`` picks the output rows."""
        EM, var_M, k3_M = self.EM[:, rows], self.var_M[:, rows], self.k3_M[:, rows]
        cov, c_zzm, c_zmm = self.cov_ZM[:, rows], self.c_ZZM[:, rows], self.c_ZMM[:, rows]
        k1 = a * self.EZ + b * EM
        k2 = a * a * self.var_Z + b * b * var_M + 2 * a * b * cov
        k3 = a**3 * self.k3_Z + 3 * a * a * b * c_zzm + 3 * a * b * b * c_zmm + b**3 * k3_M
        return k1 + k2 / 2 + k3 / 6


def _powers(M: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(M, M², M³) [d_mlp, V]: the matrices ``_Cumulants.build`` multiplies by."""
    M_sq = M.square()
    return M, M_sq, M_sq * M


def _approx_delta_lse(pos: _PositionTerms, M_powers: tuple[Tensor, Tensor, Tensor], delta: Tensor,
                      inv_sigma: Tensor) -> Tensor:
    """Third-order cumulant expansion of lse(z(t, n)) − lse(z0(t)) [cp, d_mlp].

    Δz_v = (r − 1)·Z_v + δ/σ·M[n, v] with Z = L0/σ0 and r = σ0/σ: a = r − 1, b = δ/σ.
    """
    return _Cumulants.build(pos, M_powers).delta_lse(inv_sigma / pos.inv_sigma0[:, None] - 1, delta * inv_sigma)


def _chunk_sizes(mode: Mode, device: torch.device, chunk_positions: int | None,
                 chunk_neurons: int | None) -> tuple[int, int]:
    default_p, default_n = DEFAULT_CHUNKS.get(device.type, DEFAULT_CHUNKS["cpu"])
    if mode == "approx":
        default_p = DEFAULT_APPROX_CHUNK_POSITIONS
    sizes = (default_p if chunk_positions is None else chunk_positions,
             default_n if chunk_neurons is None else chunk_neurons)
    for name, size in zip(("chunk_positions", "chunk_neurons"), sizes):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"{name} must be a positive int, got {size!r}")
    return sizes


def _check_inputs(resid: Tensor, acts: Tensor, targets: Tensor, readout: Readout,
                  ablated_value: Tensor | float, mode: str) -> Tensor:
    """Validate shapes, dtypes and finiteness; return ``ablated_value`` as a tensor."""
    if mode not in ("exact", "approx"):
        raise ValueError(f"unknown mode {mode!r}; use 'exact' or 'approx'")
    if resid.ndim != 2 or resid.shape[1] != readout.d_model:
        raise ValueError(f"resid must be [n_pos, d_model] = [n_pos, {readout.d_model}], got {tuple(resid.shape)}")
    n_pos = resid.shape[0]
    if tuple(acts.shape) != (n_pos, readout.d_mlp):
        raise ValueError(f"acts must be [n_pos, d_mlp] = [{n_pos}, {readout.d_mlp}], got {tuple(acts.shape)}")
    if tuple(targets.shape) != (n_pos,):
        raise ValueError(f"targets must be [n_pos] = [{n_pos}], got {tuple(targets.shape)}")
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer token ids, got {targets.dtype}")
    if n_pos and (int(targets.min()) < 0 or int(targets.max()) >= readout.d_vocab):
        raise ValueError(f"targets must lie in [0, d_vocab = {readout.d_vocab}), got "
                         f"[{int(targets.min())}, {int(targets.max())}]")
    value = torch.as_tensor(ablated_value)
    if value.ndim == 0:
        value = value.expand(readout.d_mlp)
    if tuple(value.shape) not in ((readout.d_mlp,), (n_pos, readout.d_mlp)):
        raise ValueError(f"ablated_value must be a scalar, [d_mlp] = [{readout.d_mlp}] or [n_pos, d_mlp] = "
                         f"[{n_pos}, {readout.d_mlp}], got {tuple(value.shape)}")
    if readout.ln_weight.shape != (readout.d_model,) or readout.ln_bias.shape != (readout.d_model,) \
            or readout.W_U.shape[0] != readout.d_model or readout.b_U.shape != (readout.d_vocab,):
        raise ValueError("readout shapes disagree: need W_out [d_mlp, d_model], ln_weight/ln_bias [d_model], "
                         "W_U [d_model, d_vocab], b_U [d_vocab]")
    for name, t in (("resid", resid), ("acts", acts), ("ablated_value", value), ("W_out", readout.W_out),
                    ("ln_weight", readout.ln_weight), ("ln_bias", readout.ln_bias), ("W_U", readout.W_U),
                    ("b_U", readout.b_U)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} holds NaN or infinite values")
    return value


def null_curves(resid: Array, acts: Array, targets: Array, readout: Readout, ablated_value: Array | float,
                permutations: np.ndarray, *, rescale: bool, mode: Mode = "approx",
                chunk_positions: int = DEFAULT_APPROX_CHUNK_POSITIONS,
                device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Null influence curves ``[n_perm, d_mlp]`` (nats, mean over positions): neuron n's ablation written
    along output row ``permutations[k, n]`` on the *unchanged* clean residual.

    This breaks each neuron's read→write pairing and keeps the clean forward pass (methods.md
    §3.3). With ``rescale`` the moved write vector keeps neuron n's own row norm (only the
    direction is permuted): Δa_n · (‖W_out[n]‖ / ‖W_out[π(n)]‖) · W_out[π(n)].

    ``mode="approx"`` uses the third-order expansion with every per-(position, row) quantity it
    needs computed once per position chunk, so a permutation costs O(positions × d_mlp)
    element-wise work instead of a sweep; ``mode="exact"`` runs the exact kernel once per
    permutation on a readout with permuted rows.
    """
    perms = torch.as_tensor(np.asarray(permutations), dtype=torch.long)
    resid, acts, targets = torch.as_tensor(resid), torch.as_tensor(acts), torch.as_tensor(targets)
    device = torch.device(device) if device is not None else resid.device
    value = _check_inputs(resid, acts, targets, readout, ablated_value, mode)
    if perms.ndim != 2 or perms.shape[1] != readout.d_mlp:
        raise ValueError(f"permutations must be [n_perm, d_mlp = {readout.d_mlp}], got {tuple(perms.shape)}")
    ro = readout.to(device, dtype)
    resid, acts = resid.to(device=device, dtype=dtype), acts.to(device=device, dtype=dtype)
    targets, value, perms = targets.to(device), value.to(device=device, dtype=dtype), perms.to(device)
    norms = ro.W_out.norm(dim=1)
    scale = norms[None, :] / norms[perms] if rescale else torch.ones(perms.shape, dtype=dtype, device=device)
    n_pos = resid.shape[0]
    if mode == "exact":
        out = []
        for k in range(perms.shape[0]):
            moved = dataclasses.replace(ro, W_out=ro.W_out[perms[k]])
            s = scale[k]
            delta = influence(resid, acts * s, targets, moved, value * s, mode="exact", dtype=dtype)
            out.append(delta.mean(0))
        return torch.stack(out)
    sums = torch.zeros(perms.shape, dtype=torch.float64, device=device)
    with torch.no_grad():
        neurons = _NeuronTerms.build(ro)
        M_powers = _powers(neurons.M)
        for p0 in range(0, n_pos, chunk_positions):
            sl = slice(p0, p0 + chunk_positions)
            pos = _PositionTerms.build(resid[sl], targets[sl], ro, neurons)
            cumulants = _Cumulants.build(pos, M_powers)   # per output row, shared by every permutation
            uc = pos.u @ neurons.c.T
            base = (value[sl] if value.ndim == 2 else value) - acts[sl]   # [cp, d_mlp] δ of neuron n
            for k in range(perms.shape[0]):
                rows = perms[k]
                delta = base * scale[k]
                var = (pos.uu[:, None] + delta * (2 * uc[:, rows] + delta * neurons.cc[rows])) / ro.d_model + ro.eps
                inv_sigma = torch.rsqrt(var)
                b = delta * inv_sigma
                d_lse = cumulants.delta_lse(inv_sigma / pos.inv_sigma0[:, None] - 1, b, rows)
                d_target = pos.L0_target[:, None] * (inv_sigma - pos.inv_sigma0[:, None]) \
                    + b * pos.M_target[:, rows]
                sums[k] += (d_lse - d_target).sum(0, dtype=torch.float64)
    return (sums / n_pos).to(dtype)
