"""Positive controls: a trained zoo family with rare-token specialists planted analytically.

For every checkpoint of the base family, ``n_planted`` final-MLP neurons (drawn once, seeded)
are turned into specialists, then interpolated with their original parameters by strength
σ = ``PlantedSpec.scale_at(step)`` (0 at step 0, growing with ln step to ``final_scale``):

- read rows: each planted neuron's read vector is rotated towards one shared direction d_r, the
  direction in which the final MLP's input differs at rare-target contexts from the average
  context (mean over rare-target positions minus mean over all, on the first training
  sequences, measured on that checkpoint): r' = ‖r‖ · normalise((1 − σ) r̂ + σ d_r), and its bias
  moved so that its mean pre-activation over those contexts is unchanged — it now fires more
  where the next token is rare, and no more on average;
- write rows: each planted neuron's write vector is rotated the same way towards d_w, the
  residual direction that raises the logits of rare tokens through the final LayerNorm,
  d_w ∝ centre(g ⊙ (mean of the rare tokens' unembedding rows − mean of all rows));
- then the planted read rows, biases and write rows (alone, the rest of the model frozen) are
  trained for ``TRAIN_STEPS`` Adam steps on the next-token loss of those training sequences with
  rare-target positions weighted ``RARE_WEIGHT`` ×, each row kept at its norm. Rotation alone is
  not enough (measured: raising all rare logits alike does not help a particular rare target, and
  ablating the rotated neurons *lowered* rare-target loss); training on rare targets alone made the
  neurons fire everywhere; the weighted loss makes them fire where a rare token comes next and help
  predict it. They start from shared directions and share one objective, so they stay aligned.

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

CONTEXT_SEQUENCES = 64  # training sequences that locate the rare-context direction and train the planted rows
TRAIN_STEPS = 150       # Adam steps of the planted rows on rare-target loss
TRAIN_LR = 1e-2
TRAIN_POSITIONS = 4096  # training positions: every rare-target one, the rest drawn from the others
RARE_WEIGHT = 4.0       # weight of a rare-target position in the training loss


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


def plant(model, ids: np.ndarray, rare: np.ndarray, rows: np.ndarray, sigma: float, steps: int = TRAIN_STEPS
          ) -> dict[str, float]:
    """Plant specialists into a GPT-NeoX ``model`` in place (module docstring); returns what was done."""
    import torch
    import torch.nn.functional as F

    layer = model.gpt_neox.layers[-1]
    captured: dict[str, torch.Tensor] = {}
    hooks = [layer.mlp.register_forward_pre_hook(lambda mod, args: captured.__setitem__("mlp_in", args[0].detach())),
             model.gpt_neox.final_layer_norm.register_forward_pre_hook(
                 lambda mod, args: captured.__setitem__("resid", args[0].detach()))]
    tokens = torch.as_tensor(rows)
    with torch.no_grad():
        model(input_ids=tokens)
    for h in hooks:
        h.remove()
    d_model = captured["mlp_in"].shape[-1]
    mlp_in = captured["mlp_in"][:, :-1].reshape(-1, d_model)
    resid = captured["resid"][:, :-1].reshape(-1, d_model)
    targets = torch.as_tensor(rows[:, 1:].reshape(-1))
    rare_target = torch.as_tensor(rare)[targets]
    d_r = mlp_in[rare_target].mean(0) - mlp_in.mean(0)
    d_r = d_r / d_r.norm()
    norm = model.gpt_neox.final_layer_norm
    unembed = model.get_output_embeddings().weight.detach()   # [vocab, d_model]
    lift = norm.weight.detach() * (unembed[torch.as_tensor(rare)].mean(0) - unembed.mean(0))
    d_w = (lift - lift.mean()) / (lift - lift.mean()).norm()
    idx = torch.as_tensor(ids)
    w_in, b_in = layer.mlp.dense_h_to_4h.weight, layer.mlp.dense_h_to_4h.bias   # read rows [d_mlp, d_model]
    w_out = layer.mlp.dense_4h_to_h.weight                                       # write rows are its columns
    with torch.no_grad():
        read0, bias0, write0 = w_in[idx].clone(), b_in[idx].clone(), w_out[:, idx].T.clone()
        read = _rotate(read0, d_r, 1.0)
        bias = bias0 + mlp_in.mean(0) @ (read0 - read).T
        write = _rotate(write0, d_w, 1.0)
        keep = _training_positions(rare_target, np.random.default_rng(0))
        x, weight = mlp_in[keep], 1.0 + (RARE_WEIGHT - 1.0) * rare_target[keep].float()
        base = resid[keep] - F.gelu(x @ read0.T + bias0) @ write0  # the residual without the planted neurons
    params = [p.requires_grad_() for p in (read, bias, write)]
    optimiser = torch.optim.Adam(params, lr=TRAIN_LR)
    for _ in range(steps):
        r = base + F.gelu(x @ params[0].T + params[1]) @ params[2]
        per_position = F.cross_entropy(model.get_output_embeddings()(norm(r)), targets[keep], reduction="none")
        loss = (weight * per_position).sum() / weight.sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        with torch.no_grad():                                      # keep every row's norm: covariates unchanged
            params[0].mul_(read0.norm(dim=1, keepdim=True) / params[0].norm(dim=1, keepdim=True))
            params[2].mul_(write0.norm(dim=1, keepdim=True) / params[2].norm(dim=1, keepdim=True))
    with torch.no_grad():
        w_in[idx] = (1 - sigma) * read0 + sigma * params[0]
        b_in[idx] = (1 - sigma) * bias0 + sigma * params[1]
        w_out[:, idx] = ((1 - sigma) * write0 + sigma * params[2]).T
    return {"rare_context_positions": int(rare_target.sum()), "sigma": sigma, "weighted_loss_trained": float(loss)}


def _training_positions(rare_target, rng: np.random.Generator):
    """Every rare-target position and other positions up to ``TRAIN_POSITIONS`` in all (a bool mask)."""
    import torch

    rare = rare_target.numpy()
    others = np.flatnonzero(~rare)
    chosen = rng.choice(others, size=min(others.size, max(0, TRAIN_POSITIONS - int(rare.sum()))), replace=False)
    mask = rare.copy()
    mask[chosen] = True
    return torch.as_tensor(mask)


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
