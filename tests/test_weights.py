"""harness.measure.weights: the read/write row convention, on tiny random GPT-NeoX, GPT-2 and Llama models.

An ungated MLP (GPT-NeoX, GPT-2) has one read row per neuron; a gated one (Llama) has a gate
and an up row, with post_i = act(ln2(x)·gate[i]) · (ln2(x)·up[i]). Every row is checked against
the raw Hugging Face tensors and against the pre-/post-activations of a real forward pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.measure.weights import final_mlp_weights
from harness.subjects.loading import load_model

SENTENCES = ["the quick brown fox jumps over the lazy dog", "a rare zebra token appears once in a while"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["gpt_neox", "gpt2", "llama"])
def tiny(request, tmp_path_factory, one_thread, tiny_model, save_model, tiny_tokenizer):
    """(arch, TransformerBridge, its HF model, tokenizer) of a tiny random model saved and loaded as a subject.

    Norm gains and biases are perturbed, so a wrong tensor cannot pass."""
    path = save_model(tiny_model(request.param, perturb=0.3), tmp_path_factory.mktemp(request.param))
    bridge = load_model(f"hf:{path}")
    return request.param, bridge, bridge.original_model, tiny_tokenizer


def _hf_rows(hf, part) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The final MLP's read rows by name and its write rows, each [d_mlp, d_model], from the raw HF modules
    (``part`` is the ``hf_part`` fixture)."""
    conv1d = hf.config.model_type == "gpt2"

    def rows(name: str, neuron_is_output: bool) -> torch.Tensor:
        """nn.Linear stores [out, in], GPT-2's Conv1D [in, out]; rows are one per neuron."""
        w = part(hf, name, -1).weight
        return w if neuron_is_output != conv1d else w.T

    write = rows("mlp_out", neuron_is_output=False)
    if hf.config.model_type in ("gpt_neox", "gpt2"):
        return {"read": rows("mlp_in", True)}, write
    return {"gate": rows("mlp_gate", True), "up": rows("mlp_in", True)}, write


def test_rows_are_the_hf_tensors(tiny, hf_part):
    _, bridge, hf, _ = tiny
    w = final_mlp_weights(bridge)
    read_hf, write_hf = _hf_rows(hf, hf_part)
    d = (bridge.cfg.d_mlp, bridge.cfg.d_model)
    assert list(w.read) == list(read_hf) and w.write.shape == d
    for name, rows in read_hf.items():
        assert w.read[name].shape == d and w.read[name].dtype == np.float32
        np.testing.assert_array_equal(w.read[name], rows.detach().numpy())
    np.testing.assert_array_equal(w.write, write_hf.detach().numpy())
    assert list(w.matrices()) == [*read_hf, "write"]


def test_read_rows_reproduce_pre_activations_and_write_rows_the_output(tiny):
    arch, bridge, _, tokenizer = tiny
    L = bridge.cfg.n_layers - 1
    tokens = tokenizer(SENTENCES, return_tensors="pt", padding=True).input_ids
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens)
    w = final_mlp_weights(bridge)
    mlp = bridge.blocks[L].mlp
    ln2 = cache[f"blocks.{L}.ln2.hook_out"].numpy()
    pre = cache[f"blocks.{L}.mlp.hook_pre"].numpy()
    post = cache[f"blocks.{L}.mlp.hook_post"].numpy()
    close = {"rtol": 1e-4, "atol": 1e-5}
    if arch == "llama":  # post = silu(ln2 · gate) · (ln2 · up); neither projection has a bias
        assert mlp.b_in is None and mlp.b_out is None
        np.testing.assert_allclose(ln2 @ w.read["gate"].T, pre, **close)
        np.testing.assert_allclose(ln2 @ w.read["up"].T, cache[f"blocks.{L}.mlp.hook_pre_linear"].numpy(), **close)
        gate = torch.as_tensor(ln2 @ w.read["gate"].T)
        np.testing.assert_allclose(torch.nn.functional.silu(gate).numpy() * (ln2 @ w.read["up"].T), post, **close)
        b_out = 0.0
    else:
        b_in = mlp.b_in.detach().numpy()
        neuron = bridge.cfg.d_mlp // 3
        np.testing.assert_allclose(ln2 @ w.read["read"][neuron] + b_in[neuron], pre[..., neuron], **close)
        np.testing.assert_allclose(ln2 @ w.read["read"].T + b_in, pre, **close)
        b_out = mlp.b_out.detach().numpy()
    np.testing.assert_allclose(post @ w.write + b_out, cache[f"blocks.{L}.hook_mlp_out"].numpy(), **close)
    # GPT-NeoX's MLP reads LayerNorm of the block input (parallel residual); GPT-2's and Llama's the mid residual.
    source = "hook_resid_pre" if arch == "gpt_neox" else "hook_resid_mid"
    torch.testing.assert_close(cache[f"blocks.{L}.ln2.hook_in"], cache[f"blocks.{L}.{source}"])


def test_other_layers_and_bad_layer(tiny):
    arch, bridge, _, _ = tiny
    first = final_mlp_weights(bridge, layer=0)
    read_name = "read" if arch != "llama" else "up"
    np.testing.assert_array_equal(first.read[read_name], bridge.blocks[0].mlp.W_in.detach().numpy().T)
    with pytest.raises(ValueError, match="out of range"):
        final_mlp_weights(bridge, layer=bridge.cfg.n_layers)


def test_processed_weights_are_refused(tmp_path, tiny_model, save_model):
    bridge = load_model(f"hf:{save_model(tiny_model('gpt2'), tmp_path)}")
    bridge.enable_compatibility_mode(disable_warnings=True)
    with pytest.raises(ValueError, match="processed"):
        final_mlp_weights(bridge)
