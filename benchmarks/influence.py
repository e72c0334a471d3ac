"""Benchmark: the exact batched influence sweep against one hooked forward pass per neuron.

    python benchmarks/influence.py [--subject zoo:neox-4l@step512 | hf:/dir] [--positions 2048]
                                   [--threads 2] [--device cpu|cuda] [--synthetic]

Default subject: a random-init GPT-NeoX of the default zoo's largest shape (4 layers,
d_model 256, d_mlp 1024, vocab 8192; ``--init-range`` widens the logits so ablation effects
are not negligible), evaluated on seeded random tokens. ``--synthetic`` needs no model and no
TransformerLens: random residuals and weights of the given shape, and the baseline is a dense
per-neuron loop (residual + δ·W_out[n], LayerNorm, unembedding) instead of the hook loop.

Prints, for mean ablation: the exact sweep (eager and torch.compile'd kernels) and the
second-order approximation against the per-neuron baseline (timed on a sample of neurons and
extrapolated to all of them), their largest differences from it, log-sum-exp terms per second
against a plain ``torch.logsumexp`` over chunks of the same size (the floor), and the exact
sweep's peak memory for two chunk sizes (max RSS of a fresh subprocess on CPU, the CUDA
allocator's peak on GPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from harness.measure.influence import DEFAULT_CHUNKS, Readout, final_readout, influence

MEMORY_POSITIONS = 256


@dataclass
class Inputs:
    """What the sweep needs, plus a per-neuron baseline: ``baseline(n)`` gives Δℓ [n_pos] of neuron n."""

    resid: torch.Tensor
    acts: torch.Tensor
    targets: torch.Tensor
    readout: Readout
    mean_act: torch.Tensor
    baseline: Callable[[int], torch.Tensor]
    baseline_name: str
    description: str


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subject", help="a subject spec, e.g. zoo:neox-4l@step512 or hf:/dir "
                                     "(default: random-init GPT-NeoX of the given shape)")
    p.add_argument("--synthetic", action="store_true", help="random tensors, dense-readout baseline, no model")
    p.add_argument("--positions", type=int, default=2048)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--d-mlp", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--init-range", type=float, default=0.15, help="std of the random-init weights")
    p.add_argument("--baseline-neurons", type=int, default=8, help="neurons timed in the baseline loop")
    p.add_argument("--chunks", default=None, help="exact sweep chunk size PxN (default: the device's)")
    p.add_argument("--memory-chunks", default="8x32,64x128", help="two chunk sizes PxN for the memory probe")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-compile", action="store_true", help="time only the eager exact kernel")
    p.add_argument("--memory-probe", help=argparse.SUPPRESS)  # internal: saved inputs of a subprocess
    return p.parse_args(argv)


def chunk_pair(text: str) -> tuple[int, int]:
    cp, cn = text.lower().split("x")
    return int(cp), int(cn)


# ---------------------------------------------------------------- inputs


def model_inputs(args: argparse.Namespace) -> Inputs:
    """Resid/acts/targets of a TransformerBridge on seeded random tokens, with the hook-loop baseline."""
    bridge, description = load_bridge(args)
    cfg = bridge.cfg
    n_seq = math.ceil(args.positions / (args.seq_len - 1))
    g = torch.Generator().manual_seed(args.seed)
    tokens = torch.randint(0, cfg.d_vocab, (n_seq, args.seq_len), generator=g).to(args.device)
    post = f"blocks.{cfg.n_layers - 1}.mlp.hook_post"
    n_pos = args.positions

    def ce(logits: torch.Tensor) -> torch.Tensor:
        flat = logits[:, :-1].reshape(-1, logits.shape[-1])[:n_pos]
        return F.cross_entropy(flat, tokens[:, 1:].reshape(-1)[:n_pos], reduction="none")

    with torch.no_grad():
        logits, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n in ("ln_final.hook_in", post))
    clean = ce(logits)
    acts = cache[post][:, :-1].reshape(-1, cfg.d_mlp)[:n_pos]
    mean_act = acts.mean(0)

    def hook_loop(neuron: int) -> torch.Tensor:
        def hook(act, hook):
            act = act.clone()
            act[..., neuron] = mean_act[neuron]
            return act

        with torch.no_grad():
            return ce(bridge.run_with_hooks(tokens, fwd_hooks=[(post, hook)])) - clean

    resid = cache["ln_final.hook_in"][:, :-1].reshape(-1, cfg.d_model)[:n_pos]
    description += (f"; {n_pos} positions of random tokens, clean CE {clean.mean():.2f} nats, "
                    f"logit SD {logits.std():.2f}")
    return Inputs(resid, acts, tokens[:, 1:].reshape(-1)[:n_pos], final_readout(bridge), mean_act,
                  hook_loop, "TransformerLens hook loop", description)


def load_bridge(args: argparse.Namespace):
    """The subject (any subject spec, through harness.loading), or a random-init GPT-NeoX."""
    if args.subject:
        from harness.subjects.loading import load_model

        return load_model(args.subject, device=args.device), args.subject
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(args.seed)
    cfg = GPTNeoXConfig(vocab_size=args.vocab, hidden_size=args.d_model, num_hidden_layers=args.layers,
                        num_attention_heads=args.heads, intermediate_size=args.d_mlp,
                        max_position_embeddings=args.seq_len, use_parallel_residual=True, hidden_dropout=0.0,
                        attention_dropout=0.0, rotary_pct=0.25, initializer_range=args.init_range)
    with tempfile.TemporaryDirectory(prefix="influence-bench-") as path:
        GPTNeoXForCausalLM(cfg).save_pretrained(path)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        bridge = TransformerBridge.boot_transformers(path, device=args.device, dtype=torch.float32)
    bridge.eval()
    return bridge, (f"random-init GPT-NeoX ({args.layers} layers, d_model {args.d_model}, d_mlp {args.d_mlp}, "
                    f"vocab {args.vocab}, init SD {args.init_range})")


def synthetic_inputs(args: argparse.Namespace) -> Inputs:
    """Random residuals and weights; the baseline recomputes LayerNorm + unembedding per neuron."""
    g = torch.Generator().manual_seed(args.seed)
    rand = lambda *shape: torch.randn(*shape, generator=g).to(args.device)  # noqa: E731
    d, n, v = args.d_model, args.d_mlp, args.vocab
    ro = Readout(rand(n, d) / math.sqrt(n), 1 + 0.1 * rand(d), 0.1 * rand(d), 1e-5, args.init_range * rand(d, v),
                 torch.zeros(v, device=args.device))
    resid, acts = rand(args.positions, d), F.gelu(rand(args.positions, n))
    targets = torch.randint(0, v, (args.positions,), generator=g).to(args.device)
    mean_act = acts.mean(0)

    def logits(r: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(r, (d,), ro.ln_weight, ro.ln_bias, ro.eps) @ ro.W_U + ro.b_U

    clean = F.cross_entropy(logits(resid), targets, reduction="none")

    def dense_loop(neuron: int) -> torch.Tensor:
        r = resid + (mean_act[neuron] - acts[:, neuron])[:, None] * ro.W_out[neuron]
        return F.cross_entropy(logits(r), targets, reduction="none") - clean

    return Inputs(resid, acts, targets, ro, mean_act, dense_loop, "dense per-neuron readout loop",
                  f"synthetic readout (d_model {d}, d_mlp {n}, vocab {v}), {args.positions} positions")


# ---------------------------------------------------------------- timing


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], torch.Tensor], device: str) -> tuple[torch.Tensor, float]:
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def floor_seconds(n_pos: int, d_mlp: int, vocab: int, chunk: tuple[int, int], device: str) -> float:
    """torch.logsumexp over [cp, cn, vocab] chunks covering n_pos × d_mlp × vocab terms."""
    cp, cn = chunk
    x = torch.randn(cp, cn, vocab, device=device)
    n_chunks = math.ceil(n_pos / cp) * math.ceil(d_mlp / cn)
    torch.logsumexp(x, -1)
    sync(device)
    start = time.perf_counter()
    for _ in range(n_chunks):
        torch.logsumexp(x, -1)
    sync(device)
    return (time.perf_counter() - start) * (n_pos * d_mlp) / (n_chunks * cp * cn)


def memory_mb(inputs: Inputs, chunk: tuple[int, int], args: argparse.Namespace) -> float:
    """Peak extra memory (MB) of the exact eager sweep at this chunk size, on the first
    MEMORY_POSITIONS positions (the chunk tensor and M do not depend on the position count)."""
    head = slice(0, MEMORY_POSITIONS)
    part = dataclasses.replace(inputs, resid=inputs.resid[head], acts=inputs.acts[head], targets=inputs.targets[head])
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        run_exact(part, chunk, compile=False)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inputs.pt"
        ro = part.readout
        torch.save({"resid": part.resid.clone(), "acts": part.acts.clone(), "targets": part.targets.clone(),
                    "mean_act": part.mean_act, "readout": [ro.W_out, ro.ln_weight, ro.ln_bias, ro.eps,
                                                           ro.W_U, ro.b_U]}, path)
        cmd = [sys.executable, __file__, "--memory-probe", str(path), "--chunks", f"{chunk[0]}x{chunk[1]}",
               "--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])["extra_mb"]


def memory_probe(args: argparse.Namespace) -> None:
    """In a fresh process: peak RSS growth of one exact eager sweep (after loading, and a warm-up
    on one neuron and two positions that loads the libraries without allocating a full M)."""
    torch.set_num_threads(args.threads)
    saved = torch.load(args.memory_probe)
    ro = Readout(*saved["readout"])
    inputs = Inputs(saved["resid"], saved["acts"], saved["targets"], ro, saved["mean_act"], lambda n: None, "", "")
    influence(inputs.resid[:2], inputs.acts[:2, :1], inputs.targets[:2], dataclasses.replace(ro, W_out=ro.W_out[:1]),
              inputs.mean_act[:1], compile=False)
    base = peak_rss_kib()
    run_exact(inputs, chunk_pair(args.chunks), compile=False)
    print(json.dumps({"extra_mb": (peak_rss_kib() - base) / 1024}))


def peak_rss_kib() -> int:
    """This process's peak resident memory (KiB): VmHWM where /proc exists, since ru_maxrss of a
    process forked from a large parent starts at the parent's size; else ru_maxrss (KiB on Linux)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_exact(inputs: Inputs, chunk: tuple[int, int], compile: bool) -> torch.Tensor:
    return influence(inputs.resid, inputs.acts, inputs.targets, inputs.readout, inputs.mean_act,
                     chunk_positions=chunk[0], chunk_neurons=chunk[1], compile=compile)


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.memory_probe:
        memory_probe(args)
        return
    torch.set_num_threads(args.threads)
    inputs = synthetic_inputs(args) if args.synthetic else model_inputs(args)
    n_pos, d_mlp = inputs.acts.shape
    vocab = inputs.readout.d_vocab
    terms = n_pos * d_mlp * vocab
    chunk = chunk_pair(args.chunks) if args.chunks else DEFAULT_CHUNKS.get(args.device.split(":")[0], DEFAULT_CHUNKS["cpu"])
    print(f"# {inputs.description}")
    print(f"# device {args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"chunk {chunk[0]}x{chunk[1]}, mean ablation")

    rows: dict[str, tuple[float, torch.Tensor]] = {}
    exact, t = timed(lambda: run_exact(inputs, chunk, compile=False), args.device)
    rows["exact (eager kernel)"] = (t, exact)
    compile_s = float("nan")
    if not args.skip_compile:
        head = slice(0, 2 * chunk[0])
        _, compile_s = timed(lambda: influence(inputs.resid[head], inputs.acts[head], inputs.targets[head],
                                               inputs.readout, inputs.mean_act, compile=True), args.device)
        compiled, t = timed(lambda: run_exact(inputs, chunk, compile=True), args.device)
        rows["exact (torch.compile kernel)"] = (t, compiled)
    approx, t = timed(lambda: influence(inputs.resid, inputs.acts, inputs.targets, inputs.readout,
                                        inputs.mean_act, mode="approx"), args.device)
    rows["approx (2nd-order cumulants)"] = (t, approx)

    # baseline on a sample: the top neurons by exact mean Δℓ and seeded random ones
    k = args.baseline_neurons
    rand = torch.randperm(d_mlp, generator=torch.Generator().manual_seed(args.seed))[: k - k // 2]
    sample = sorted(set(exact.mean(0).argsort(descending=True)[: k // 2].tolist() + rand.tolist()))
    inputs.baseline(sample[0])  # warm-up
    ref, t_ref = timed(lambda: torch.stack([inputs.baseline(n) for n in sample], 1), args.device)
    baseline_s = t_ref / len(sample) * d_mlp
    floor_s = floor_seconds(n_pos, d_mlp, vocab, chunk, args.device)

    print(f"\n{'method':32} {'time s':>10} {'× baseline':>11} {'terms/s':>10} {'max|Δ−base|':>12}")
    print(f"{inputs.baseline_name[:32]:32} {baseline_s:10.2f} {1:11.1f} {'':>10} {'':>12}"
          f"   (extrapolated from {len(sample)} neurons: {t_ref / len(sample):.3f} s/neuron)")
    for name, (t, delta) in rows.items():
        err = (delta[:, sample] - ref).abs().max().item()
        print(f"{name:32} {t:10.2f} {baseline_s / t:11.1f} {terms / t:10.3g} {err:12.2e}")
    print(f"{'floor: torch.logsumexp, chunked':32} {floor_s:10.2f} {baseline_s / floor_s:11.1f} {terms / floor_s:10.3g}")
    if not args.skip_compile:
        print(f"(torch.compile warm-up, not in the times above: {compile_s:.1f} s)")

    best_name = min((n for n in rows if n.startswith("exact")), key=lambda n: rows[n][0])
    best_s = rows[best_name][0]
    approx_err = approx - exact
    neuron_err = approx_err.mean(0).abs().max().item()
    corr = torch.corrcoef(torch.stack([approx.mean(0), exact.mean(0)]))[0, 1].item()
    print(f"\napprox vs exact: per-neuron mean error max {neuron_err:.2e} nats, per-position max "
          f"{approx_err.abs().max().item():.2e} nats, correlation of per-neuron means {corr:.6f}")
    print(f"exact per-neuron mean Δℓ: max {exact.mean(0).max().item():.3e}, median |.| "
          f"{exact.mean(0).abs().median().item():.3e} nats")

    memory = {}
    for mc in map(chunk_pair, args.memory_chunks.split(",")):
        memory[mc] = memory_mb(inputs, mc, args)
        chunk_mb = 4 * mc[0] * mc[1] * vocab / 2**20
        print(f"peak extra memory, exact eager sweep on {min(n_pos, MEMORY_POSITIONS)} positions, chunk "
              f"{mc[0]}x{mc[1]}: {memory[mc]:.0f} MB (chunk tensor {chunk_mb:.0f} MB; M {4 * d_mlp * vocab / 2**20:.0f} "
              f"MB; output {4 * min(n_pos, MEMORY_POSITIONS) * d_mlp / 2**20:.0f} MB)")

    max_exact_err = max((delta[:, sample] - ref).abs().max().item()
                        for name, (_, delta) in rows.items() if name.startswith("exact"))
    print(f"\nQUOTE: {n_pos} positions × {d_mlp} neurons × {vocab} vocab on {args.device} "
          f"({torch.get_num_threads()} threads): {best_name} {best_s:.1f} s = {baseline_s / best_s:.0f}× the "
          f"{inputs.baseline_name} ({baseline_s:.0f} s, extrapolated from {len(sample)} neurons) and "
          f"{best_s / floor_s:.2f}× the logsumexp floor; max |exact − baseline| {max_exact_err:.1e} nats; "
          f"approx {rows['approx (2nd-order cumulants)'][0]:.1f} s = "
          f"{baseline_s / rows['approx (2nd-order cumulants)'][0]:.0f}× the baseline, per-neuron mean error "
          f"{neuron_err:.1e} nats; memory {', '.join(f'{a}x{b}: {m:.0f} MB' for (a, b), m in memory.items())}")


if __name__ == "__main__":
    main()
