"""harness.measure.heads: hook-based head/layer ablation on tiny GPT-NeoX, GPT-2 and Llama TransformerBridges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from harness.analysis.routing import routing_effects
from harness.claims.settings import SETTINGS
from harness.measure.heads import ALL_HEADS, ablation_fwd_hooks, feeding_layers, head_ablation
from harness.subjects.loading import load_model

ARCHS = ("gpt_neox", "gpt2", "llama")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sizes(tiny_tokenizer, tiny_model) -> dict[str, int]:
    """vocab, n_layers, n_heads, d_head of the tiny models."""
    cfg = tiny_model("gpt2", vocab_size=len(tiny_tokenizer)).config
    return {"vocab": len(tiny_tokenizer), "n_layers": cfg.n_layer, "n_heads": cfg.n_head,
            "d_head": cfg.n_embd // cfg.n_head}


def plant_routing_head(hf: torch.nn.Module, part, head: int, d_head: int, scale: float) -> None:
    """Scale one final-layer head's output weights and sharpen the logits (final norm gain);
    ``part`` is the ``hf_part`` fixture."""
    columns = slice(head * d_head, (head + 1) * d_head)
    with torch.no_grad():
        weight = part(hf, "attn_out", -1).weight
        if hf.config.model_type == "gpt2":  # Conv1D weight is [in, out]
            weight[columns] *= scale
        else:
            weight[:, columns] *= scale
        part(hf, "final_norm").weight *= scale


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, one_thread, tiny_model, save_model) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {arch: save_model(tiny_model(arch), root / arch) for arch in ARCHS}


def bridge(directory: Path) -> torch.nn.Module:
    return load_model(f"hf:{directory}")


def data(sizes, n_seq: int = 5, seq_len: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random tokens with BOS (id 0) first; rare = target id in the upper half of the vocabulary."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, sizes["vocab"], (n_seq, seq_len), generator=g)
    tokens[:, 0] = 0
    return tokens, *masks(tokens, sizes["vocab"])


def masks(tokens: torch.Tensor, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    rare = torch.zeros_like(tokens, dtype=torch.bool)
    common = torch.zeros_like(rare)
    rare[:, 1:-1] = tokens[:, 2:] >= vocab // 2
    common[:, 1:-1] = tokens[:, 2:] < vocab // 2
    return rare, common


def reference(hf, part, tokens, rare, common, layers, ablation, specialists, n_heads, d_head) -> dict[str, np.ndarray]:
    """Hand-written ablation on the plain HF model: overwrite a head's slice of the attention
    output projection's input at positions >= 1 (mean over those positions, or zero); the specialists'
    activations are the final MLP output projection's input. ``part`` is the ``hf_part`` fixture."""

    def run(layer=None, pre_hook=None):
        """Per-position target CE [n, seq − 1] and the specialists' activations [n, seq, n_spec]."""
        seen = {}
        handles = [part(hf, "mlp_out", -1).register_forward_pre_hook(
            lambda mod, args: seen.__setitem__("post", args[0][..., specialists].double()))]
        if pre_hook is not None:
            handles.append(part(hf, "attn_out", layer).register_forward_pre_hook(pre_hook))
        with torch.no_grad():
            logits = hf(tokens).logits
        for handle in handles:
            handle.remove()
        ce = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2).double(), tokens[:, 1:],
                                               reduction="none")
        return ce, seen["post"]

    def sums(ce, act, name):
        return {f"{g}_{m}": (v * mask[:, : v.shape[1]]).sum(1).numpy()
                for g, mask in (("rare", rare), ("common", common)) for m, v in (("ce", ce), (name, act))}

    captured = {}
    handles = [part(hf, "attn_out", L).register_forward_pre_hook(
        lambda mod, args, L=L: captured.__setitem__(L, args[0].clone())) for L in layers]
    clean_ce, clean_act = run()
    for handle in handles:
        handle.remove()
    out = {f"clean_{k}": v for k, v in sums(clean_ce, clean_act.abs().sum(-1), "act").items()}
    per_variant = []
    for L in layers:
        mean = captured[L][:, 1:].double().mean(dim=(0, 1)).float()
        for head in [*range(n_heads), None]:
            cols = slice(None) if head is None else slice(head * d_head, (head + 1) * d_head)

            def overwrite(mod, args, cols=cols, mean=mean):
                x = args[0].clone()
                x[:, 1:, cols] = 0.0 if ablation == "zero" else mean[cols]
                return (x,)

            ce, act = run(L, overwrite)
            per_variant.append(sums(ce, (act - clean_act).abs().sum(-1), "dact"))
    for key in per_variant[0]:
        stacked = np.array([v[key] for v in per_variant]).reshape(len(layers), n_heads + 1, -1)
        out[f"head_{key}"], out[f"layer_{key}"] = stacked[:, :n_heads], stacked[:, n_heads]
    return out


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("ablation", ["mean", "zero"])
def test_hook_ablation_equals_hand_written_reference(model_dirs, sizes, hf_part, arch, ablation):
    tokens, rare, common = data(sizes)
    specialists = [3, 17, 40]
    got = head_ablation(bridge(model_dirs[arch]), tokens, rare, common, layers=[0, 1], specialists=specialists,
                        ablation=ablation, batch_size=7)
    hf = AutoModelForCausalLM.from_pretrained(model_dirs[arch], attn_implementation="eager").eval()
    want = reference(hf, hf_part, tokens, rare, common, [0, 1], ablation, specialists, sizes["n_heads"],
                     sizes["d_head"])
    assert set(want) <= set(got)
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-5, err_msg=key)
    assert got["head_rare_ce"].shape == (2, sizes["n_heads"], 5) and got["layer_common_dact"].shape == (2, 5)
    assert got["head_rare_dact"].max() > 0  # the specialists' inputs do move
    np.testing.assert_array_equal(got["rare_count"], rare.sum(1).numpy())
    np.testing.assert_array_equal(got["layers"], [0, 1])


@pytest.mark.parametrize("ablation", ["mean", "zero", "bos"])
def test_batched_variants_equal_one_variant_per_pass(model_dirs, sizes, ablation):
    tokens, rare, common = data(sizes, n_seq=4)
    model = bridge(model_dirs["gpt_neox"])
    one = head_ablation(model, tokens, rare, common, layers=[0, 1], specialists=[5, 9], ablation=ablation, batch_size=1)
    many = head_ablation(model, tokens, rare, common, layers=[0, 1], specialists=[5, 9], ablation=ablation,
                         batch_size=64)
    for key in one:
        np.testing.assert_allclose(many[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("arch", ARCHS)
def test_ablation_edits_only_the_ablated_head(model_dirs, sizes, arch):
    """Each batch replica ablates one head: its z takes the ablated value at positions >= 1
    (the mean; the BOS value vector for 'bos'); every other head, layer and position is clean."""
    model = bridge(model_dirs[arch])
    tokens, _, _ = data(sizes, n_seq=3)
    n, n_layers, n_heads = tokens.shape[0], sizes["n_layers"], sizes["n_heads"]
    last = n_layers - 1
    _, clean = model.run_with_cache(tokens)
    mean_z = {last: clean[f"blocks.{last}.attn.hook_z"][:, 1:].mean(dim=(0, 1))}
    variants = [(last, h) for h in range(n_heads)] + [(last, ALL_HEADS)]
    for ablation in ("mean", "bos"):
        seen = {}
        hooks = ablation_fwd_hooks(variants, n, ablation=ablation, mean_z=mean_z)
        capture = [(name, lambda x, hook, name=name: seen.__setitem__(name, x.clone()))
                   for name in (f"blocks.{L}.attn.hook_{p}" for L in range(n_layers) for p in ("z", "v"))]
        with torch.no_grad():
            model.run_with_hooks(tokens.repeat(len(variants), 1), fwd_hooks=hooks + capture)
        for L in range(n_layers):  # values are never edited; earlier layers are untouched
            torch.testing.assert_close(seen[f"blocks.{L}.attn.hook_v"],
                                       clean[f"blocks.{L}.attn.hook_v"].repeat(len(variants), 1, 1, 1))
        torch.testing.assert_close(seen["blocks.0.attn.hook_z"], clean["blocks.0.attn.hook_z"].repeat(len(variants), 1, 1, 1))
        z, z_clean = seen[f"blocks.{last}.attn.hook_z"], clean[f"blocks.{last}.attn.hook_z"]
        v = clean[f"blocks.{last}.attn.hook_v"]  # grouped-query attention (Llama): one value head per group
        v = v.repeat_interleave(n_heads // v.shape[2], dim=2)
        for k, (_, head) in enumerate(variants):
            rows = z[k * n:(k + 1) * n]
            ablated = list(range(n_heads)) if head == ALL_HEADS else [head]
            kept = [h for h in range(n_heads) if h not in ablated]
            torch.testing.assert_close(rows[:, :, kept], z_clean[:, :, kept], rtol=0, atol=0)
            torch.testing.assert_close(rows[:, 0], z_clean[:, 0], rtol=0, atol=0)
            want = mean_z[last][ablated].expand_as(rows[:, 1:, ablated]) if ablation == "mean" \
                else v[:, :1, ablated].expand_as(rows[:, 1:, ablated])
            torch.testing.assert_close(rows[:, 1:, ablated], want)


@pytest.mark.parametrize("arch", ARCHS)
def test_planted_routing_head_breaks_the_single_head_bound(tmp_path, sizes, tiny_model, save_model, hf_part, arch):
    """One final-layer head carries the prediction of data sampled from the planted model:
    ablating it raises the rare-target loss far above C7's single-head bound; the unplanted
    model, on the same data, stays inside the bound."""
    bound = SETTINGS["c7_head_margin_pct"].default
    level = 1 - 2 * SETTINGS["alpha"].default
    planted_head, last = 2, sizes["n_layers"] - 1
    hf = tiny_model(arch)
    plant_routing_head(hf, hf_part, planted_head, sizes["d_head"], scale=30.0)
    g = torch.Generator().manual_seed(1)
    tokens = torch.zeros(24, 1, dtype=torch.long)
    with torch.no_grad():
        for _ in range(15):
            probs = torch.softmax(hf(tokens).logits[:, -1], dim=-1)
            tokens = torch.cat([tokens, torch.multinomial(probs, 1, generator=g)], dim=1)
    rare, common = masks(tokens, sizes["vocab"])
    results = {}
    for name, model in (("planted", hf), ("null", tiny_model(arch))):
        arrays = head_ablation(bridge(save_model(model, tmp_path / name)), tokens, rare, common, layers=[0, last])
        results[name] = routing_effects(arrays, np.arange(tokens.shape[0]), "loss", 200, 0, level)
    assert results["planted"].max_head_at == (last, planted_head)
    assert results["planted"].max_head_ci[0] > bound
    assert results["null"].max_head <= bound


def test_feeding_layers():
    """Sequential blocks: the final attention layer feeds the final MLP; parallel blocks: it runs beside it."""
    assert feeding_layers(6, False, 1) == [5]
    assert feeding_layers(6, True, 1) == [4]
    assert feeding_layers(36, False, 6) == list(range(30, 36))
    assert feeding_layers(4, True, 10) == [0, 1, 2]
    with pytest.raises(ValueError, match="no attention layer feeds"):
        feeding_layers(1, True, 1)


def test_bad_input_raises_clear_errors(model_dirs, sizes):
    model = bridge(model_dirs["gpt2"])
    tokens, rare, common = data(sizes)
    with pytest.raises(ValueError, match="layer index 2 out of range.*2 layers"):
        head_ablation(model, tokens, rare, common, layers=[2])
    with pytest.raises(ValueError, match="distinct"):
        head_ablation(model, tokens, rare, common, layers=[1, -1])
    with pytest.raises(ValueError, match="TransformerBridge"):
        head_ablation(AutoModelForCausalLM.from_pretrained(model_dirs["gpt2"]), tokens, rare, common, layers=[1])
    with pytest.raises(ValueError, match="unknown ablation"):
        head_ablation(model, tokens, rare, common, layers=[1], ablation="resample")
    with pytest.raises(ValueError, match="last position"):
        head_ablation(model, tokens, torch.ones_like(rare), common, layers=[1], bos=False)
    bos_marked = rare.clone()
    bos_marked[:, 0] = True
    with pytest.raises(ValueError, match="position 0"):
        head_ablation(model, tokens, bos_marked, common, layers=[1])
    with pytest.raises(ValueError, match="bool tensor"):
        head_ablation(model, tokens, rare[:, :-1], common, layers=[1])
    with pytest.raises(ValueError, match="LongTensor"):
        head_ablation(model, tokens.float(), rare, common, layers=[1])
    with pytest.raises(ValueError, match="needs a BOS"):
        head_ablation(model, tokens, rare, common, layers=[1], ablation="bos", bos=False)
    model.train()
    with pytest.raises(ValueError, match="training mode"):
        head_ablation(model, tokens, rare, common, layers=[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(model_dirs, sizes):
    tokens, rare, common = data(sizes)
    cpu = head_ablation(bridge(model_dirs["gpt_neox"]), tokens, rare, common, layers=[0, 1])
    gpu = head_ablation(load_model(f"hf:{model_dirs['gpt_neox']}", device="cuda"), tokens, rare, common, layers=[0, 1])
    for key in cpu:
        np.testing.assert_allclose(gpu[key], cpu[key], rtol=1e-4, atol=1e-4, err_msg=key)
