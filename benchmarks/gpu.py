"""One checkpoint through every measurement on a GPU: Pythia-410m, Pythia-2.8b and GPT-2 XL shapes.

    python -m benchmarks.gpu [--json PATH] [--shapes pythia-410m,…] [--dtypes float32,bfloat16]
    python -m benchmarks.gpu --small   # tiny shapes on the CPU (what tests/test_gpu_script.py runs)

For each shape (random weights, configs in ``benchmarks.models``, nothing downloaded, no network)
and each model dtype: build the model on the device, then time and take the peak GPU memory of
each measurement a checkpoint needs, at the default counts:

- activations: one cached forward pass over the evaluation tokens (128 sequences × 128 tokens);
- the exact influence sweep (float32, as the study runs it) on ``--positions`` target positions;
- C1's 199 null curves (approx kernel, and the exact kernel on ``null_exact_checks`` = 3 of them,
  as the study checks it);
- head and layer ablation of the last 3 feeding layers (C7);
- the spectra of 1,000 random groups of read and write rows (C8, on the CPU: numpy).

It prints the time and peak memory per step, the checkpoint's total (model build excluded: a real
run loads weights instead), the projected time of one family's 154 checkpoints (download excluded),
and the total of the Pythia-410m checkpoint in float32 against the 120 s target (issue #13, one
H100-class GPU). Each step reuses the ``benchmarks.influence`` and ``benchmarks.analyses`` code.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.analyses import head_ablation, null_curves, spectra
from benchmarks.influence import model_inputs
from benchmarks.measure import Result, peak_memory, timed
from benchmarks.models import SHAPES, Shape, random_bridge
from benchmarks.table import print_table, write_json
from harness.measure.weights import final_mlp_weights

TARGET_S = 120.0
CHECKPOINTS = 154        # Pythia's checkpoints per family
NULL_EXACT_CHECKS = 3    # settings: null_exact_checks
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
SMALL = {name: SHAPES[name].scaled(n_layers=2, d_model=32, n_heads=2, d_mlp=64, vocab=256, n_ctx=32)
         for name in ("pythia-410m", "pythia-2.8b", "gpt2-xl")}


def checkpoint(shape: Shape, dtype: str, device: str, positions: int, n_seq: int, seq_len: int) -> list[Result]:
    """The rows of one checkpoint of ``shape`` in ``dtype`` (module docstring), ending with its total."""
    label = f"{shape.name} {dtype}"
    start = time.perf_counter()
    bridge = random_bridge(shape, device, DTYPES[dtype])
    build_s = time.perf_counter() - start
    with peak_memory(device) as peak:
        inputs, act_s = timed(lambda: model_inputs(bridge, n_seq * (seq_len - 1), seq_len, seed=0), device)
    rows = [Result(f"{label}: activations ({n_seq}×{seq_len} tokens)", act_s, "s", seconds=act_s, peak_mb=peak.mb,
                   note=f"model build {build_s:.1f} s, not counted")]
    inputs.resid, inputs.acts, inputs.targets = (t[:positions].float() for t in (inputs.resid, inputs.acts,
                                                                                 inputs.targets))
    inputs.targets, inputs.mean_act = inputs.targets.long(), inputs.mean_act.float()
    with peak_memory(device) as peak:
        _, sweep_s = timed(inputs.sweep, device)
    rows.append(Result(f"{label}: exact influence sweep ({positions} positions)", sweep_s, "s", seconds=sweep_s,
                       peak_mb=peak.mb, note=f"{inputs.terms:.3g} terms, float32"))
    rows += null_curves(inputs, label, NULL_EXACT_CHECKS, device, extrapolate=False)
    rows += head_ablation(bridge, label, n_seq, seq_len, device)
    mlp = final_mlp_weights(bridge)
    rows += spectra(next(iter(mlp.read.values())).astype("float64"), mlp.write.astype("float64"), label)
    total = sum(r.seconds for r in rows if r.seconds is not None)
    rows.append(Result(f"{label}: one checkpoint, every measurement", total, "s",
                       target_max=TARGET_S if (shape.name, dtype) == ("pythia-410m", "float32") else None,
                       seconds=total, note=f"{CHECKPOINTS} checkpoints: {total * CHECKPOINTS / 3600:.2f} h "
                                           f"(download excluded)"))
    del bridge, inputs
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="tiny shapes on the CPU (a smoke run, not a measurement)")
    p.add_argument("--shapes", default=",".join(SMALL), help="comma-separated shapes of benchmarks.models")
    p.add_argument("--dtypes", default=",".join(DTYPES), help="model dtypes: float32, bfloat16")
    p.add_argument("--positions", type=int, default=1024, help="target positions of the influence sweep")
    p.add_argument("--json", default=None, metavar="PATH")
    args = p.parse_args(argv)
    device = "cpu" if args.small else "cuda"
    if args.small:
        torch.set_num_threads(1)
    if device == "cuda" and not torch.cuda.is_available():
        p.error("no CUDA device: run on a GPU machine, or pass --small for the CPU smoke run")
    shapes = SMALL if args.small else SHAPES
    sizes = (32, 4, 16) if args.small else (args.positions, 128, 128)
    print(f"# {torch.cuda.get_device_name() if device == 'cuda' else 'CPU (small shapes)'}, torch {torch.__version__}",
          flush=True)
    rows = []
    for name in args.shapes.split(","):
        for dtype in args.dtypes.split(","):
            new = checkpoint(shapes[name], dtype, device, *sizes)
            print_table(new)
            rows += new
    print("\n# every checkpoint")
    print_table([r for r in rows if "one checkpoint" in r.name])
    if args.json:
        write_json(args.json, rows, {"device": device, "small": args.small})


if __name__ == "__main__":
    main()
