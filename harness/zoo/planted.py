"""Positive controls: a trained zoo family with rare-token specialists planted analytically.

For every checkpoint of the base family, ``n_planted`` = k final-MLP neurons (drawn once, seeded)
are turned into specialists, fitted on the first ``CONTEXT_SEQUENCES`` training sequences of
that checkpoint, and their parameters are interpolated linearly with the original ones by strength
σ = ``PlantedSpec.scale_at(step)`` (0 at step 0, growing with ln step to ``final_scale``):

- read rows: the shared rare-context direction d_r (mean of the final MLP's input over the
  rare-target positions minus its mean over all) plus ``read_mix`` (``PlantedSpec``) of the neuron's own direction
  (a seeded random mix of the input's top ``MIXED_COMPONENTS`` principal components, orthogonal
  to d_r), each part in units of its SD over the contexts; scaled to the neuron's original
  pre-activation SD and biased to a mean of −``FIRING_OFFSET`` SDs. The planted neurons fire
  together at rare-target contexts (coordinated, C6) but each in its own upper tail, so they
  are not copies of one another;
- write rows: one shared write vector u, neuron i writing u / (k · e_i), where e_i is its mean
  activation above its overall mean at rare targets — every neuron carries an equal share of the
  group's push. A neuron that does not fire above its mean at rare targets (e_i ≤ 0; early
  checkpoints of a barely trained model: 3 of 16 at step 8 of ``neox-2l``, whose rare-target contexts
  have 1–12% less pre-activation variance under a convex GELU) carries none: its planted write row
  is 0, and k counts the others. u is the vector of fixed norm that minimises the rare-target
  cross-entropy of the checkpoint with the planted neurons' old writes removed and the new ones added (through the
  real final LayerNorm and unembedding; L-BFGS over its direction). The norm is set so that
  the planted write rows average the layer's median row norm: a planted neuron's ‖W_out‖ and
  scale of activation stay in the range of ordinary neurons (the covariates matched controls
  are chosen on). The rows share one direction (heavy-tailed group spectra, C8), more so as σ
  grows (C4, C9).

Why this construction (measured on ``neox-4l`` step 1000, 17 planted of 1,024, influence on the
710 rare-target positions of the evaluation sequences): the first version rotated every read row
onto d_r alone and every write row onto the mean negative gradient; the 17 then acted as one
neuron that overshot (rare-target loss 8.103 nats unplanted, 8.183 planted, optimum at half the
writes), so ablating any one of them *lowered* rare-target loss: influence −0.008 … −0.060 nats,
ranks 996–1023, 0 of 17 recovered. A group firing on one pattern can share at most the gain of
one direction, and at its optimum each member's marginal effect is zero. Writing each neuron's
own rare tokens does not transfer (the held-out documents' rare tokens are other names: the 17
most frequent rare targets of the training contexts occur twice in 710 evaluation positions).
What works: the fitted write direction (worth 0.26 nats of rare-target loss where the mean
gradient gave 0.05), and firing in overlapping but not identical tails, so that each neuron's
ablation removes its own part of the push. Built this way (construction 2, 917 s for 13
checkpoints on 2 cores) the 17 planted neurons rank 1–22 of 1,024 by rare-target influence
(0.0025–0.0042 nats; the top unplanted neuron 0.0047), their activations correlate 0.71 at rare
targets, and the claims run recovers 14 of them (README, "The positive control"). With half of each
neuron's own direction in its read row (``read_mix`` 0.5, construction 2) the control's plateau was
borderline: its flatness excess over the null, 0.273–0.275, lay just below C1's smallest effect 0.3 and its
interval's upper end straddled it (0.312 on the first machine's zoo, 0.297 on a rebuild on another), so the
rebuild turned C1 (and C4 with it) from supported to contradicted. The lever is the
read side, not the write norm (write rows at 0.6× and 1.6× the layer's median norm: excess 0.216, 0.184;
1.0×: 0.273): at ``read_mix`` 0.25 the 17 fire more alike at rare targets and the plateau is flat (excess
0.324 at the final checkpoint), at 0 — every read row the shared direction alone — they act as one again
(excess −0.095). Construction 4 (``read_mix`` 0.25, 686 s on 2 cores) recovers 15 of 17 among 19
specialists, with C1, C2, C4, C6 and C8 supported on the control. How alike the planted neurons may fire
depends on the model, so ``read_mix`` is part of each planted family's spec: on the 2-layer ``neox-2l``
(d_model 64, 16 planted of 256) 0.25 costs C1 (flatness excess 0.136, CI [−0.104, 0.313], p = 0.16;
10 of 16 recovered) where 0.5 gives it (excess 0.224, CI [0.048, 0.328], p = 0.03), so ``neox-2l-planted``
keeps 0.5.

It does not work on the 2-layer ``neox-tiny`` (32 updates, 256 neurons): the planted neurons rank
212–255 by influence, on the fitting sequences as on held-out ones. There the neurons' pre-activation
SDs are small (median 0.48), GELU is nearly linear over their range, and the planted neurons' mean
activation is negative (−0.064, against an excess at rare targets of +0.046), so the fitted push is
dominated by its constant part (−0.47 per unit of push, the variation +1): u is fitted where the
*mean* write helps, and the variation — what ablating one neuron removes — hurts. Fitting u on the
variation alone, with the MLP's output bias keeping the mean write, makes their influence positive
there (ranks 43–134 on 192 held-out sequences), but no group of 16 reaches the top of that model:
within the layer's write norms the whole group gains ≈ 0.02 nats (0.05 at its optimum, 4 × the
median norm) while its top neuron alone is worth 0.016. Trained 512 updates (``neox-2l``, the
model-level calibration's family) the same model takes them: ranks 0–28 of 256. The variation fit
(with one write vector for all, shares ∝ e_i) was built for ``neox-4l`` too and measured: ranks 0–21
at 0.004–0.009 nats each (rare-target loss 8.63 → 8.48 nats), but the unequal shares bent the top of
the curve — C1 contradicted on the control (flatness 0.67, excess below the smallest effect), C6
inconclusive, C2 inconclusive, C4 contradicted — so it was not adopted: on ``neox-4l``, whose
planted neurons' mean activation is +0.017 (constant part 0.05 of the push), this construction's u
is nearly the variation's anyway.

Their ids ship in ``planted_neurons.json``; the report shows how many the suite recovers. Only
GPT-NeoX families are planted (the default control is built from ``neox-4l``).
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

CONTEXT_SEQUENCES = 2048  # training sequences on which the planted rows are fitted
MIXED_COMPONENTS = 32     # principal components of the MLP input that the own directions mix
FIRING_OFFSET = 1.0       # planted pre-activation mean, in (negative) SDs: each neuron fires in its upper tail
FIT_ITERATIONS = 100      # L-BFGS iterations of the shared write direction


def planted_ids(spec: PlantedSpec) -> np.ndarray:
    """The planted neuron ids (sorted), a seeded draw from the final MLP's neurons."""
    d_mlp = ZOO[spec.base].d_mlp
    return np.sort(np.random.default_rng(spec.seed).choice(d_mlp, size=spec.n_planted, replace=False))


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


def _unit(x):
    """Rows of ``x`` ``[..., d]`` scaled to unit norm."""
    return x / x.norm(dim=-1, keepdim=True)


def _capture(model, rows: np.ndarray):
    """The final MLP's input and the final norm's input ``[n_positions, d_model]`` at every position of ``rows``
    but the last of each sequence (it has no target), in batches of 64 sequences."""
    import torch

    layer, captured = model.gpt_neox.layers[-1], {"mlp_in": [], "resid": []}
    hooks = [layer.mlp.register_forward_pre_hook(lambda mod, args: captured["mlp_in"].append(args[0][:, :-1])),
             model.gpt_neox.final_layer_norm.register_forward_pre_hook(
                 lambda mod, args: captured["resid"].append(args[0][:, :-1]))]
    with torch.no_grad():
        for b in range(0, len(rows), 64):
            model(input_ids=torch.as_tensor(rows[b:b + 64]))
    for h in hooks:
        h.remove()
    return tuple(torch.cat(captured[k]).reshape(-1, captured[k][0].shape[-1]) for k in ("mlp_in", "resid"))


def _read_rows(mlp_in, rare_target, pre_sd, seed: int, read_mix: float):
    """Planted read rows ``[k, d_model]`` and biases ``[k]`` (module docstring): the shared rare-context direction
    plus ``read_mix`` of each neuron's own seeded mix of principal components, scaled to the neuron's original
    pre-activation SD ``pre_sd`` ``[k]``, biased to a mean of −``FIRING_OFFSET`` SDs."""
    import torch

    mu = mlp_in.mean(0)
    shared = _unit(mlp_in[rare_target].mean(0) - mu)
    centred = mlp_in[::4] - mu
    _, _, basis = torch.linalg.svd(centred, full_matrices=False)
    basis = basis[:MIXED_COMPONENTS]                                               # [m, d_model], m ≤ d_model
    mix = torch.as_tensor(np.random.default_rng(seed).standard_normal((pre_sd.shape[0], basis.shape[0])),
                          dtype=mlp_in.dtype)
    own = (mix * (centred @ basis.T).std(0)) @ basis                              # [k, d_model]
    own = own - (own @ shared)[:, None] * shared
    direction = shared / (mlp_in @ shared).std() + read_mix * own / (mlp_in @ own.T).std(0)[:, None]
    read = direction * (pre_sd / (mlp_in @ direction.T).std(0))[:, None]
    return read, -mu @ read.T - FIRING_OFFSET * pre_sd


def _shared_write(model, resid, pattern, targets, radius: float):
    """The write vector ``[d_model]`` of norm ``radius`` that, added with weight ``pattern`` ``[n]`` to ``resid``
    ``[n, d_model]``, minimises the mean cross-entropy of ``targets`` through the real final norm and unembedding
    (L-BFGS over its direction, from the mean negative gradient)."""
    import torch
    import torch.nn.functional as F

    head, norm = model.get_output_embeddings(), model.gpt_neox.final_layer_norm

    def loss(z):
        return F.cross_entropy(head(norm(resid + pattern[:, None] * (radius * _unit(z))[None])), targets)

    with torch.enable_grad():
        r = resid.clone().requires_grad_()
        start = -torch.autograd.grad(F.cross_entropy(head(norm(r)), targets), r)[0].mean(0)
        z = start.detach().clone().requires_grad_()
        opt = torch.optim.LBFGS([z], max_iter=FIT_ITERATIONS, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            value = loss(z)
            value.backward()
            return value
        opt.step(closure)
    return radius * _unit(z.detach())


def plant(model, ids: np.ndarray, rare: np.ndarray, rows: np.ndarray, sigma: float, seed: int,
          read_mix: float) -> dict[str, float]:
    """Plant specialists into a GPT-NeoX ``model`` in place (module docstring) at strength ``sigma``, their own
    read directions drawn with ``seed`` and weighted ``read_mix``; returns what was done."""
    import torch
    import torch.nn.functional as F

    if sigma == 0:
        return {"sigma": 0.0}
    mlp = model.gpt_neox.layers[-1].mlp
    w_in, b_in, w_out = mlp.dense_h_to_4h.weight, mlp.dense_h_to_4h.bias, mlp.dense_4h_to_h.weight
    idx, k = torch.as_tensor(ids), len(ids)
    mlp_in, resid = _capture(model, rows)
    targets = torch.as_tensor(rows[:, 1:].reshape(-1))
    rare_target = torch.as_tensor(rare)[targets]
    with torch.no_grad():
        read0, bias0, write0 = w_in[idx].clone(), b_in[idx].clone(), w_out[:, idx].T.clone()   # [k, d_model] …
        pre0 = mlp_in @ read0.T + bias0                                                        # [n_positions, k]
        read, bias = _read_rows(mlp_in, rare_target, pre0.std(0), seed, read_mix)
        act = F.gelu(mlp_in @ read.T + bias)
        excess = act[rare_target].mean(0) - act.mean(0)                      # [k], activation units
        firing = excess > 0                                                  # [k]: those that can carry a share
        if not bool(firing.any()):
            raise ValueError(f"no planted neuron fires above its mean at rare targets (excess {excess.tolist()})")
        n_firing, e = int(firing.sum()), excess[firing]
        radius = float(n_firing * w_out.norm(dim=0).median() / (1 / e).mean())  # their write norms average the median
        without = resid[rare_target] - F.gelu(pre0[rare_target]) @ write0    # the planted neurons' old writes removed
        shared = _shared_write(model, without, (act[rare_target][:, firing] / (n_firing * e)).sum(1),
                               targets[rare_target], radius)
        write = torch.zeros_like(write0)                                     # [k, d_model]
        write[firing] = shared[None] / (n_firing * e)[:, None]
        w_in[idx] = (1 - sigma) * read0 + sigma * read
        b_in[idx] = (1 - sigma) * bias0 + sigma * bias
        w_out[:, idx] = ((1 - sigma) * write0 + sigma * write).T
    return {"rare_context_positions": int(rare_target.sum()), "sigma": sigma,
            "mean_excess_activation": float(excess.mean()), "shared_write_norm": radius, "firing": n_firing}


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
        info = plant(model, ids, rare, rows, spec.scale_at(step), spec.seed, spec.read_mix)
        model.save_pretrained(dst)
        AutoTokenizer.from_pretrained(str(src)).save_pretrained(dst)
        checkpoints[str(step)] = info
    (out / PLANTED_IDS).write_text(json.dumps({"planted_neurons": ids.tolist(), "layer": "final MLP"}))
    manifest = {"name": spec.name, "spec": spec_record(spec), "steps": list(spec.steps), "checkpoints": checkpoints,
                "planted_neurons": ids.tolist(), "base": spec.base, "wall_time_s": time.perf_counter() - t0}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
