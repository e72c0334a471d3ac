"""Time and peak memory of the measurements and analyses behind C1, C5, C7 and C8, at their default counts.

- ``null_curves``: C1's ``n_null_curves`` = 199 read→write-permuted null curves
  (``harness.measure.influence.null_curves``, direction permutation) with the ``approx`` kernel, and
  the ``exact`` kernel on ``exact_sample`` of the same permutations (extrapolated to 199 when the
  sample is smaller, as the row says), with the largest |approx − exact| over the sampled curves;
- ``regime_fits``: C1's 3-segment fits of 1,000 bootstrap and 199 null curves (``plateau_statistics``);
- ``louvain``: Louvain on the whole-layer co-activation graph (``layer_partitions``, 10 seeds) and
  the coassignment of 1,000 random groups (``coassignment``), on activations with planted factors;
- ``head_ablation``: every head and every whole layer of the last 3 layers ablated
  (``harness.measure.heads.head_ablation``, mean ablation) on 128 sequences × 128 tokens;
- ``spectra``: Hill α of 1,000 random groups of the read and the write rows (``null_hill_alphas``).

``model_analyses`` runs the model-based ones on a random-weight model of a named shape
(``benchmarks.models``), so no zoo needs building; the Louvain graph uses synthetic activations
because a random model's neurons barely co-activate (its graph would have almost no edges).
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.influence import Inputs, model_inputs
from benchmarks.measure import Result, peak_memory, timed
from benchmarks.models import Shape, random_bridge
from harness.analysis.coactivation import coassignment, layer_partitions
from harness.analysis.groups import random_groups
from harness.analysis.regimes import plateau_statistics
from harness.analysis.spectra import null_hill_alphas
from harness.measure import heads
from harness.measure.weights import final_mlp_weights
from harness.measure.influence import null_curves as measure_null_curves

N_NULL_CURVES = 199      # settings: n_null_curves
N_BOOTSTRAP = 1000       # settings: n_bootstrap
N_NULL = 1000            # settings: n_null
LOUVAIN_SEEDS = 10       # settings: louvain_seeds
THRESHOLD = 0.3          # settings: coactivation_threshold
HILL_K_FRACTION = 0.1    # settings: hill_k_fraction
ROUTING_LAYERS = 3       # settings: routing_layers
GROUP_SIZE = 16          # specialists per group (the zoo's plateaus hold 5–16 neurons)
RARE_POSITIONS = 710     # rare-target positions of zoo:neox-4l (README)


def null_curves(inputs: Inputs, where: str, exact_sample: int = N_NULL_CURVES, device: str = "cpu",
                seed: int = 0, extrapolate: bool = True) -> list[Result]:
    """C1's null curves with both kernels on ``inputs`` (module docstring); ``where`` names the model and positions.

    The exact row times ``exact_sample`` curves and, with ``extrapolate``, scales them to all 199."""
    d_mlp = inputs.acts.shape[1]
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(d_mlp) for _ in range(N_NULL_CURVES)])

    def run(mode: str, rows: np.ndarray) -> torch.Tensor:
        return measure_null_curves(inputs.resid, inputs.acts, inputs.targets, inputs.readout, inputs.mean_act, rows,
                                   rescale=True, mode=mode, device=device)

    with peak_memory(device) as approx_peak:
        approx, approx_s = timed(lambda: run("approx", perms), device)
    sample = perms[:exact_sample]
    with peak_memory(device) as exact_peak:
        exact, exact_s = timed(lambda: run("exact", sample), device)
    n_exact = N_NULL_CURVES if extrapolate else len(sample)
    scale = n_exact / len(sample)
    error = (approx[: len(sample)] - exact).abs().max().item()
    extrapolated = "" if scale == 1 else f", extrapolated from {len(sample)} curves ({exact_s:.1f} s)"
    return [
        Result(f"C1 null curves ×{N_NULL_CURVES}, approx kernel ({where})", approx_s, "s", seconds=approx_s,
               peak_mb=approx_peak.mb, note=f"max |approx − exact| {error:.2e} nats over {len(sample)} curves"),
        Result(f"C1 null curves ×{n_exact}, exact kernel ({where})", exact_s * scale, "s",
               seconds=exact_s * scale, peak_mb=exact_peak.mb, note=f"exact sweep per curve{extrapolated}"),
        Result(f"C1 null curves: max |approx − exact| ({where})", error, "nats", target_max=1e-5,
               note="the study's tolerance (null_approx_tolerance) for keeping the approx kernel"),
    ]


def regime_fits(d_mlp: int = 1024, seed: int = 0) -> list[Result]:
    """C1's plateau statistics of 1,000 bootstrap and 199 null curves of ``d_mlp`` log-normal influences."""
    rng = np.random.default_rng(seed)
    curves = np.exp(rng.normal(-6.0, 1.5, (N_BOOTSTRAP + N_NULL_CURVES, d_mlp)))
    curves[:, : d_mlp // 10] *= -1.0
    plateau_statistics(curves[:2])  # builds the binning and grid of this curve length once, as a run does
    with peak_memory() as peak:
        _, seconds = timed(lambda: plateau_statistics(curves))
    return [Result(f"C1 regime fits of {len(curves)} curves (bootstrap + nulls, d_mlp {d_mlp})", seconds, "s",
                   seconds=seconds, peak_mb=peak.mb, note=f"{1e3 * seconds / len(curves):.2f} ms per curve "
                   "(the replaced per-curve QR fitter: ≈ 4–6 ms per curve on this machine)")]


def _factor_activations(n_positions: int, d_mlp: int, n_factors: int, seed: int) -> np.ndarray:
    """Activations ``[n_positions, d_mlp]``: each neuron loads on one of ``n_factors`` shared factors plus noise."""
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((n_positions, n_factors))
    owner = rng.integers(0, n_factors, d_mlp)
    loading = rng.uniform(0.3, 1.0, d_mlp)
    return factors[:, owner] * loading + rng.standard_normal((n_positions, d_mlp))


def louvain(d_mlp: int = 1024, positions: int = RARE_POSITIONS, seed: int = 0) -> list[Result]:
    """C5's whole-layer Louvain partitions and the coassignment null of ``N_NULL`` groups."""
    x = _factor_activations(positions, d_mlp, 16, seed)
    with peak_memory() as peak:
        labels, louvain_s = timed(lambda: layer_partitions(x, kind="thresholded", threshold=THRESHOLD,
                                                           seeds=range(LOUVAIN_SEEDS)))
        groups = random_groups(d_mlp, GROUP_SIZE, np.arange(GROUP_SIZE), N_NULL, seed)
        _, null_s = timed(lambda: coassignment(labels, groups))
    return [Result(f"C5 Louvain ×{LOUVAIN_SEEDS} seeds + coassignment of {N_NULL} groups (d_mlp {d_mlp})",
                   louvain_s + null_s, "s", seconds=louvain_s + null_s, peak_mb=peak.mb,
                   note=f"Louvain {louvain_s:.1f} s, null {null_s:.2f} s; {len(np.unique(labels[0]))} communities; "
                        f"synthetic activations of 16 factors, {positions} positions")]


def head_ablation(bridge, where: str, n_seq: int = 128, seq_len: int = 128, device: str = "cpu",
                  seed: int = 0) -> list[Result]:
    """C7's head and layer ablation of ``bridge``'s last ``ROUTING_LAYERS`` feeding layers on random tokens."""
    cfg = bridge.cfg
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, cfg.d_vocab, (n_seq, seq_len), generator=g)
    marked = torch.rand(n_seq, seq_len, generator=g)
    inner = torch.zeros(n_seq, seq_len, dtype=torch.bool)
    inner[:, 1:-1] = True
    rare, common = (marked < 0.05) & inner, (marked > 0.7) & inner
    layers = heads.feeding_layers(cfg.n_layers, bool(getattr(cfg, "parallel_attn_mlp", False)), ROUTING_LAYERS)
    with peak_memory(device) as peak:
        _, seconds = timed(lambda: heads.head_ablation(bridge, tokens, rare, common, layers=layers,
                                                       specialists=range(GROUP_SIZE), ablation="mean"), device)
    return [Result(f"C7 head + layer ablation ({where}, {n_seq}×{seq_len} tokens, layers {layers})", seconds,
                   "s", seconds=seconds, peak_mb=peak.mb,
                   note=f"{len(layers) * (cfg.n_heads + 1)} ablated passes + the clean pass")]


def spectra(read: np.ndarray, write: np.ndarray, where: str, seed: int = 0) -> list[Result]:
    """C8's Hill α of ``N_NULL`` random groups of the read rows and of the write rows, each ``[d_mlp, d_model]``."""
    groups = random_groups(read.shape[0], GROUP_SIZE, np.arange(GROUP_SIZE), N_NULL, seed)
    with peak_memory() as peak:
        _, seconds = timed(lambda: [null_hill_alphas(w, groups, HILL_K_FRACTION) for w in (read, write)])
    return [Result(f"C8 Hill α of {N_NULL} groups × (read, write) ({where}, {read.shape[0]}×{read.shape[1]})",
                   seconds, "s", seconds=seconds, peak_mb=peak.mb)]


def model_analyses(shape: Shape, positions: int, n_seq: int, seq_len: int, exact_sample: int,
                   device: str = "cpu") -> list[Result]:
    """Null curves, head ablation and spectra of one random-weight model of ``shape``."""
    bridge = random_bridge(shape, device)
    inputs = model_inputs(bridge, positions, min(128, shape.n_ctx), seed=0)
    mlp = final_mlp_weights(bridge)
    where = f"{shape.name}, {positions} positions"
    return (null_curves(inputs, where, exact_sample, device) + head_ablation(bridge, shape.name, n_seq, seq_len, device)
            + spectra(next(iter(mlp.read.values())), mlp.write, shape.name))
