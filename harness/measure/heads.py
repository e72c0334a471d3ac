"""Attention head and layer ablation: how much each head, and each whole layer, matters (claim C7).

The measurement behind claim C7 (methods §6). For each analysed layer, every head's output
(``blocks.{L}.attn.hook_z``, ``[batch, pos, n_heads, d_head]``) is ablated one head at a time,
and all heads of the layer at once; per sequence and at rare- and common-target positions it
sums the target cross-entropy (nats), clean and ablated, and the specialists' final-MLP
activations (``blocks.{final}.mlp.hook_post``): clean Σ|a| and, under each ablation, Σ|Δa|.
The caller caches the returned numpy arrays; ``harness.analysis.routing`` turns them into
statistics. ``feeding_layers`` says which layers can reach the final MLP at all.

Conventions
-----------
- ``rare_pos[s, t]`` (likewise ``common_pos``) marks position ``t`` whose next-token prediction
  (target ``tokens[s, t + 1]``) is a rare-target position; the last position has no target.
- ``bos=True`` (the default) says ``tokens[:, 0]`` is a BOS token. Position 0 is then neither
  averaged into the per-head mean nor ablated: its residual is the attention sink that later
  layers read, and its own output never changes, so the masks must be False there.
- Ablations: ``"mean"`` replaces the head's ``z`` by its mean over all evaluation positions
  (every sequence, positions ``1..seq_len-1`` with BOS, else all); ``"zero"`` sets ``z = 0``;
  ``"bos"`` forces the head's attention pattern row to put all weight on position 0
  (``hook_pattern``), so ``z`` becomes the head's value vector at BOS.
- Batching: ablation variants (one per head, plus one whole-layer variant per layer) are a
  batch dimension. A forward holds up to ``batch_size`` rows: a chunk of sequences repeated
  once per variant, and variant ``k`` edits rows ``k*n_rows:(k+1)*n_rows`` only.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

import numpy as np
import torch

ABLATIONS = ("mean", "zero", "bos")
ALL_HEADS = -1  # head index of the whole-layer variant

Variant = tuple[int, int]  # (model layer index, head index or ALL_HEADS)
FwdHook = tuple[str, Callable[[torch.Tensor, object], torch.Tensor]]

_GROUPS = ("rare", "common")


def feeding_layers(n_layers: int, parallel_final_block: bool, count: int) -> list[int]:
    """The last ``count`` attention layers whose output can reach the final MLP's input.

    In sequential blocks (GPT-2) the final block's attention runs before its MLP, so the final
    layer and every earlier one feed it; in a parallel block (GPT-NeoX, ``use_parallel_residual``)
    the final attention runs beside the final MLP and only layers before it feed the MLP.
    """
    last = n_layers - 1 if parallel_final_block else n_layers
    if last < 1 or count < 1:
        raise ValueError(f"no attention layer feeds the final MLP of a {n_layers}-layer model (count {count})")
    return list(range(max(0, last - count), last))


def head_ablation(
    model: torch.nn.Module,
    tokens: torch.Tensor,
    rare_pos: torch.Tensor,
    common_pos: torch.Tensor,
    *,
    layers: Sequence[int],
    specialists: Sequence[int] = (),
    ablation: str = "mean",
    batch_size: int = 32,
    bos: bool = True,
) -> dict[str, np.ndarray]:
    """Clean and ablated target cross-entropy and specialist-activation sums per sequence.

    Args:
        model: a TransformerLens ``TransformerBridge`` in eval mode (any device; tokens move
            to the model's device).
        tokens: ``[n_seq, seq_len]`` token ids.
        rare_pos, common_pos: ``[n_seq, seq_len]`` bool; True at positions whose target
            (the next token) is rare / common. Last position (and position 0 with ``bos``)
            must be False.
        layers: model layer indices to analyse (negative counts from the end).
        specialists: final-MLP neuron ids whose activation change is summed (may be empty).
        ablation: ``"mean"``, ``"zero"`` or ``"bos"`` (module docstring).
        batch_size: most rows (sequences × ablation variants) in one forward pass.
        bos: ``tokens[:, 0]`` is BOS (module docstring).

    Returns:
        float64 sums over the marked positions of one sequence, for ``g`` in ``rare``, ``common``:

        - ``clean_{g}_ce`` ``[n_seq]`` target CE (nats); ``clean_{g}_act`` ``[n_seq]`` Σ|a| of the specialists
        - ``head_{g}_ce``, ``head_{g}_dact``: ``[n_layers_analysed, n_heads, n_seq]``, head ``h`` of
          layer ``layers[i]`` ablated alone (CE; Σ|Δa| of the specialists)
        - ``layer_{g}_ce``, ``layer_{g}_dact``: ``[n_layers_analysed, n_seq]``, all heads of the layer at once
        - ``{g}_count``: ``[n_seq]`` int64, marked positions per sequence
        - ``layers``: ``[n_layers_analysed]`` int64, the model layer indices analysed
    """
    n_layers, n_heads = _check_model(model)
    layers = _check_layers(layers, n_layers)
    _check_inputs(tokens, rare_pos, common_pos, ablation, batch_size, bos)
    _check_hooks(model, layers, ablation)
    spec = torch.as_tensor(np.asarray(specialists, dtype=np.int64))
    post_name = f"blocks.{n_layers - 1}.mlp.hook_post"
    first = 1 if bos else 0
    device = next(model.parameters()).device
    tokens, spec = tokens.to(device), spec.to(device)
    masks = {"rare": rare_pos.to(device), "common": common_pos.to(device)}
    n_seq = tokens.shape[0]

    with torch.inference_mode():
        clean, mean_z, clean_acts = _clean_pass(model, tokens, masks, layers, batch_size, first,
                                                ablation == "mean", post_name, spec)
        variants = [(layer, head) for layer in layers for head in [*range(n_heads), ALL_HEADS]]
        ablated = {f"{g}_{m}": np.zeros((len(variants), n_seq)) for g in _GROUPS for m in ("ce", "dact")}
        rows_per_seq_chunk = min(n_seq, max(1, batch_size // len(variants)))
        variants_per_pass = min(len(variants), max(1, batch_size // rows_per_seq_chunk))
        for start in range(0, n_seq, rows_per_seq_chunk):
            seqs = slice(start, start + rows_per_seq_chunk)
            n_rows = tokens[seqs].shape[0]
            for v0 in range(0, len(variants), variants_per_pass):
                chunk = variants[v0:v0 + variants_per_pass]
                batch = tokens[seqs].repeat(len(chunk), 1)  # row k*n_rows + i: sequence i, variant k
                seen: dict[str, torch.Tensor] = {}
                hooks = ablation_fwd_hooks(chunk, n_rows, ablation=ablation, mean_z=mean_z, first=first)
                hooks.append((post_name, _keep(seen, spec)))
                logits = model.run_with_hooks(batch, fwd_hooks=hooks, return_type="logits")
                batch_masks = {g: m[seqs].repeat(len(chunk), 1) for g, m in masks.items()}
                sums = _target_sums(logits, batch, batch_masks)
                change = (seen["acts"] - clean_acts[seqs].repeat(len(chunk), 1, 1)).abs().sum(-1)
                for g, m in batch_masks.items():
                    sums[f"{g}_dact"] = (change * m.double()).sum(1).cpu().numpy()
                for key, values in sums.items():
                    ablated[key][v0:v0 + len(chunk), seqs] = values.reshape(len(chunk), n_rows)

    out: dict[str, np.ndarray] = {"layers": np.asarray(layers, dtype=np.int64)}
    for g in _GROUPS:
        out[f"{g}_count"] = masks[g].sum(dim=1).cpu().numpy().astype(np.int64)
        out[f"clean_{g}_ce"] = clean[f"{g}_ce"]
        out[f"clean_{g}_act"] = clean[f"{g}_act"]
        for m in ("ce", "dact"):
            per_variant = ablated[f"{g}_{m}"].reshape(len(layers), n_heads + 1, n_seq)
            out[f"head_{g}_{m}"] = per_variant[:, :n_heads]
            out[f"layer_{g}_{m}"] = per_variant[:, n_heads]
    return out


def _keep(store: dict[str, torch.Tensor], spec: torch.Tensor) -> Callable:
    """A hook keeping the specialists' activations ``[batch, pos, n_spec]`` (float64) in ``store``."""
    def keep(post: torch.Tensor, hook: object) -> None:
        store["acts"] = post[..., spec].double()
    return keep


def ablation_fwd_hooks(
    variants: Sequence[Variant],
    n_rows: int,
    *,
    ablation: str,
    mean_z: dict[int, torch.Tensor] | None = None,
    first: int = 1,
) -> list[FwdHook]:
    """Forward hooks applying ``variants[k]`` to batch rows ``k*n_rows:(k+1)*n_rows``.

    A variant is ``(layer, head)`` with ``head == ALL_HEADS`` for the whole layer. Positions
    ``< first`` are left untouched. ``mean_z[layer]`` is ``[n_heads, d_head]`` (needed for
    ``ablation="mean"``). Returns ``(hook name, fn)`` pairs for ``model.run_with_hooks``.
    """
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; valid: {ABLATIONS}")
    if ablation == "mean" and mean_z is None:
        raise ValueError("ablation='mean' needs mean_z (per-layer [n_heads, d_head] means)")
    by_layer: dict[int, list[tuple[slice, slice]]] = defaultdict(list)
    for k, (layer, head) in enumerate(variants):
        heads = slice(None) if head == ALL_HEADS else slice(head, head + 1)
        by_layer[layer].append((slice(k * n_rows, (k + 1) * n_rows), heads))

    def z_hook(layer: int, edits: list[tuple[slice, slice]]) -> Callable:
        def edit_z(z: torch.Tensor, hook: object) -> torch.Tensor:  # z: [batch, pos, n_heads, d_head]
            for rows, heads in edits:
                z[rows, first:, heads] = 0.0 if ablation == "zero" else mean_z[layer][heads].to(z.dtype)
            return z
        return edit_z

    def pattern_hook(edits: list[tuple[slice, slice]]) -> Callable:
        def edit_pattern(pattern: torch.Tensor, hook: object) -> torch.Tensor:  # [batch, n_heads, q, k]
            for rows, heads in edits:
                pattern[rows, heads, first:] = 0.0
                pattern[rows, heads, first:, 0] = 1.0
            return pattern
        return edit_pattern

    if ablation == "bos":
        return [(f"blocks.{layer}.attn.hook_pattern", pattern_hook(edits)) for layer, edits in by_layer.items()]
    return [(f"blocks.{layer}.attn.hook_z", z_hook(layer, edits)) for layer, edits in by_layer.items()]


def _clean_pass(
    model: torch.nn.Module,
    tokens: torch.Tensor,
    masks: dict[str, torch.Tensor],
    layers: list[int],
    batch_size: int,
    first: int,
    want_mean: bool,
    post_name: str,
    spec: torch.Tensor,
) -> tuple[dict[str, np.ndarray], dict[int, torch.Tensor] | None, torch.Tensor]:
    """Clean sums ``{g}_ce``, ``{g}_act`` ``[n_seq]``, per-head mean z ``{layer: [n_heads, d_head]}`` and the
    specialists' clean activations ``[n_seq, seq_len, n_spec]`` (float64)."""
    z_sums: dict[int, torch.Tensor] = {}

    def accumulate(layer: int) -> Callable:
        def add_z(z: torch.Tensor, hook: object) -> None:
            total = z[:, first:].sum(dim=(0, 1), dtype=torch.float64)
            z_sums[layer] = z_sums[layer] + total if layer in z_sums else total
        return add_z

    fwd_hooks = [(f"blocks.{layer}.attn.hook_z", accumulate(layer)) for layer in layers] if want_mean else []
    n_seq = tokens.shape[0]
    clean = {f"{g}_{m}": np.zeros(n_seq) for g in _GROUPS for m in ("ce", "act")}
    acts = []
    for start in range(0, n_seq, batch_size):
        seqs = slice(start, start + batch_size)
        seen: dict[str, torch.Tensor] = {}
        logits = model.run_with_hooks(tokens[seqs], fwd_hooks=[*fwd_hooks, (post_name, _keep(seen, spec))],
                                      return_type="logits")
        for key, values in _target_sums(logits, tokens[seqs], {g: m[seqs] for g, m in masks.items()}).items():
            clean[key][seqs] = values
        size = seen["acts"].abs().sum(-1)
        for g, m in masks.items():
            clean[f"{g}_act"][seqs] = (size * m[seqs].double()).sum(1).cpu().numpy()
        acts.append(seen["acts"])
    means = None
    if want_mean:
        n_positions = n_seq * (tokens.shape[1] - first)
        means = {layer: (s / n_positions).float() for layer, s in z_sums.items()}
    return clean, means, torch.cat(acts)


def _target_sums(logits: torch.Tensor, tokens: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Per-row sums of target CE (nats) over each mask: ``{g}_ce: [rows]``."""
    logits = logits[:, :-1].float()
    target_logit = logits.gather(-1, tokens[:, 1:, None]).squeeze(-1)
    ce = (torch.logsumexp(logits, dim=-1) - target_logit).double()  # [rows, seq_len - 1]
    return {f"{g}_ce": (ce * mask[:, :-1].double()).sum(dim=1).cpu().numpy() for g, mask in masks.items()}


def _check_model(model: torch.nn.Module) -> tuple[int, int]:
    cfg = getattr(model, "cfg", None)
    if not hasattr(model, "hook_dict") or not hasattr(model, "run_with_hooks") or cfg is None:
        raise ValueError(
            f"head_ablation needs a TransformerLens TransformerBridge (hook_dict, run_with_hooks, cfg); "
            f"got {type(model).__name__}"
        )
    if model.training:
        raise ValueError("the model is in training mode (dropout active); call model.eval() first")
    return int(cfg.n_layers), int(cfg.n_heads)


def _check_layers(layers: Sequence[int], n_layers: int) -> list[int]:
    out = []
    for layer in layers:
        if not -n_layers <= int(layer) < n_layers:
            raise ValueError(f"layer index {layer} out of range: the model has {n_layers} layers "
                             f"(valid: {-n_layers}..{n_layers - 1})")
        out.append(int(layer) % n_layers)
    if not out or len(set(out)) != len(out):
        raise ValueError(f"layers must be a non-empty list of distinct layer indices, got {list(layers)}")
    return out


def _check_inputs(tokens: torch.Tensor, rare_pos: torch.Tensor, common_pos: torch.Tensor,
                  ablation: str, batch_size: int, bos: bool) -> None:
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; valid: {ABLATIONS}")
    if ablation == "bos" and not bos:
        raise ValueError("ablation='bos' moves attention to position 0, which needs a BOS token there (bos=True)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long or tokens.ndim != 2:
        raise ValueError("tokens must be a LongTensor [n_seq, seq_len]")
    if tokens.shape[0] < 1 or tokens.shape[1] < 2:
        raise ValueError(f"tokens need at least 1 sequence of at least 2 positions, got shape {tuple(tokens.shape)}")
    for name, mask in (("rare_pos", rare_pos), ("common_pos", common_pos)):
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != tokens.shape:
            raise ValueError(f"{name} must be a bool tensor of the tokens' shape {tuple(tokens.shape)}")
        if mask[:, -1].any():
            raise ValueError(f"{name} marks the last position, which has no target token")
        if bos and mask[:, 0].any():
            raise ValueError(f"{name} marks position 0 (BOS), which is never ablated; unmark it or pass bos=False")


def _check_hooks(model: torch.nn.Module, layers: list[int], ablation: str) -> None:
    point = "hook_pattern" if ablation == "bos" else "hook_z"
    missing = [f"blocks.{layer}.attn.{point}" for layer in layers if f"blocks.{layer}.attn.{point}" not in model.hook_dict]
    if missing:
        raise ValueError(f"the model has no attention hook(s) {missing}; ablation={ablation!r} needs them")
