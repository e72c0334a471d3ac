"""Tests of harness/influence.py: the batched ablation equals one hooked forward pass per neuron.

Two tiny models (GPT-NeoX with parallel attention+MLP, and GPT-2) are trained for a few
steps on a seeded Markov-chain token stream, saved as Hugging Face directories and loaded
through TransformerLens exactly as a subject is. The exact sweep must match, for mean, zero
and resample ablation, a forward pass with a hook on ``blocks.{L}.mlp.hook_post`` to within
EXACT_TOL nats at every position. The rest uses a dense per-neuron reference (residual +
δ·W_out[n], LayerNorm, unembed) in float64.
"""

from __future__ import annotations

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
    per_sequence_means,
)

EXACT_TOL = 1e-4  # nats: methods.md §3.2, "equal to float tolerance" for float32 models
SEED = 0
N_CTX = 32
N_EVAL_SEQ = 4
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are tiny: one thread is faster than two on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["the cat sat on the mat and the dog ran to the cat"] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>")


def _hf_model(arch: str, vocab: int):
    from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(SEED)
    if arch == "gpt_neox":
        cfg = GPTNeoXConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=128, max_position_embeddings=N_CTX, use_parallel_residual=True,
                            hidden_dropout=0.0, attention_dropout=0.0, rotary_pct=0.25)
        return GPTNeoXForCausalLM(cfg)
    cfg = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_inner=128, n_positions=N_CTX,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(cfg)


def _train(model, vocab: int, steps: int = 60) -> None:
    """A few Adam steps so the predictions and activations are far from the random init."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for step in range(steps):
        batch = _markov_tokens(vocab, 16, N_CTX, seed=1000 + step)
        loss = model(batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


@pytest.fixture(scope="module", params=["gpt_neox", "gpt2"])
def subject(request, tmp_path_factory):
    """A tiny trained model loaded as a TransformerBridge, with its measured eval data."""
    from transformer_lens.model_bridge import TransformerBridge

    tokenizer = _tokenizer()
    vocab = len(tokenizer)
    hf = _hf_model(request.param, vocab)
    _train(hf, vocab)
    path = tmp_path_factory.mktemp(request.param)
    hf.save_pretrained(path)
    tokenizer.save_pretrained(path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        bridge = TransformerBridge.boot_transformers(str(path), device="cpu", dtype=torch.float32)
    bridge.eval()
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


def test_final_readout_matches_hf_modules(subject):
    ro = final_readout(subject["bridge"])
    hf = subject["bridge"].original_model
    if subject["arch"] == "gpt_neox":
        ln, w_out = hf.gpt_neox.final_layer_norm, hf.gpt_neox.layers[-1].mlp.dense_4h_to_h.weight.T
    else:
        ln, w_out = hf.transformer.ln_f, hf.transformer.h[-1].mlp.c_proj.weight  # Conv1D: [in, out]
    torch.testing.assert_close(ro.W_out, w_out, rtol=0, atol=0)
    torch.testing.assert_close(ro.ln_weight, ln.weight, rtol=0, atol=0)
    torch.testing.assert_close(ro.ln_bias, ln.bias, rtol=0, atol=0)
    assert ro.eps == ln.eps
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
    """|approx − exact| ≤ (max_v Δz − min_v Δz)³ / 24 per (position, neuron): the third-order
    remainder of the cumulant generating function, with |κ3| ≤ range · Var ≤ range³/4."""
    ro = final_readout(subject["bridge"]).to("cpu", torch.float64)
    resid, acts = subject["resid"].double(), subject["acts"].double()
    value = acts.mean(0)
    approx = influence(resid, acts, subject["targets"], ro, value, mode="approx", dtype=torch.float64)
    exact = influence(resid, acts, subject["targets"], ro, value, dtype=torch.float64)
    dz = _dense_logits(resid, acts, ro, value) - _dense_logits(resid, acts, ro, acts)
    spread = dz.amax(-1) - dz.amin(-1)
    assert ((approx - exact).abs() <= spread**3 / 24 + 1e-10).all()


def test_approx_is_second_order():
    """Shrinking every δ by 2 shrinks the approximation error by 2³ = 8 (third-order remainder)."""
    resid, acts, targets, ro = _synthetic(torch.float64)
    target_value = acts.mean(0)
    errors = []
    for scale in (0.02, 0.01):
        value = acts + scale * (target_value - acts)
        exact = influence(resid, acts, targets, ro, value, dtype=torch.float64)
        approx = influence(resid, acts, targets, ro, value, mode="approx", dtype=torch.float64)
        errors.append(float((approx - exact).abs().max()))
    assert errors[0] / errors[1] == pytest.approx(8, rel=0.1)


# ---------------------------------------------------------------- dense reference on synthetic data


def _synthetic(dtype: torch.dtype, n_pos: int = 40, d_model: int = 16, d_mlp: int = 24, vocab: int = 60,
               unembed_scale: float = 1.0):
    g = torch.Generator().manual_seed(SEED)
    rand = lambda *shape: torch.randn(*shape, generator=g, dtype=dtype)  # noqa: E731
    ro = Readout(0.5 * rand(d_mlp, d_model), 1 + 0.1 * rand(d_model), 0.1 * rand(d_model), 1e-5,
                 unembed_scale * rand(d_model, vocab), 0.1 * rand(vocab))
    targets = torch.randint(0, vocab, (n_pos,), generator=g)
    return 2 * rand(n_pos, d_model), rand(n_pos, d_mlp), targets, ro


def _dense_logits(resid, acts, ro: Readout, value) -> torch.Tensor:
    """Logits [n_pos, d_mlp, vocab] with each neuron in turn set to ``value`` ([d_mlp] or [n_pos, d_mlp])."""
    delta = value - acts
    r = resid[:, None, :] + delta[:, :, None] * ro.W_out[None]
    return F.layer_norm(r, (ro.d_model,), ro.ln_weight, ro.ln_bias, ro.eps) @ ro.W_U + ro.b_U


def _dense_delta(resid, acts, targets, ro: Readout, value) -> torch.Tensor:
    """Reference Δℓ [n_pos, d_mlp] by a full LayerNorm + unembedding per neuron."""
    ablated = _dense_logits(resid, acts, ro, value)
    clean = F.layer_norm(resid, (ro.d_model,), ro.ln_weight, ro.ln_bias, ro.eps) @ ro.W_U + ro.b_U
    ablated_target = ablated.gather(2, targets[:, None, None].expand(-1, ablated.shape[1], 1))[..., 0]
    clean_ce = torch.logsumexp(clean, 1) - clean.gather(1, targets[:, None])[:, 0]
    return torch.logsumexp(ablated, 2) - ablated_target - clean_ce[:, None]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ABLATION_KINDS)
def test_matches_dense_reference(device, kind):
    resid, acts, targets, ro = _synthetic(torch.float64)
    value = ablation_values(kind, acts, seed=SEED)
    reference = _dense_delta(resid, acts, targets, ro, value)
    got64 = influence(resid, acts, targets, ro, value, dtype=torch.float64, device=device)
    assert got64.device.type == device
    torch.testing.assert_close(got64.cpu(), reference, rtol=0, atol=1e-12)
    got32 = influence(resid.float(), acts.float(), targets, ro, value.float(), device=device)
    assert got32.dtype == torch.float32
    assert (got32.cpu().double() - reference).abs().max() <= EXACT_TOL


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
    # float32 rounding of logits of this size: relative, not absolute
    torch.testing.assert_close(got.double(), reference, rtol=1e-5, atol=EXACT_TOL)


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
