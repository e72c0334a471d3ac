"""Reading a loaded model's final-MLP weights in the project's convention (measurement side; torch).

Convention: every matrix is returned as ``[d_mlp, d_model]`` numpy float32, one row per neuron,
copied from the unprocessed Hugging Face weights (``harness.analysis.spectra.MLPWeights``):

- read rows: an ungated MLP (GPT-2, GPT-NeoX) has one, ``read`` row i with
  ``pre_i = ln2(x) · read[i] + b_in[i]``; a gated MLP (Llama, Mistral, Qwen, Gemma, OLMo) has
  two, ``gate`` and ``up``, with ``post_i = act(ln2(x) · gate[i]) · (ln2(x) · up[i])``;
- ``write`` row i: the vector neuron i adds, ``mlp_out = post @ write + b_out``.

Where the tensors come from (checked by tests/test_weights.py on tiny random models):
TransformerLens 4.3 ``TransformerBridge`` gives ``blocks[L].mlp.W_in`` ``[d_model, d_mlp]``
(read = W_inᵀ; for a gated MLP this is the *up* projection), ``W_gate`` ``[d_model, d_mlp]``
(gate = W_gateᵀ) and ``W_out`` ``[d_mlp, d_model]`` (write = W_out). A bridge whose weights
were processed (``enable_compatibility_mode()`` folds LayerNorm into ``W_in`` and centres
``W_out``) is refused.

``layer_alphas`` is WeightWatcher's power-law α of each whole matrix's ESD, computed by the
``weightwatcher`` package itself (context for C8, not its statistic).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from harness.analysis.spectra import MLPWeights


def final_mlp_weights(model: Any, layer: int = -1) -> MLPWeights:
    """The read and write rows of one MLP layer (default: the final one) of a ``TransformerBridge``."""
    n_layers = int(model.cfg.n_layers)
    if not -n_layers <= layer < n_layers:
        raise ValueError(f"layer {layer} is out of range for a model with {n_layers} layers")
    if getattr(model, "_weights_processed", False):
        raise ValueError(
            "the bridge's weights were processed (enable_compatibility_mode folds LayerNorm into "
            "W_in and centres W_out); load a fresh bridge without processing to read the raw weights"
        )
    mlp = model.blocks[layer].mlp
    d_model, d_mlp = int(model.cfg.d_model), int(model.cfg.d_mlp)
    W_in, W_out = _numpy(mlp.W_in), _numpy(mlp.W_out)
    gate = getattr(mlp, "W_gate", None)
    expected = {"W_in": (d_model, d_mlp), "W_out": (d_mlp, d_model)}
    got = {"W_in": W_in.shape, "W_out": W_out.shape}
    if gate is not None:
        gate = _numpy(gate)
        expected["W_gate"], got["W_gate"] = (d_model, d_mlp), gate.shape
    if got != expected:
        raise ValueError(f"unexpected MLP weight shapes {got}; TransformerBridge convention is {expected}")
    read = {"read": np.ascontiguousarray(W_in.T)} if gate is None else {
        "gate": np.ascontiguousarray(gate.T), "up": np.ascontiguousarray(W_in.T)}
    return MLPWeights(read=read, write=W_out)


def layer_alphas(weights: MLPWeights) -> dict[str, dict[str, float]]:
    """WeightWatcher's ESD power-law fit of each matrix: ``{name: {alpha, alpha_weighted, xmin, D, num_spikes}}``."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("weightwatcher").setLevel(logging.ERROR)
        import weightwatcher

        out = {}
        for name, rows in weights.matrices().items():
            linear = torch.nn.Linear(rows.shape[1], rows.shape[0], bias=False)
            with torch.no_grad():
                linear.weight.copy_(torch.as_tensor(rows))
            details = weightwatcher.WeightWatcher(model=torch.nn.Sequential(linear)).analyze(
                plot=False, randomize=False, mp_fit=False)
            row = details.iloc[0]
            out[name] = {"alpha": float(row["alpha"]), "alpha_weighted": float(row["alpha_weighted"]),
                         "xmin": float(row["xmin"]), "D": float(row["D"]), "num_spikes": int(row["num_pl_spikes"])}
    return out


def _numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().float().cpu().numpy().copy()
