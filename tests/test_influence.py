"""Tests of harness.measure.influence: the batched ablation equals one hooked forward pass per neuron.

Four tiny models — GPT-NeoX (parallel attention+MLP, LayerNorm), GPT-2 (LayerNorm), Llama
(RMSNorm, gated MLP) and Gemma (RMSNorm with a (1 + g) gain) — are trained for a few steps on
a seeded Markov-chain token stream, saved as Hugging Face directories and loaded through
TransformerLens exactly as a subject is. The exact sweep must match, for mean, zero and
resample ablation, a forward pass with a hook on ``blocks.{L}.mlp.hook_post`` to within
EXACT_TOL nats at every position. The rest uses a dense per-neuron reference (residual +
δ·W_out[n], the final norm, unembed) in float64, for both kinds of final norm.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from harness.measure.influence import (
    ABLATION_KINDS,
    Readout,
    ablation_values,
    clean_loss,
    final_readout,
    influence,
    null_curves,
    per_sequence_means,
)
from harness.subjects.loading import load_model

EXACT_TOL = 5e-6  # nats: methods.md §3.2, "equal to float tolerance" for float32 models
SEED = 0
N_CTX = 32
N_EVAL_SEQ = 4
ARCHS = ("gpt_neox", "gpt2", "llama", "gemma")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- tiny trained models


def _markov_tokens(vocab: int, n_seq: int, seq_len: int, seed: int) -> torch.Tensor:
    """Token sequences from a seeded sparse Markov chain (4 successors per token), [n_seq, seq_len]."""
    g = torch.Generator().manual_seed(SEED)
    successors = torch.randint(0, vocab, (vocab, 4), generator=g)
    probs = torch.tensor([0.55, 0.25, 0.15, 0.05])
    g = torch.Generator().manual_seed(seed)
    tokens = torch.empty(n_seq, seq_len, dtype=torch.long)
    tokens[:, 0] = torch.randint(0, vocab, (n_seq,), generator=g)
    for t in range(1, seq_len):
        choice = torch.multinomial(probs, n_seq, replacement=True, generator=g)
        tokens[:, t] = successors[tokens[:, t - 1], choice]
    return tokens


@pytest.fixture(scope="module", params=ARCHS)
def subject(request, tmp_path_factory, one_thread, tiny_tokenizer, tiny_model, save_model, training):
    """A tiny trained model loaded as a subject is (a TransformerBridge), with its measured eval data."""
    vocab = len(tiny_tokenizer)
    # perturbed norm gains and biases: a readout that takes a wrong vector (or drops Gemma's 1 + g) fails
    hf = tiny_model(request.param, vocab_size=vocab, n_ctx=N_CTX, perturb=0.3)
    training(hf, _markov_tokens(vocab, 256, N_CTX, seed=1000).numpy(), 60, batch_size=16)
    bridge = load_model(f"hf:{save_model(hf, tmp_path_factory.mktemp(request.param))}")
    tokens = _markov_tokens(vocab, N_EVAL_SEQ, N_CTX, seed=SEED + 1)
    layer = bridge.cfg.n_layers - 1
    post = f"blocks.{layer}.mlp.hook_post"
    with torch.no_grad():
        logits, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n in ("ln_final.hook_in", post))
    targets = tokens[:, 1:].reshape(-1)
    return {
        "arch": request.param,
        "bridge": bridge,
        "tokens": tokens,
        "post": post,
        "resid": cache["ln_final.hook_in"][:, :-1].reshape(-1, bridge.cfg.d_model),
        "acts": cache[post][:, :-1].reshape(-1, bridge.cfg.d_mlp),
        "targets": targets,
        "clean_ce": _ce(logits, targets),
    }


def _ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-position CE [n_pos] of logits [batch, seq, vocab] at positions 0..seq−2."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets, reduction="none")


def _hooked_delta(subject, neuron: int, value: torch.Tensor) -> torch.Tensor:
    """Δℓ [n_pos] from a forward pass whose hook sets ``neuron`` to ``value`` (scalar or
    [n_pos], one per evaluation position) at every evaluation position."""
    batch, seq = subject["tokens"].shape
    per_position = value.expand(batch * (seq - 1)).reshape(batch, seq - 1)

    def hook(act, hook):
        act = act.clone()
        act[:, :-1, neuron] = per_position.to(act.dtype)  # the last position has no target
        return act

    with torch.no_grad():
        logits = subject["bridge"].run_with_hooks(subject["tokens"], fwd_hooks=[(subject["post"], hook)])
    return _ce(logits, subject["targets"]) - subject["clean_ce"]


def _sample_neurons(delta: torch.Tensor, n_random: int = 3) -> list[int]:
    """Top 3 by mean |Δℓ|, top 2 by signed mean, and a few seeded random neurons."""
    top_abs = delta.abs().mean(0).argsort(descending=True)[:3]
    top_signed = delta.mean(0).argsort(descending=True)[:2]
    rand = torch.randperm(delta.shape[1], generator=torch.Generator().manual_seed(SEED))[:n_random]
    return sorted(set(torch.cat([top_abs, top_signed, rand]).tolist()))


# ---------------------------------------------------------------- the exactness tests


def test_final_readout_matches_hf_modules(subject, hf_part):
    ro = final_readout(subject["bridge"])
    hf = subject["bridge"].original_model
    ln, w_out = hf_part(hf, "final_norm"), hf_part(hf, "mlp_out", -1).weight
    w_out = w_out if subject["arch"] == "gpt2" else w_out.T  # GPT-2's Conv1D weight is [in, out]
    torch.testing.assert_close(ro.W_out, w_out, rtol=0, atol=0)
    if subject["arch"] in ("gpt_neox", "gpt2"):
        assert ro.centre and ro.eps == ln.eps
        torch.testing.assert_close(ro.ln_weight, ln.weight, rtol=0, atol=0)
        torch.testing.assert_close(ro.ln_bias, ln.bias, rtol=0, atol=0)
    else:  # RMSNorm: no centring, no bias; Gemma stores the gain as its offset from one
        assert not ro.centre
        gain = 1 + ln.weight if subject["arch"] == "gemma" else ln.weight
        assert ro.eps == (ln.eps if subject["arch"] == "gemma" else ln.variance_epsilon)
        torch.testing.assert_close(ro.ln_weight, gain, rtol=0, atol=0)
        assert (ro.ln_bias == 0).all()
        assert (ro.ln_weight - 1).abs().max() > 0.1  # the perturbed gains are far from the default
    torch.testing.assert_close(ro.W_U, hf.lm_head.weight.T, rtol=0, atol=0)
    b_U = hf.lm_head.bias if hf.lm_head.bias is not None else torch.zeros(ro.d_vocab)
    torch.testing.assert_close(ro.b_U, b_U, rtol=0, atol=0)


def test_clean_loss_matches_forward_pass(subject):
    ce = clean_loss(subject["resid"], subject["targets"], final_readout(subject["bridge"]))
    assert (ce - subject["clean_ce"]).abs().max() <= EXACT_TOL


def test_mean_ablation_matches_hooked_forward_pass(subject):
    ro = final_readout(subject["bridge"])
    mean_act = subject["acts"].mean(0)
    delta = influence(subject["resid"], subject["acts"], subject["targets"], ro, mean_act)
    assert delta.shape == subject["acts"].shape
    neurons = _sample_neurons(delta)
    errors = {n: float((delta[:, n] - _hooked_delta(subject, n, mean_act[n])).abs().max()) for n in neurons}
    assert max(errors.values()) <= EXACT_TOL, f"batched vs hooked Δℓ differ: {errors}"
    # power: the compared effects are far above the tolerance, so agreement is not trivial
    assert delta[:, neurons].abs().max() > 100 * EXACT_TOL


@pytest.mark.parametrize("kind", ["zero", "resample"])
def test_zero_and_resample_ablation_match_hooked_forward_pass(subject, kind):
    ro = final_readout(subject["bridge"])
    value = ablation_values(kind, subject["acts"], seed=SEED)
    delta = influence(subject["resid"], subject["acts"], subject["targets"], ro, value)
    for n in _sample_neurons(delta, n_random=0)[:2]:
        hooked = _hooked_delta(subject, n, value[:, n] if value.ndim == 2 else value[n])
        assert (delta[:, n] - hooked).abs().max() <= EXACT_TOL


def test_approx_error_within_cumulant_bound(subject):
    """|approx − exact| ≤ 13 R⁴ / 1152 per (position, neuron), R = max_v Δz − min_v Δz: the
    fourth-order remainder κ4/24 of the cumulant generating function, |κ4| ≤ R⁴/12 + 3R⁴/16."""
    ro = final_readout(subject["bridge"]).to("cpu", torch.float64)
    resid, acts = subject["resid"].double(), subject["acts"].double()
    value = acts.mean(0)
    approx = influence(resid, acts, subject["targets"], ro, value, mode="approx", dtype=torch.float64)
    exact = influence(resid, acts, subject["targets"], ro, value, dtype=torch.float64)
    dz = _dense_logits(resid, acts, ro, value) - _dense_logits(resid, acts, ro, acts)
    spread = dz.amax(-1) - dz.amin(-1)
    assert ((approx - exact).abs() <= 13 * spread**4 / 1152 + 1e-10).all()


def test_approx_is_third_order():
    """Shrinking every δ by 2 shrinks the approximation error by 2⁴ = 16 (fourth-order remainder):
    the third cumulant is in the expansion, and right (a wrong κ3 would leave a cubic error, ratio 8)."""
    resid, acts, targets, ro = _synthetic(torch.float64)
    target_value = acts.mean(0)
    errors = []
    for scale in (0.02, 0.01):
        value = acts + scale * (target_value - acts)
        exact = influence(resid, acts, targets, ro, value, dtype=torch.float64)
        approx = influence(resid, acts, targets, ro, value, mode="approx", dtype=torch.float64)
        errors.append(float((approx - exact).abs().max()))
    assert errors[0] / errors[1] == pytest.approx(16, rel=0.1)


# ---------------------------------------------------------------- dense reference on synthetic data


NORMS = pytest.mark.parametrize("centre", [True, False], ids=["layernorm", "rmsnorm"])


def _synthetic(dtype: torch.dtype, n_pos: int = 40, d_model: int = 16, d_mlp: int = 24, vocab: int = 60,
               unembed_scale: float = 1.0, centre: bool = True):
    """Random residuals, activations, targets and a readout; ``centre=False`` is an RMSNorm (no bias)."""
    g = torch.Generator().manual_seed(SEED)
    rand = lambda *shape: torch.randn(*shape, generator=g, dtype=dtype)  # noqa: E731
    bias = 0.1 * rand(d_model) if centre else torch.zeros(d_model, dtype=dtype)
    ro = Readout(0.5 * rand(d_mlp, d_model), 1 + 0.1 * rand(d_model), bias, 1e-5,
                 unembed_scale * rand(d_model, vocab), 0.1 * rand(vocab), centre)
    targets = torch.randint(0, vocab, (n_pos,), generator=g)
    return 2 * rand(n_pos, d_model), rand(n_pos, d_mlp), targets, ro


def _logits(r: torch.Tensor, ro: Readout) -> torch.Tensor:
    """torch's own LayerNorm or RMSNorm of residuals r [..., d_model], then the unembedding."""
    if ro.centre:
        normed = F.layer_norm(r, (ro.d_model,), ro.ln_weight, ro.ln_bias, ro.eps)
    else:
        normed = F.rms_norm(r, (ro.d_model,), ro.ln_weight, ro.eps)
    return normed @ ro.W_U + ro.b_U


def _dense_logits(resid, acts, ro: Readout, value) -> torch.Tensor:
    """Logits [n_pos, d_mlp, vocab] with each neuron in turn set to ``value`` ([d_mlp] or [n_pos, d_mlp])."""
    delta = value - acts
    return _logits(resid[:, None, :] + delta[:, :, None] * ro.W_out[None], ro)


def _dense_delta(resid, acts, targets, ro: Readout, value) -> torch.Tensor:
    """Reference Δℓ [n_pos, d_mlp] by a full final norm + unembedding per neuron."""
    ablated = _dense_logits(resid, acts, ro, value)
    clean = _logits(resid, ro)
    ablated_target = ablated.gather(2, targets[:, None, None].expand(-1, ablated.shape[1], 1))[..., 0]
    clean_ce = torch.logsumexp(clean, 1) - clean.gather(1, targets[:, None])[:, 0]
    return torch.logsumexp(ablated, 2) - ablated_target - clean_ce[:, None]


@NORMS
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ABLATION_KINDS)
def test_matches_dense_reference(device, kind, centre):
    resid, acts, targets, ro = _synthetic(torch.float64, centre=centre)
    value = ablation_values(kind, acts, seed=SEED)
    reference = _dense_delta(resid, acts, targets, ro, value)
    got64 = influence(resid, acts, targets, ro, value, dtype=torch.float64, device=device)
    assert got64.device.type == device
    torch.testing.assert_close(got64.cpu(), reference, rtol=0, atol=1e-12)
    got32 = influence(resid.float(), acts.float(), targets, ro, value.float(), device=device)
    assert got32.dtype == torch.float32
    assert (got32.cpu().double() - reference).abs().max() <= EXACT_TOL
    approx = influence(resid, acts, targets, ro, value, mode="approx", dtype=torch.float64, device=device)
    dz = _dense_logits(resid, acts, ro, value) - _dense_logits(resid, acts, ro, acts)
    assert ((approx.cpu() - reference).abs() <= (dz.amax(-1) - dz.amin(-1)) ** 3 / 24 + 1e-10).all()


@NORMS
@pytest.mark.parametrize("rescale", [False, True], ids=["row", "direction"])
def test_null_curves_match_dense_reference(centre, rescale):
    """Null curve k, neuron n: the mean Δℓ of n's ablation written along row π_k(n) (at n's own row norm
    with ``rescale``) on the clean residual — exactly, and within the cumulant bound for ``approx``."""
    resid, acts, targets, ro = _synthetic(torch.float64, centre=centre)
    value = acts.mean(0)
    g = torch.Generator().manual_seed(SEED)
    perms = torch.stack([torch.randperm(ro.d_mlp, generator=g) for _ in range(3)]).numpy()
    kwargs = {"rescale": rescale, "dtype": torch.float64}
    exact = null_curves(resid, acts, targets, ro, value, perms, mode="exact", **kwargs)
    approx = null_curves(resid, acts, targets, ro, value, perms, mode="approx", **kwargs)
    norms = ro.W_out.norm(dim=1)
    for k, perm in enumerate(torch.as_tensor(perms)):
        scale = norms / norms[perm] if rescale else torch.ones_like(norms)
        moved = dataclasses.replace(ro, W_out=ro.W_out[perm] * scale[:, None])
        torch.testing.assert_close(exact[k], _dense_delta(resid, acts, targets, moved, value).mean(0),
                                   rtol=0, atol=1e-12)
        dz = _dense_logits(resid, acts, moved, value) - _dense_logits(resid, acts, moved, acts)
        assert ((approx[k] - exact[k]).abs() <= ((dz.amax(-1) - dz.amin(-1)) ** 3 / 24).mean(0) + 1e-10).all()
    identity = null_curves(resid, acts, targets, ro, value, torch.arange(ro.d_mlp)[None].numpy(), mode="exact",
                           **kwargs)
    torch.testing.assert_close(identity[0], influence(resid, acts, targets, ro, value, dtype=torch.float64).mean(0),
                               rtol=0, atol=1e-12)


def test_chunk_sizes_do_not_change_the_result():
    resid, acts, targets, ro = _synthetic(torch.float64)
    value = acts.mean(0)
    results = [influence(resid, acts, targets, ro, value, dtype=torch.float64, chunk_positions=cp, chunk_neurons=cn)
               for cp, cn in [(1, 1), (7, 5), (10**6, 10**6)]]
    for other in results[1:]:
        torch.testing.assert_close(other, results[0], rtol=0, atol=1e-12)


def test_compiled_kernel_matches_eager():
    resid, acts, targets, ro = _synthetic(torch.float32)
    value = acts.mean(0)
    eager = influence(resid, acts, targets, ro, value, compile=False)
    compiled = influence(resid, acts, targets, ro, value, compile=True, chunk_positions=7, chunk_neurons=5)
    assert (compiled - eager).abs().max() <= EXACT_TOL


def test_overflowing_exponentials_fall_back_to_max_shift():
    """A readout whose ablated logits move by more than float32's exp range stays exact."""
    resid, acts, targets, ro = _synthetic(torch.float64, unembed_scale=40.0)
    value = torch.zeros(acts.shape[1], dtype=torch.float64)
    dz = _dense_logits(resid, acts, ro, value) - _dense_logits(resid, acts, ro, acts)
    assert dz.abs().max() > math.log(torch.finfo(torch.float32).max)  # exp would overflow
    reference = _dense_delta(resid, acts, targets, ro, value)
    got = influence(resid.float(), acts.float(), targets, ro, 0.0)
    assert torch.isfinite(got).all()
    # float32 logits of this size (hundreds) round at 1e-5 relative, ~1e-4 nats absolute
    torch.testing.assert_close(got.double(), reference, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------- ablation values and aggregation


def test_ablation_values():
    _, acts, _, _ = _synthetic(torch.float32)
    mean_act = torch.arange(acts.shape[1], dtype=torch.float32)
    torch.testing.assert_close(ablation_values("mean", acts), acts.mean(0))
    torch.testing.assert_close(ablation_values("mean", acts, mean_act=mean_act), mean_act)
    assert (ablation_values("zero", acts) == 0).all()
    resampled = ablation_values("resample", acts, seed=3)
    # each row is another position's row, every position used once, none kept
    source = [int((acts == row).all(1).nonzero()[0]) for row in resampled]
    assert sorted(source) == list(range(acts.shape[0]))
    assert all(s != t for t, s in enumerate(source))
    torch.testing.assert_close(ablation_values("resample", acts, seed=3), resampled)
    assert not torch.equal(ablation_values("resample", acts, seed=4), resampled)


def test_per_sequence_means():
    g = torch.Generator().manual_seed(SEED)
    delta = torch.randn(30, 5, generator=g)
    seq_ids = torch.arange(30) // 10          # sequences 0, 1, 2 (and an empty sequence 3)
    mask = torch.rand(30, generator=g) < 0.6
    mask[10:20] = False                       # sequence 1 has no selected positions
    means, counts = per_sequence_means(delta, seq_ids, mask, n_seq=4)
    abs_means, _ = per_sequence_means(delta, seq_ids, mask, absolute=True, n_seq=4)
    for s in range(4):
        rows = delta[(seq_ids == s) & mask].double()
        assert counts[s] == rows.shape[0]
        if rows.shape[0]:
            torch.testing.assert_close(means[s], rows.mean(0))
            torch.testing.assert_close(abs_means[s], rows.abs().mean(0))
        else:
            assert torch.isnan(means[s]).all()
    assert per_sequence_means(delta, seq_ids, mask)[0].shape == (3, 5)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "resid": a["resid"][:, :-1]}, "resid must be"),
    (lambda a: {**a, "acts": a["acts"][:-1]}, "acts must be"),
    (lambda a: {**a, "targets": a["targets"][:-1]}, "targets must be"),
    (lambda a: {**a, "targets": a["targets"] + 1000}, "targets must lie"),
    (lambda a: {**a, "targets": a["targets"].float()}, "integer token ids"),
    (lambda a: {**a, "ablated_value": a["ablated_value"][:-1]}, "ablated_value must be"),
    (lambda a: {**a, "acts": a["acts"].index_fill(0, torch.tensor([3]), float("nan"))}, "acts holds NaN"),
    (lambda a: {**a, "resid": a["resid"].index_fill(1, torch.tensor([0]), float("inf"))}, "resid holds NaN"),
    (lambda a: {**a, "mode": "fast"}, "unknown mode"),
    (lambda a: {**a, "chunk_neurons": 0}, "chunk_neurons must be"),
])
def test_bad_input_raises(change, message):
    resid, acts, targets, ro = _synthetic(torch.float32)
    args = {"resid": resid, "acts": acts, "targets": targets, "readout": ro, "ablated_value": acts.mean(0)}
    with pytest.raises(ValueError, match=message):
        influence(**change(args))


def test_bad_ablation_and_aggregation_input_raises():
    _, acts, _, _ = _synthetic(torch.float32)
    with pytest.raises(ValueError, match="unknown ablation kind"):
        ablation_values("shuffle", acts)
    with pytest.raises(ValueError, match="mean_act must be"):
        ablation_values("mean", acts, mean_act=acts[0, :-1])
    with pytest.raises(ValueError, match="mask must be a bool"):
        per_sequence_means(acts, torch.zeros(acts.shape[0], dtype=torch.long), torch.ones(acts.shape[0]))
    with pytest.raises(ValueError, match="seq_ids and mask must be"):
        per_sequence_means(acts, torch.zeros(3, dtype=torch.long), torch.ones(3, dtype=torch.bool))


def test_readouts_the_algebra_does_not_fit_are_refused_by_name(tmp_path, tiny_model, save_model):
    """Gemma-2 soft-caps its logits and normalises each MLP output before the residual sum: both break
    the rank-1 algebra, and each is named in a one-line refusal."""
    capped = tiny_model("gemma2")
    assert capped.config.final_logit_softcapping is not None
    with pytest.raises(ValueError, match=r"^gemma2 soft-caps its logits \(final_logit_softcapping = 30") as err:
        final_readout(load_model(f"hf:{save_model(capped, tmp_path / 'capped')}"))
    assert "\n" not in str(err.value)
    uncapped = tiny_model("gemma2")
    uncapped.config.final_logit_softcapping = None
    with pytest.raises(ValueError, match=r"normalises its MLP output \(Gemma2RMSNorm\) before the residual sum"):
        final_readout(load_model(f"hf:{save_model(uncapped, tmp_path / 'uncapped')}"))


def test_a_norm_that_does_not_compute_what_its_class_says_is_refused(tmp_path, tiny_model, save_model):
    """The readout checks the final norm's own output: an RMSNorm class that scales by 1 + weight but is
    not known to do so cannot yield a silently wrong readout."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    class OffsetRMSNorm(LlamaRMSNorm):
        def forward(self, hidden_states):
            return super().forward(hidden_states) / self.weight * (1 + self.weight)

    bridge = load_model(f"hf:{save_model(tiny_model('llama', perturb=0.3), tmp_path / 'llama')}")
    final_readout(bridge)
    bridge.ln_final.original_component.__class__ = OffsetRMSNorm
    with pytest.raises(ValueError, match="the final OffsetRMSNorm does not compute an RMSNorm with its weights"):
        final_readout(bridge)
