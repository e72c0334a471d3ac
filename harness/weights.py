"""Reading a loaded model's MLP weights in the project's convention (measurement side; torch).

Convention: both matrices are returned as ``[d_mlp, d_model]`` numpy float32 arrays, one row
per neuron, copied from the unprocessed Hugging Face weights:

- ``W_read`` row i: the vector neuron i reads, ``pre_i = ln2(x) · W_read[i] + b_in[i]``
  (``blocks.{L}.mlp.hook_pre = blocks.{L}.ln2.hook_out @ W_read.T + b_in``);
- ``W_write`` row i: the vector neuron i writes, ``mlp_out = post @ W_write + b_out``.

Where the tensors come from (checked by tests/test_weights.py on tiny random models):

- TransformerLens 4.3 ``TransformerBridge``: ``model.blocks[L].mlp.W_in`` is
  ``[d_model, d_mlp]`` (so ``W_read = W_in.T``), ``model.blocks[L].mlp.W_out`` is
  ``[d_mlp, d_model]`` (``W_write = W_out``), ``b_in`` is ``[d_mlp]``.
- Hugging Face GPT-NeoX (Pythia): ``gpt_neox.layers[L].mlp.dense_h_to_4h.weight`` is
  ``[d_mlp, d_model]`` (``nn.Linear``: = ``W_read``); ``dense_4h_to_h.weight`` is
  ``[d_model, d_mlp]`` (= ``W_write.T``). The MLP reads ``post_attention_layernorm`` of the
  block input (parallel residual): TransformerLens's ``blocks.{L}.ln2``.
- Hugging Face GPT-2: ``transformer.h[L].mlp.c_fc.weight`` is ``[d_model, d_mlp]``
  (``Conv1D``: = ``W_read.T``); ``c_proj.weight`` is ``[d_mlp, d_model]`` (= ``W_write``).

The authors read the raw Hugging Face weights, so a bridge whose weights were processed
(``enable_compatibility_mode()`` folds LayerNorm into ``W_in`` and centres ``W_out``) is
refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def final_mlp_weights(model: Any, layer: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(W_read [d_mlp, d_model], W_write [d_mlp, d_model], b_in [d_mlp])`` of one MLP layer.

    ``model``: a TransformerLens ``TransformerBridge`` with unprocessed weights. ``layer``
    indexes the blocks like a Python list; the default -1 is the final MLP.
    """
    n_layers = int(model.cfg.n_layers)
    if not -n_layers <= layer < n_layers:
        raise ValueError(f"layer {layer} is out of range for a model with {n_layers} layers")
    if getattr(model, "_weights_processed", False):
        raise ValueError(
            "the bridge's weights were processed (enable_compatibility_mode folds LayerNorm into "
            "W_in and centres W_out); load a fresh bridge without processing to read the raw weights"
        )
    mlp = model.blocks[layer].mlp
    if getattr(mlp, "W_gate", None) is not None:
        raise ValueError("gated MLPs have two read matrices; only ungated MLPs (GPT-NeoX, GPT-2) are supported")
    W_in, W_out, b_in = (_numpy(t) for t in (mlp.W_in, mlp.W_out, mlp.b_in))
    d_model, d_mlp = int(model.cfg.d_model), int(model.cfg.d_mlp)
    expected = {"W_in": (d_model, d_mlp), "W_out": (d_mlp, d_model), "b_in": (d_mlp,)}
    got = {"W_in": W_in.shape, "W_out": W_out.shape, "b_in": b_in.shape}
    if got != expected:
        raise ValueError(f"unexpected MLP weight shapes {got}; TransformerBridge convention is {expected}")
    return np.ascontiguousarray(W_in.T), W_out, b_in


def _numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().float().cpu().numpy().copy()
