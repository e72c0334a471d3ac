"""harness.weights: the read/write convention, checked on tiny random GPT-NeoX and GPT-2 models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.measure.weights import final_mlp_weights

D_MODEL, D_MLP, N_LAYERS = 32, 48, 2
SENTENCES = ["the quick brown fox jumps over the lazy dog", "a rare zebra token appears once in a while"]


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(SENTENCES * 5, trainer=trainers.BpeTrainer(
        vocab_size=200, special_tokens=["<|endoftext|>", "<unk>"]))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", unk_token="<unk>")


def _hf_model(arch: str, vocab_size: int):
    from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    if arch == "gpt_neox":
        model = GPTNeoXForCausalLM(GPTNeoXConfig(
            vocab_size=vocab_size, hidden_size=D_MODEL, num_hidden_layers=N_LAYERS, num_attention_heads=4,
            intermediate_size=D_MLP, max_position_embeddings=64, bos_token_id=0, eos_token_id=0))
    else:
        model = GPT2LMHeadModel(GPT2Config(
            vocab_size=vocab_size, n_embd=D_MODEL, n_layer=N_LAYERS, n_head=4, n_inner=D_MLP, n_positions=64,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0))
    with torch.no_grad():  # non-trivial biases and LayerNorm gains, so a wrong tensor cannot pass
        for name, param in model.named_parameters():
            if param.ndim == 1:
                param.normal_(1.0 if "ln" in name or "norm" in name else 0.0, 0.3)
    return model


@pytest.fixture(scope="module", params=["gpt_neox", "gpt2"])
def tiny(request, tmp_path_factory):
    """(arch, TransformerBridge, HF model, tokenizer) of a tiny random model saved and booted from disk."""
    from transformer_lens.model_bridge import TransformerBridge

    torch.set_num_threads(1)
    tokenizer = _tokenizer()
    path = tmp_path_factory.mktemp(request.param)
    _hf_model(request.param, tokenizer.vocab_size).save_pretrained(path)
    tokenizer.save_pretrained(path)
    bridge = TransformerBridge.boot_transformers(str(path), device="cpu")
    return request.param, bridge, bridge.original_model, tokenizer


def test_shapes_and_hf_tensors(tiny):
    arch, bridge, hf, _ = tiny
    W_read, W_write, b_in = final_mlp_weights(bridge)
    assert W_read.shape == (D_MLP, D_MODEL) and W_write.shape == (D_MLP, D_MODEL) and b_in.shape == (D_MLP,)
    if arch == "gpt_neox":  # nn.Linear: dense_h_to_4h.weight [d_mlp, d_model], dense_4h_to_h.weight [d_model, d_mlp]
        mlp = hf.gpt_neox.layers[-1].mlp
        read_hf, write_hf = mlp.dense_h_to_4h.weight, mlp.dense_4h_to_h.weight.T
    else:  # Conv1D: c_fc.weight [d_model, d_mlp], c_proj.weight [d_mlp, d_model]
        mlp = hf.transformer.h[-1].mlp
        read_hf, write_hf = mlp.c_fc.weight.T, mlp.c_proj.weight
    np.testing.assert_array_equal(W_read, read_hf.detach().numpy())
    np.testing.assert_array_equal(W_write, write_hf.detach().numpy())


def test_read_rows_reproduce_pre_activations_and_write_rows_the_output(tiny):
    arch, bridge, _, tokenizer = tiny
    L = N_LAYERS - 1
    tokens = tokenizer(SENTENCES, return_tensors="pt").input_ids
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens)
    W_read, W_write, b_in = final_mlp_weights(bridge)
    ln2 = cache[f"blocks.{L}.ln2.hook_out"].numpy()
    pre = cache[f"blocks.{L}.mlp.hook_pre"].numpy()
    neuron = D_MLP // 3
    np.testing.assert_allclose(ln2 @ W_read[neuron] + b_in[neuron], pre[..., neuron], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ln2 @ W_read.T + b_in, pre, rtol=1e-4, atol=1e-5)
    b_out = bridge.blocks[L].mlp.b_out.detach().numpy()
    post = cache[f"blocks.{L}.mlp.hook_post"].numpy()
    np.testing.assert_allclose(post @ W_write + b_out, cache[f"blocks.{L}.hook_mlp_out"].numpy(), rtol=1e-4, atol=1e-5)
    # GPT-NeoX's MLP reads LayerNorm of the block input (parallel residual); GPT-2's the mid residual.
    source = "hook_resid_pre" if arch == "gpt_neox" else "hook_resid_mid"
    torch.testing.assert_close(cache[f"blocks.{L}.ln2.hook_in"], cache[f"blocks.{L}.{source}"])


def test_other_layers_and_bad_layer(tiny):
    _, bridge, _, _ = tiny
    W_read0, _, _ = final_mlp_weights(bridge, layer=0)
    np.testing.assert_array_equal(W_read0, bridge.blocks[0].mlp.W_in.detach().numpy().T)
    with pytest.raises(ValueError, match="out of range"):
        final_mlp_weights(bridge, layer=N_LAYERS)


def test_processed_weights_are_refused(tmp_path):
    from transformer_lens.model_bridge import TransformerBridge

    tokenizer = _tokenizer()
    _hf_model("gpt2", tokenizer.vocab_size).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    bridge = TransformerBridge.boot_transformers(str(tmp_path), device="cpu")
    bridge.enable_compatibility_mode(disable_warnings=True)
    with pytest.raises(ValueError, match="processed"):
        final_mlp_weights(bridge)
