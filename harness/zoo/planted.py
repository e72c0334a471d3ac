"""Positive controls: a trained zoo family with rare-token specialists planted analytically.

For every checkpoint of the base family, ``n_planted`` final-MLP neurons (drawn once, seeded)
are turned into specialists, then interpolated with their original parameters by strength
σ = ``PlantedSpec.scale_at(step)`` (0 at step 0, growing with ln step to ``final_scale``):

- read rows: each planted neuron's read vector is rotated towards one shared direction d_r, the
  direction in which the final MLP's input differs at rare-target contexts from the average
  context (mean over rare-target positions minus mean over all, on the first training sequences,
  measured on that checkpoint): normalise((1 − σ) r̂ + σ d_r), then scaled and its bias moved so
  that its pre-activation keeps its mean and SD over those contexts — the planted neurons fire
  together, and their activations keep the scale of ordinary neurons (the covariates the matched
  controls are chosen on);
- write rows: each planted neuron's write vector is rotated by σ towards −E[∂CE/∂r], the mean
  gradient of the target's cross-entropy with respect to the final residual over the rare-target
  positions of those sequences (through the real final LayerNorm and unembedding), signed by
  whether the neuron fires above its mean there: it then helps rare targets when it fires, so
  mean-ablating it costs rare-target loss (a positive influence), and the planted write rows share
  one direction. (Measured on the way:
  rotating the write rows towards the mean unembedding of rare tokens instead *lowered* rare-target
  loss when the neurons were ablated — raising all rare logits alike does not help a particular one;
  larger read or write norms made the planted group overshoot together, so that ablating one of them
  *lowered* rare-target loss; and training the planted rows on a rare-weighted loss over 512
  sequences helped rare targets by a nearly constant push, which mean ablation cannot see.)

How strong the control is, measured on ``neox-tiny-planted`` (256 neurons, 16 planted): the
planted neurons have positive influence but rank 44–198 of 256 — the rare-context signal the read
rows can use in a 2-layer model is weak. The default ``neox-4l-planted`` is larger; the README
gives what the suite recovers there.

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

CONTEXT_SEQUENCES = 512 # training sequences on which the planted directions are measured


def planted_ids(spec: PlantedSpec) -> np.ndarray:
    """The planted neuron ids (sorted), a seeded draw from the final MLP's neurons."""
    d_mlp = ZOO[spec.base].d_mlp
    return np.sort(np.random.default_rng(spec.seed).choice(d_mlp, size=spec.n_planted, replace=False))


def _rotate(rows, direction, sigma: float):
    """Rows ``[k, d]`` rotated towards unit directions ``[1 or k, d]`` by ``sigma``, norms kept."""
    norms = rows.norm(dim=1, keepdim=True)
    mixed = (1 - sigma) * rows / norms + sigma * direction
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
    """Plant specialists into a GPT-NeoX ``model`` in place (module docstring); returns what was done."""
    import torch
    import torch.nn.functional as F

    layer = model.gpt_neox.layers[-1]
    captured: dict[str, torch.Tensor] = {}
    hooks = [layer.mlp.register_forward_pre_hook(lambda mod, args: captured.__setitem__("mlp_in", args[0].detach())),
             model.gpt_neox.final_layer_norm.register_forward_pre_hook(
                 lambda mod, args: captured.__setitem__("resid", args[0].detach()))]
    with torch.no_grad():
        model(input_ids=torch.as_tensor(rows))
    for h in hooks:
        h.remove()
    d_model = captured["mlp_in"].shape[-1]
    mlp_in = captured["mlp_in"][:, :-1].reshape(-1, d_model)
    resid = captured["resid"][:, :-1].reshape(-1, d_model)
    targets = torch.as_tensor(rows[:, 1:].reshape(-1))
    rare_target = torch.as_tensor(rare)[targets]
    d_r = mlp_in[rare_target].mean(0) - mlp_in.mean(0)
    d_r = d_r / d_r.norm()
    # ∂ CE / ∂ residual at every rare-target position: the direction a write must take to help there
    r = resid[rare_target].clone().requires_grad_()
    with torch.enable_grad():
        loss = F.cross_entropy(model.get_output_embeddings()(model.gpt_neox.final_layer_norm(r)),
                               targets[rare_target], reduction="sum")
        grad = torch.autograd.grad(loss, r)[0]                                 # [n_rare, d_model]
    idx = torch.as_tensor(ids)
    w_in, b_in = layer.mlp.dense_h_to_4h.weight, layer.mlp.dense_h_to_4h.bias    # read rows [d_mlp, d_model]
    w_out = layer.mlp.dense_4h_to_h.weight                                        # write rows are its columns
    with torch.no_grad():
        read0, bias0 = w_in[idx].clone(), b_in[idx].clone()
        pre0 = mlp_in @ read0.T + bias0                                          # [n_positions, k]
        read = _rotate(read0, d_r[None], sigma)
        read *= pre0.std(0)[:, None] / (mlp_in @ read.T).std(0)[:, None]        # pre-activation SD kept
        bias = pre0.mean(0) - mlp_in.mean(0) @ read.T                            # and its mean
        act = F.gelu(mlp_in @ read.T + bias)                                     # [n_positions, k]
        excess = act[rare_target].mean(0) - act.mean(0)                          # [k] above the mean at rare targets
        helps = -torch.sign(excess)[:, None] * grad.mean(0)[None]                # [k, d_model]
        w_in[idx], b_in[idx] = read, bias
        w_out[:, idx] = _rotate(w_out[:, idx].T, helps / helps.norm(dim=1, keepdim=True), sigma).T
    return {"rare_context_positions": int(rare_target.sum()), "sigma": sigma,
            "mean_excess_activation": float(excess.mean())}


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
