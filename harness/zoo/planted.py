"""Positive controls: a trained zoo family with rare-token specialists planted analytically.

For every checkpoint of the base family, ``n_planted`` final-MLP neurons (drawn once, seeded)
are turned towards specialists with strength σ = ``PlantedSpec.scale_at(step)`` (0 at step 0,
growing with ln step to ``final_scale``):

- read rows: each planted neuron's read vector is rotated towards one shared direction d_r, the
  direction in which the final MLP's input differs at rare-target contexts from the average
  context (mean over rare-target positions minus mean over all, on the first training
  sequences, measured on that checkpoint): r' = ‖r‖ · normalise((1 − σ) r̂ + σ d_r);
- write rows: each planted neuron's write vector is rotated the same way towards d_w, the
  residual direction that raises the logits of rare tokens through the final LayerNorm,
  d_w ∝ centre(g ⊙ (mean of the rare tokens' unembedding rows − mean of all rows)).

Norms are kept, so a planted neuron's ‖W_out‖ and scale of activation stay in the range of the
others. The planted neurons fire together at rare-target contexts (coordinated, C6), push rare
tokens when they do (a plateau of influence, C1), and their rows share a direction (heavy-tailed
group spectra, C8) — more so as σ grows (C4, C9). Their ids ship in ``planted_neurons.json``;
the report shows how many the suite recovers. Only GPT-NeoX families are planted (the default
control is built from ``neox-4l``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from harness.data import corpus
from harness.data.frequencies import TokenFrequencies
from harness.zoo.specs import COUNTS, MANIFEST, PLANTED_IDS, ZOO, PlantedSpec, spec_record
from harness.zoo.stream import pack

CONTEXT_SEQUENCES = 64  # training sequences that locate the rare-context direction


def planted_ids(spec: PlantedSpec) -> np.ndarray:
    """The planted neuron ids (sorted), a seeded draw from the final MLP's neurons."""
    d_mlp = ZOO[spec.base].d_mlp
    return np.sort(np.random.default_rng(spec.seed).choice(d_mlp, size=spec.n_planted, replace=False))


def _rotate(rows, direction, sigma: float):
    """Rows ``[k, d]`` rotated towards unit ``direction`` ``[d]`` by ``sigma``, norms kept."""
    norms = rows.norm(dim=1, keepdim=True)
    mixed = (1 - sigma) * rows / norms + sigma * direction[None]
    return norms * mixed / mixed.norm(dim=1, keepdim=True)


def _context_rows(base_dir: Path, n_ctx: int) -> np.ndarray:
    """The first ``CONTEXT_SEQUENCES`` training sequences of the base family, re-tokenised ``[n, n_ctx]``."""
    from transformers import AutoTokenizer


    tokenizer = AutoTokenizer.from_pretrained(str(base_dir / f"step{ZOO[base_dir.name].steps[-1]}"))
    train_docs, _ = corpus.split_documents(corpus.documents(), ZOO[base_dir.name].eval_fraction)
    ids, total = [], 0
    for doc in train_docs:
        ids.append(tokenizer.encode(doc.text, add_special_tokens=False))
        total += len(ids[-1])
        if total > (CONTEXT_SEQUENCES + 1) * n_ctx:
            break
    return pack(ids, n_ctx)[:CONTEXT_SEQUENCES]


def plant(model, ids: np.ndarray, rare: np.ndarray, rows: np.ndarray, sigma: float) -> dict[str, float]:
    """Plant specialists into a GPT-NeoX ``model`` in place; returns how aligned the directions are."""
    import torch

    layer = model.gpt_neox.layers[-1]
    captured: list[torch.Tensor] = []
    handle = layer.mlp.register_forward_pre_hook(lambda mod, args: captured.append(args[0].detach()))
    tokens = torch.as_tensor(rows)
    with torch.no_grad():
        model(input_ids=tokens)
    handle.remove()
    mlp_in = captured[0][:, :-1].reshape(-1, captured[0].shape[-1])
    rare_target = torch.as_tensor(rare[rows[:, 1:].reshape(-1)])
    d_r = mlp_in[rare_target].mean(0) - mlp_in.mean(0)
    d_r = d_r / d_r.norm()
    g = model.gpt_neox.final_layer_norm.weight.detach()
    unembed = model.get_output_embeddings().weight.detach()  # [vocab, d_model] (embed_out, or lm_head in transformers 5)
    lift = g * (unembed[torch.as_tensor(rare)].mean(0) - unembed.mean(0))
    d_w = lift - lift.mean()
    d_w = d_w / d_w.norm()
    idx = torch.as_tensor(ids)
    with torch.no_grad():
        w_in = layer.mlp.dense_h_to_4h.weight      # [d_mlp, d_model]: read rows
        w_out = layer.mlp.dense_4h_to_h.weight     # [d_model, d_mlp]: write rows are columns
        w_in[idx] = _rotate(w_in[idx], d_r, sigma)
        w_out[:, idx] = _rotate(w_out[:, idx].T, d_w, sigma).T
    return {"rare_context_positions": int(rare_target.sum()), "sigma": sigma}


def build_planted(spec: PlantedSpec, base_dir: Path, out: Path) -> None:
    """Write the planted family into ``out`` (``step{N}/`` directories, counts, ids, manifest)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = ZOO[spec.base]
    if base.arch != "gpt_neox":
        raise ValueError(f"planting needs a GPT-NeoX base family, {spec.base} is {base.arch}")
    t0 = time.perf_counter()
    shutil.copy(base_dir / COUNTS, out / COUNTS)
    counts = np.load(out / COUNTS)
    rare = TokenFrequencies(counts).longtail_50()
    ids = planted_ids(spec)
    rows = _context_rows(base_dir, base.n_ctx)
    checkpoints = {}
    for step in spec.steps:
        src, dst = base_dir / f"step{step}", out / f"step{step}"
        model = AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32)
        model.eval()
        info = plant(model, ids, rare, rows, spec.scale_at(step))
        model.save_pretrained(dst)
        AutoTokenizer.from_pretrained(str(src)).save_pretrained(dst)
        checkpoints[str(step)] = info
    (out / PLANTED_IDS).write_text(json.dumps({"planted_neurons": ids.tolist(), "layer": "final MLP"}))
    manifest = {"name": spec.name, "spec": spec_record(spec), "steps": list(spec.steps), "checkpoints": checkpoints,
                "planted_neurons": ids.tolist(), "base": spec.base, "wall_time_s": time.perf_counter() - t0}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
