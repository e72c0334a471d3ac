"""Final-MLP activations: the one forward pass every neuron-level measurement starts from.

For fixed evaluation sequences and a position selection, one pass over the model records,
at the selected positions, the input of the final LayerNorm (``ln_final.hook_in``), the
final MLP's post-activations (``blocks.{L}.mlp.hook_post``) and the clean next-token
cross-entropy; and, over *all* valid positions, the mean activation ā of every neuron
(the mean-ablation value) — TransformerLens hook names throughout.
"""

from __future__ import annotations

import numpy as np
import torch

from harness.data.evaldata import EvalData, PositionSelection


def final_layer(model) -> int:
    """Index of the last transformer block."""
    return int(model.cfg.n_layers) - 1


@torch.no_grad()
def record_activations(model, data: EvalData, selection: PositionSelection, batch_size: int = 16) -> dict[str, np.ndarray]:
    """One forward pass over ``data``; arrays at the selected positions.

    Returns ``resid`` [n_sel, d_model] (float32), ``acts`` [n_sel, d_mlp] (float32),
    ``clean_loss`` [n_sel] (nats), ``targets`` [n_sel], ``seq`` [n_sel], ``pos`` [n_sel],
    ``group`` [n_sel] (0 rare, k+1 common repeat k), ``mean_act`` [d_mlp] (mean over all
    valid positions), ``n_valid`` [] (number of valid positions).
    """
    layer = final_layer(model)
    post_name = f"blocks.{layer}.mlp.hook_post"
    resid_name = "ln_final.hook_in"
    device = next(model.parameters()).device
    tokens = torch.as_tensor(data.tokens, dtype=torch.long)
    valid = torch.as_tensor(data.valid)
    targets_all = torch.as_tensor(data.targets, dtype=torch.long)
    n_seq = tokens.shape[0]
    sel_seq = torch.as_tensor(selection.seq)
    sel_pos = torch.as_tensor(selection.pos)
    resid_out, acts_out, loss_out = [], [], []
    order = []
    act_sum = None
    for start in range(0, n_seq, batch_size):
        stop = min(n_seq, start + batch_size)
        logits, cache = model.run_with_cache(
            tokens[start:stop].to(device), names_filter=lambda n: n in (post_name, resid_name)
        )
        post = cache[post_name].float()
        resid = cache[resid_name].float()
        v = valid[start:stop].to(device)
        batch_sum = post[v].sum(dim=0)
        act_sum = batch_sum if act_sum is None else act_sum + batch_sum
        in_batch = torch.nonzero((sel_seq >= start) & (sel_seq < stop)).flatten()
        if in_batch.numel() == 0:
            continue
        s = (sel_seq[in_batch] - start).to(device)
        p = sel_pos[in_batch].to(device)
        tgt = targets_all[start:stop].to(device)[s, p]
        logp = torch.log_softmax(logits[s, p].float(), dim=-1)
        loss_out.append((-logp.gather(1, tgt[:, None]).squeeze(1)).cpu())
        resid_out.append(resid[s, p].cpu())
        acts_out.append(post[s, p].cpu())
        order.append(in_batch)
    idx = torch.cat(order).numpy()
    inverse = np.empty_like(idx)
    inverse[idx] = np.arange(idx.size)
    n_valid = int(data.valid.sum())
    return {
        "resid": torch.cat(resid_out).numpy()[inverse],
        "acts": torch.cat(acts_out).numpy()[inverse],
        "clean_loss": torch.cat(loss_out).numpy()[inverse],
        "targets": data.targets[selection.seq, selection.pos],
        "seq": selection.seq,
        "pos": selection.pos,
        "group": selection.group,
        "mean_act": (act_sum / n_valid).cpu().numpy(),
        "n_valid": np.asarray(n_valid),
    }
