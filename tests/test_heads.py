"""harness.heads: hook-based head/layer ablation on tiny GPT-NeoX and GPT-2 TransformerBridges."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, GPTNeoXConfig,
                          GPTNeoXForCausalLM, PreTrainedTokenizerFast)
from transformer_lens.model_bridge import TransformerBridge

from harness.measure.heads import ALL_HEADS, ablation_fwd_hooks, default_layers, head_ablation
from harness.claims.registry import SETTINGS
from harness.analysis.routing import routing_test

os.environ.setdefault("HF_HUB_OFFLINE", "1")
N_LAYERS, N_HEADS, D_MODEL = 2, 4, 32
D_HEAD = D_MODEL // N_HEADS
ARCHS = ("gpt_neox", "gpt2")


def tiny_model(arch: str) -> torch.nn.Module:
    """A randomly initialised 2-layer, 4-head causal LM (dropout 0), seeded."""
    torch.manual_seed(0)
    if arch == "gpt_neox":
        cfg = GPTNeoXConfig(vocab_size=VOCAB, hidden_size=D_MODEL, num_hidden_layers=N_LAYERS,
                            num_attention_heads=N_HEADS, intermediate_size=4 * D_MODEL, max_position_embeddings=64,
                            use_parallel_residual=True, hidden_dropout=0.0, attention_dropout=0.0,
                            bos_token_id=0, eos_token_id=0)
        return GPTNeoXForCausalLM(cfg).eval()
    cfg = GPT2Config(vocab_size=VOCAB, n_embd=D_MODEL, n_layer=N_LAYERS, n_head=N_HEADS, n_positions=64,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(cfg).eval()


def tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog"] * 4, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")


VOCAB = len(tokenizer())


def out_proj(hf: torch.nn.Module, layer: int) -> torch.nn.Module:
    """The attention output projection (input ``[batch, pos, n_heads * d_head]``, head-major)."""
    return hf.gpt_neox.layers[layer].attention.dense if hasattr(hf, "gpt_neox") else hf.transformer.h[layer].attn.c_proj


def save(hf: torch.nn.Module, directory: Path) -> Path:
    hf.save_pretrained(directory)
    tokenizer().save_pretrained(directory)
    return directory


def plant_routing_head(hf: torch.nn.Module, head: int, scale: float) -> None:
    """Scale one final-layer head's output weights and sharpen the logits (final LayerNorm gain)."""
    with torch.no_grad():
        if hasattr(hf, "gpt_neox"):
            out_proj(hf, N_LAYERS - 1).weight[:, head * D_HEAD:(head + 1) * D_HEAD] *= scale
            hf.gpt_neox.final_layer_norm.weight *= scale
        else:  # GPT-2's Conv1D weight is [in, out]
            out_proj(hf, N_LAYERS - 1).weight[head * D_HEAD:(head + 1) * D_HEAD] *= scale
            hf.transformer.ln_f.weight *= scale


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads; on a shared machine threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {arch: save(tiny_model(arch), root / arch) for arch in ARCHS}


def bridge(directory: Path) -> torch.nn.Module:
    return TransformerBridge.boot_transformers(str(directory), device="cpu")


def data(n_seq: int = 5, seq_len: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random tokens with BOS (id 0) first; rare = target id in the upper half of the vocabulary."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, VOCAB, (n_seq, seq_len), generator=g)
    tokens[:, 0] = 0
    return tokens, *masks(tokens)


def masks(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rare = torch.zeros_like(tokens, dtype=torch.bool)
    common = torch.zeros_like(rare)
    rare[:, 1:-1] = tokens[:, 2:] >= VOCAB // 2
    common[:, 1:-1] = tokens[:, 2:] < VOCAB // 2
    return rare, common


def reference(hf: torch.nn.Module, tokens, rare, common, layers, ablation) -> dict[str, np.ndarray]:
    """Hand-written ablation on the plain HF model: overwrite a head's slice of the attention
    output projection's input at positions >= 1 (mean over those positions, or zero)."""
    def sums(logits):
        ce = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2).double(), tokens[:, 1:], reduction="none")
        return {f"{g}_{m}": (v * mask[:, :-1]).sum(1).numpy()
                for g, mask in (("rare", rare), ("common", common)) for m, v in (("ce", ce), ("prob", torch.exp(-ce)))}

    captured = {}
    handles = [out_proj(hf, L).register_forward_pre_hook(lambda mod, args, L=L: captured.__setitem__(L, args[0].clone()))
               for L in layers]
    with torch.no_grad():
        out = {f"clean_{k}": v for k, v in sums(hf(tokens).logits).items()}
    for handle in handles:
        handle.remove()
    per_variant = []
    for L in layers:
        mean = captured[L][:, 1:].double().mean(dim=(0, 1)).float()
        for head in [*range(N_HEADS), None]:
            cols = slice(None) if head is None else slice(head * D_HEAD, (head + 1) * D_HEAD)

            def overwrite(mod, args, cols=cols, mean=mean):
                x = args[0].clone()
                x[:, 1:, cols] = 0.0 if ablation == "zero" else mean[cols]
                return (x,)

            handle = out_proj(hf, L).register_forward_pre_hook(overwrite)
            with torch.no_grad():
                per_variant.append(sums(hf(tokens).logits))
            handle.remove()
    for key in per_variant[0]:
        stacked = np.array([v[key] for v in per_variant]).reshape(len(layers), N_HEADS + 1, -1)
        out[f"head_{key}"], out[f"layer_{key}"] = stacked[:, :N_HEADS], stacked[:, N_HEADS]
    return out


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("ablation", ["mean", "zero"])
def test_hook_ablation_equals_hand_written_reference(model_dirs, arch, ablation):
    tokens, rare, common = data()
    got = head_ablation(bridge(model_dirs[arch]), tokens, rare, common, layers=[0, 1], ablation=ablation, batch_size=7)
    want = reference(AutoModelForCausalLM.from_pretrained(model_dirs[arch]).eval(), tokens, rare, common, [0, 1], ablation)
    assert set(want) <= set(got)
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-5, err_msg=key)
    assert got["head_rare_ce"].shape == (2, N_HEADS, 5) and got["layer_common_prob"].shape == (2, 5)
    np.testing.assert_array_equal(got["rare_count"], rare.sum(1).numpy())
    np.testing.assert_array_equal(got["layers"], [0, 1])


@pytest.mark.parametrize("ablation", ["mean", "zero", "bos"])
def test_batched_variants_equal_one_variant_per_pass(model_dirs, ablation):
    tokens, rare, common = data(n_seq=4)
    model = bridge(model_dirs["gpt_neox"])
    one = head_ablation(model, tokens, rare, common, ablation=ablation, batch_size=1)
    many = head_ablation(model, tokens, rare, common, ablation=ablation, batch_size=64)
    for key in one:
        np.testing.assert_allclose(many[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("arch", ARCHS)
def test_ablation_edits_only_the_ablated_head(model_dirs, arch):
    """Each batch replica ablates one head: its z takes the ablated value at positions >= 1
    (the mean; the BOS value vector for 'bos'); every other head, layer and position is clean."""
    model = bridge(model_dirs[arch])
    tokens, _, _ = data(n_seq=3)
    n = tokens.shape[0]
    last = N_LAYERS - 1
    _, clean = model.run_with_cache(tokens)
    mean_z = {last: clean[f"blocks.{last}.attn.hook_z"][:, 1:].mean(dim=(0, 1))}
    variants = [(last, h) for h in range(N_HEADS)] + [(last, ALL_HEADS)]
    for ablation in ("mean", "bos"):
        seen = {}
        hooks = ablation_fwd_hooks(variants, n, ablation=ablation, mean_z=mean_z)
        capture = [(name, lambda x, hook, name=name: seen.__setitem__(name, x.clone()))
                   for name in (f"blocks.{L}.attn.hook_{p}" for L in range(N_LAYERS) for p in ("z", "v"))]
        with torch.no_grad():
            model.run_with_hooks(tokens.repeat(len(variants), 1), fwd_hooks=hooks + capture)
        for L in range(N_LAYERS):  # values are never edited; earlier layers are untouched
            torch.testing.assert_close(seen[f"blocks.{L}.attn.hook_v"], clean[f"blocks.{L}.attn.hook_v"].repeat(len(variants), 1, 1, 1))
        torch.testing.assert_close(seen["blocks.0.attn.hook_z"], clean["blocks.0.attn.hook_z"].repeat(len(variants), 1, 1, 1))
        z, z_clean, v = seen[f"blocks.{last}.attn.hook_z"], clean[f"blocks.{last}.attn.hook_z"], clean[f"blocks.{last}.attn.hook_v"]
        for k, (_, head) in enumerate(variants):
            rows = z[k * n:(k + 1) * n]
            ablated = list(range(N_HEADS)) if head == ALL_HEADS else [head]
            kept = [h for h in range(N_HEADS) if h not in ablated]
            torch.testing.assert_close(rows[:, :, kept], z_clean[:, :, kept], rtol=0, atol=0)
            torch.testing.assert_close(rows[:, 0], z_clean[:, 0], rtol=0, atol=0)
            want = mean_z[last][ablated].expand_as(rows[:, 1:, ablated]) if ablation == "mean" \
                else v[:, :1, ablated].expand_as(rows[:, 1:, ablated])
            torch.testing.assert_close(rows[:, 1:, ablated], want)


@pytest.mark.parametrize("arch", ARCHS)
def test_planted_routing_head_breaks_the_single_head_bound(tmp_path, arch):
    """One final-layer head carries the prediction of data sampled from the planted model:
    ablating it raises the rare-target loss far above the bound; the unplanted model, on the
    same data, stays inside the bound."""
    bound = SETTINGS["max_single_head_pct"].default
    planted_head, last = 2, N_LAYERS - 1
    hf = tiny_model(arch)
    plant_routing_head(hf, planted_head, scale=30.0)
    g = torch.Generator().manual_seed(1)
    tokens = torch.zeros(24, 1, dtype=torch.long)
    with torch.no_grad():
        for _ in range(15):
            probs = torch.softmax(hf(tokens).logits[:, -1], dim=-1)
            tokens = torch.cat([tokens, torch.multinomial(probs, 1, generator=g)], dim=1)
    rare, common = masks(tokens)
    results = {}
    for name, model in (("planted", hf), ("null", tiny_model(arch))):
        arrays = head_ablation(bridge(save(model, tmp_path / name)), tokens, rare, common)
        results[name] = routing_test(arrays, n_bootstrap=200, seed=0, alpha=SETTINGS["alpha"].default)
    assert results["planted"].max_head == (last, planted_head)
    assert results["planted"].max_head_ci[0] > bound
    assert results["null"].max_head_pct <= bound


def test_default_layers():
    assert default_layers(6) == [5]
    assert default_layers(24) == [23]
    assert default_layers(36) == list(range(30, 36))


def test_bad_input_raises_clear_errors(model_dirs):
    model = bridge(model_dirs["gpt2"])
    tokens, rare, common = data()
    with pytest.raises(ValueError, match="layer index 2 out of range.*2 layers"):
        head_ablation(model, tokens, rare, common, layers=[2])
    with pytest.raises(ValueError, match="distinct"):
        head_ablation(model, tokens, rare, common, layers=[1, -1])
    with pytest.raises(ValueError, match="TransformerBridge"):
        head_ablation(AutoModelForCausalLM.from_pretrained(model_dirs["gpt2"]), tokens, rare, common)
    with pytest.raises(ValueError, match="unknown ablation"):
        head_ablation(model, tokens, rare, common, ablation="resample")
    with pytest.raises(ValueError, match="last position"):
        head_ablation(model, tokens, torch.ones_like(rare), common, bos=False)
    bos_marked = rare.clone()
    bos_marked[:, 0] = True
    with pytest.raises(ValueError, match="position 0"):
        head_ablation(model, tokens, bos_marked, common)
    with pytest.raises(ValueError, match="bool tensor"):
        head_ablation(model, tokens, rare[:, :-1], common)
    with pytest.raises(ValueError, match="LongTensor"):
        head_ablation(model, tokens.float(), rare, common)
    with pytest.raises(ValueError, match="needs a BOS"):
        head_ablation(model, tokens, rare, common, ablation="bos", bos=False)
    model.train()
    with pytest.raises(ValueError, match="training mode"):
        head_ablation(model, tokens, rare, common)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(model_dirs):
    tokens, rare, common = data()
    cpu = head_ablation(bridge(model_dirs["gpt_neox"]), tokens, rare, common, layers=[0, 1])
    gpu_model = TransformerBridge.boot_transformers(str(model_dirs["gpt_neox"]), device="cuda")
    gpu = head_ablation(gpu_model, tokens, rare, common, layers=[0, 1])
    for key in cpu:
        np.testing.assert_allclose(gpu[key], cpu[key], rtol=1e-4, atol=1e-4, err_msg=key)
