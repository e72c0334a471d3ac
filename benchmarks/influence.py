"""The exact influence sweep: against one hooked forward pass per neuron, against its floor, and as it scales.

    python -m benchmarks.influence [--shape zoo-4l|pythia-160m|…] [--positions 2048] [--device cpu|cuda]

``sweep_vs_hooks``: a random-weight model of a named shape (``benchmarks.models``) on seeded
random tokens; the sweep (``harness.measure.influence.influence``, mean ablation, the kernel the
harness picks: ``torch.compile`` from 2·10⁹ terms, its warm-up timed apart) against a
TransformerLens hook loop (one ``run_with_hooks`` per neuron, timed on a sample of neurons — the
top ones by exact mean Δℓ and seeded random ones — and extrapolated to d_mlp), their largest
difference, and the sweep against its floor.

The floor (``floor_seconds``): the measured throughput of a ``torch.compile``d, fused
exp-and-sum over a preallocated float32 tensor of about 2²¹ terms (rows of d_vocab, small enough
to stay in cache, so the exponentials and not memory set the pace), times the sweep's term count
positions × d_mlp × d_vocab. It is the cost of the exp-and-accumulate alone, which the exact
effect cannot avoid.

``scaling``: the sweep (eager kernel, default CPU chunks) on synthetic readouts as positions,
d_mlp and vocabulary each double: time should double, and peak memory stay bounded by the chunk
tensor, M [d_mlp, d_vocab] and the output [positions, d_mlp].
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from benchmarks.measure import Result, peak_memory, timed
from benchmarks.models import SHAPES, Shape, random_bridge
from harness.measure.influence import COMPILE_MIN_TERMS, DEFAULT_CHUNKS, Readout, final_readout, influence

FLOOR_TERMS = 2**21
TARGET_RATIO = 50.0      # sweep at least 50× faster than the hook loop (issue #13)
TARGET_FLOOR = 2.0       # sweep within 2× of the exp-and-accumulate floor
TARGET_AGREEMENT = 1e-4  # nats: the sweep is exact, the hook loop its definition
SCALING_BASE = (256, 512, 4096)  # positions, d_mlp, vocabulary of the scaling table's first row


@dataclass
class Inputs:
    """What the sweep needs, plus a per-neuron baseline: ``baseline(n)`` gives Δℓ [n_pos] (nats) of neuron n."""

    resid: torch.Tensor
    acts: torch.Tensor
    targets: torch.Tensor
    readout: Readout
    mean_act: torch.Tensor
    baseline: Callable[[int], torch.Tensor]

    @property
    def terms(self) -> int:
        """positions × d_mlp × d_vocab: the exp-and-accumulate terms of the exact sweep."""
        return self.acts.shape[0] * self.acts.shape[1] * self.readout.d_vocab

    def sweep(self, compile: bool | None = None, chunks: tuple[int, int] | None = None) -> torch.Tensor:
        """Δℓ [n_pos, d_mlp] (nats), mean ablation."""
        cp, cn = chunks or (None, None)
        return influence(self.resid, self.acts, self.targets, self.readout, self.mean_act, compile=compile,
                         chunk_positions=cp, chunk_neurons=cn)


def model_inputs(bridge, positions: int, seq_len: int, seed: int) -> Inputs:
    """Final residuals, activations and targets of ``bridge`` on seeded random tokens, with the hook loop."""
    cfg = bridge.cfg
    device = next(bridge.parameters()).device
    n_seq = math.ceil(positions / (seq_len - 1))
    tokens = torch.randint(0, cfg.d_vocab, (n_seq, seq_len), generator=torch.Generator().manual_seed(seed)).to(device)
    post = f"blocks.{cfg.n_layers - 1}.mlp.hook_post"

    def ce(logits: torch.Tensor) -> torch.Tensor:
        flat = logits[:, :-1].reshape(-1, logits.shape[-1])[:positions].float()
        return F.cross_entropy(flat, tokens[:, 1:].reshape(-1)[:positions], reduction="none")

    with torch.no_grad():
        logits, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n in ("ln_final.hook_in", post))
    clean = ce(logits)
    acts = cache[post][:, :-1].reshape(-1, cfg.d_mlp)[:positions]
    mean_act = acts.mean(0)

    def hook_loop(neuron: int) -> torch.Tensor:
        def hook(act, hook):
            act = act.clone()
            act[..., neuron] = mean_act[neuron]
            return act

        with torch.no_grad():
            return ce(bridge.run_with_hooks(tokens, fwd_hooks=[(post, hook)])) - clean

    resid = cache["ln_final.hook_in"][:, :-1].reshape(-1, cfg.d_model)[:positions]
    return Inputs(resid, acts, tokens[:, 1:].reshape(-1)[:positions], final_readout(bridge), mean_act, hook_loop)


def synthetic_inputs(positions: int, d_mlp: int, vocab: int, d_model: int = 256, seed: int = 0,
                     device: str = "cpu") -> Inputs:
    """Random residuals, activations and readout weights of the given sizes; the baseline recomputes
    LayerNorm and unembedding per neuron (a dense loop)."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=g).to(device)  # noqa: E731
    ro = Readout(rand(d_mlp, d_model) / math.sqrt(d_mlp), 1 + 0.1 * rand(d_model), 0.1 * rand(d_model), 1e-5,
                 0.15 * rand(d_model, vocab), torch.zeros(vocab, device=device))
    resid, acts = rand(positions, d_model), F.gelu(rand(positions, d_mlp))
    targets = torch.randint(0, vocab, (positions,), generator=g).to(device)
    mean_act = acts.mean(0)

    def logits(r: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(r, (d_model,), ro.ln_weight, ro.ln_bias, ro.eps) @ ro.W_U + ro.b_U

    clean = F.cross_entropy(logits(resid), targets, reduction="none")

    def dense_loop(neuron: int) -> torch.Tensor:
        r = resid + (mean_act[neuron] - acts[:, neuron])[:, None] * ro.W_out[neuron]
        return F.cross_entropy(logits(r), targets, reduction="none") - clean

    return Inputs(resid, acts, targets, ro, mean_act, dense_loop)


def _exp_sum(x: torch.Tensor) -> torch.Tensor:
    return x.exp().sum(-1)


def floor_seconds(terms: int, vocab: int, device: str = "cpu", repeats: int = 20) -> tuple[float, float]:
    """(seconds for ``terms`` exp-and-accumulate terms, terms per second) at the measured peak (module docstring)."""
    x = torch.randn(max(1, FLOOR_TERMS // vocab), vocab, device=device) * 0.1
    kernel = torch.compile(_exp_sum)
    kernel(x)  # compile and warm up
    _, seconds = timed(lambda: [kernel(x) for _ in range(repeats)], device)
    rate = repeats * x.numel() / seconds
    return terms / rate, rate


def sweep_vs_hooks(shape: Shape, positions: int, *, seq_len: int = 128, device: str = "cpu",
                   baseline_neurons: int = 8, seed: int = 0) -> list[Result]:
    """The sweep against the hook loop and the floor on a random model of ``shape`` (module docstring)."""
    inputs = model_inputs(random_bridge(shape, device), positions, min(seq_len, shape.n_ctx), seed)
    label = f"{shape.name}: {positions} positions × {shape.d_mlp} × {shape.vocab}"
    compile_note = ""
    if inputs.terms >= COMPILE_MIN_TERMS:  # the harness compiles here: warm the kernel up outside the timing
        head = 2 * DEFAULT_CHUNKS.get(device.split(":")[0], DEFAULT_CHUNKS["cpu"])[0]
        _, warm = timed(lambda: influence(inputs.resid[:head], inputs.acts[:head], inputs.targets[:head],
                                          inputs.readout, inputs.mean_act, compile=True), device)
        compile_note = f", torch.compile kernel (warm-up {warm:.0f} s apart)"
    with peak_memory(device) as peak:
        delta, seconds = timed(inputs.sweep, device)
    d_mlp = inputs.acts.shape[1]
    rand = torch.randperm(d_mlp, generator=torch.Generator().manual_seed(seed))[: baseline_neurons - baseline_neurons // 2]
    sample = sorted(set(delta.mean(0).argsort(descending=True)[: baseline_neurons // 2].tolist() + rand.tolist()))
    inputs.baseline(sample[0])  # warm-up
    reference, loop_s = timed(lambda: torch.stack([inputs.baseline(n) for n in sample], 1), device)
    hook_s = loop_s / len(sample) * d_mlp
    error = (delta[:, sample] - reference).abs().max().item()
    floor_s, rate = floor_seconds(inputs.terms, inputs.readout.d_vocab, device)
    measured = dict(sweep_s=seconds, hook_loop_s=hook_s, floor_s=floor_s, floor_terms_per_s=rate, terms=inputs.terms,
                    sampled_neurons=len(sample))
    return [
        Result(f"sweep vs hook loop ({label})", hook_s / seconds, "× faster", target_min=TARGET_RATIO,
               seconds=seconds, peak_mb=peak.mb, extra=measured,
               note=f"sweep {seconds:.2f} s{compile_note}; hook loop {hook_s:.0f} s extrapolated from {len(sample)} "
                    f"neurons ({loop_s / len(sample):.3f} s each)"),
        Result(f"sweep / floor ({label})", seconds / floor_s, "× floor", target_max=TARGET_FLOOR, seconds=floor_s,
               note=f"floor {floor_s:.2f} s = {inputs.terms:.3g} terms at {rate:.3g} terms/s (compiled fused "
                    f"exp+sum, preallocated {FLOOR_TERMS} terms)"),
        Result(f"max |sweep − hook loop| ({label})", error, "nats", target_max=TARGET_AGREEMENT,
               note=f"over {len(sample)} neurons × {positions} positions"),
    ]


def scaling_point(positions: int, d_mlp: int, vocab: int, device: str = "cpu", repeats: int = 3) -> dict[str, float]:
    """Best-of-``repeats`` seconds and peak memory (MB) of the eager sweep on synthetic inputs of these sizes.

    Meant for a fresh process (``scaling`` starts one per point): a sweep of 2 positions and 1
    neuron first loads the libraries, then the peak is measured from the memory in use after it.
    """
    cp, cn = DEFAULT_CHUNKS.get(device.split(":")[0], DEFAULT_CHUNKS["cpu"])
    inputs = synthetic_inputs(positions, d_mlp, vocab, device=device)
    influence(inputs.resid[:2], inputs.acts[:2, :1], inputs.targets[:2],
              dataclasses.replace(inputs.readout, W_out=inputs.readout.W_out[:1]),
              inputs.mean_act[:1], compile=False)
    with peak_memory(device) as peak:
        times = [timed(lambda: inputs.sweep(compile=False, chunks=(cp, cn)), device)[1] for _ in range(repeats)]
    bound_mb = 4 * (cp * cn * vocab + d_mlp * vocab + positions * d_mlp + 2 * cp * vocab) / 2**20
    return {"seconds": min(times), "peak_mb": peak.mb, "bound_mb": bound_mb, "terms": inputs.terms}


def scaling(device: str = "cpu", base: tuple[int, int, int] = SCALING_BASE, doublings: int = 2,
            threads: int = 2) -> list[Result]:
    """Time and peak memory of the eager sweep as positions, d_mlp and vocabulary each double from ``base``,
    each point in a fresh process (``scaling_point``)."""
    rows, base_s = [], None
    for axis in range(3):
        for k in range(0 if axis == 0 else 1, doublings + 1):
            sizes = list(base)
            sizes[axis] *= 2**k
            cmd = [sys.executable, "-m", "benchmarks.influence", "--scaling-point", *map(str, sizes),
                   "--device", device, "--threads", str(threads)]
            point = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            base_s = base_s or point["seconds"]
            rows.append(Result(f"scaling: positions {sizes[0]}, d_mlp {sizes[1]}, vocab {sizes[2]}",
                               point["seconds"] / base_s, "× base time", target_max=1.25 * 2**k,
                               seconds=point["seconds"], peak_mb=point["peak_mb"], extra=point,
                               note=f"{2**k}× the base terms; peak {point['peak_mb']:.0f} MB vs chunk + M + output "
                                    f"{point['bound_mb']:.0f} MB"))
    return rows


def main(argv: list[str] | None = None) -> None:
    from benchmarks.table import print_table

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="zoo-4l", choices=sorted(SHAPES))
    p.add_argument("--positions", type=int, default=2048)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--scaling", action="store_true", help="also the scaling table")
    p.add_argument("--scaling-point", nargs=3, type=int, help=argparse.SUPPRESS)  # internal: one point, as JSON
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.scaling_point:
        print(json.dumps(scaling_point(*args.scaling_point, device=args.device)))
        return
    rows = sweep_vs_hooks(SHAPES[args.shape], args.positions, device=args.device)
    print_table(rows + (scaling(args.device, threads=args.threads) if args.scaling else []))


if __name__ == "__main__":
    main()
