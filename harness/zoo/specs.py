"""The embedded model zoo's specs: every family, its checkpoints, where builds live.

``ZOO`` maps a family name to its ``ZooSpec`` (trained by ``harness.zoo.builder``) or ``PlantedSpec``
(a positive control made by ``harness.zoo.planted``); ``zoo_root()`` is ``$RARE_ZOO_DIR`` or
``~/.cache/rare-token-claims/zoo``; ``is_built`` compares a build's manifest with its spec.

Default zoo — why these sizes. Two families, ``neox-4l`` (GPT-NeoX: rotary on a quarter of
each head, attention and MLP in parallel, untied unembedding, like Pythia) and ``gpt2-4l``
(GPT-2: learned positions, sequential blocks, tied embeddings), each 4 layers, d_model 256,
8 heads, final MLP d_mlp 1024, vocabulary 8192, context 128. The analyses cost
positions × d_mlp × vocabulary per influence sweep, which caps d_mlp at 1,024 and the
vocabulary at 8,192. Eight thousand BPE types over the 2.18M-token training stream give a
real Zipf tail — half the vocabulary is seen fewer than 50 times, 1,000 types fewer than
10 — which is what the rare-token claims are about; 4 layers are the fewest that leave
three layers to build context before the final MLP. The token budget is set by the build
time: 1,000 updates of 24 × 128 tokens = 3.1M tokens each, ≈ 1.4 epochs, checkpoints at
0, 1, 2, …, 128, 250, 500, 750, 1000, in float32 (bf16 autocast, the first version's choice,
is 80× slower on CPUs without native bf16; the README gives measured build times and eval
losses, and ``manifest.json`` records them). On disk: ≈ 370 MB and 270 MB
(13 fp32 checkpoints each); ``manifest.json`` records every eval loss. The tokenizer also
holds ≈ 550 types that never occur in the training stream (unused byte symbols and BPE
intermediate merges), as real BPE vocabularies do. ``neox-tiny`` and ``gpt2-tiny``
(2 layers, d_model 64, vocabulary 1024, 32 updates of 8 × 64 tokens on the first 0.5 MB of
the train split, one thread) exist for the harness's own tests and build in seconds.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

BOS_TOKEN = "<|endoftext|>"
BOS_ID = 0
MANIFEST = "manifest.json"
COUNTS = "token_counts.npy"
PLANTED_IDS = "planted_neurons.json"
BUILD_FORMAT = 1  # bump when the build procedure changes the output for the same spec
PLANTING_CONSTRUCTION = 4  # bump when harness.zoo.planted plants differently (only planted families rebuild); a
# non-firing planted neuron carrying no share (2026-12-03) changed no build that construction 2 could make; 4:
# the read mix a spec field, 0.25 for neox-4l-planted (was 0.5 for every family; 2026-12-04); 3 was the
# variation fit of e95e7e7, reverted in d2467fc, so construction-3 builds may exist and 4 rebuilds them


def pythia_schedule(final_step: int, n_even: int) -> tuple[int, ...]:
    """Checkpoint steps: 0, then powers of two below ``final_step / n_even``, then ``n_even``
    evenly spaced steps ending at ``final_step`` (Pythia: 0, 1, …, 512, 1000, 2000, …)."""
    if final_step < 1 or not 1 <= n_even <= final_step or final_step % n_even:
        raise ValueError(f"need final_step ≥ 1 divisible by 1 ≤ n_even ≤ final_step; got {final_step}, {n_even}")
    spacing = final_step // n_even
    powers = [0] + [2**k for k in range(int(math.log2(spacing)) + 1) if 2**k < spacing]
    return tuple(powers + [spacing * i for i in range(1, n_even + 1)])


@dataclass(frozen=True)
class ZooSpec:
    """One zoo family: architecture, sizes, checkpoint steps and the training recipe.

    ``steps`` are optimizer updates; one update sees ``batch_size × n_ctx`` tokens.
    ``max_train_chars`` limits the train split to its first documents (tiny test models).
    """

    name: str
    arch: str  # "gpt_neox" or "gpt2"
    n_layers: int
    d_model: int
    n_heads: int
    d_mlp: int
    vocab_size: int
    n_ctx: int
    steps: tuple[int, ...]
    default: bool  # part of the default zoo (claims) or a tiny test variant
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.1
    seed: int = 0
    eval_fraction: float = 0.1
    eval_sequences: int = 64
    max_train_chars: int | None = None
    bf16_autocast: bool = False
    num_threads: int = 2

    @property
    def final_step(self) -> int:
        return self.steps[-1]

    @property
    def train_tokens(self) -> int:
        """Tokens fed to the model over the whole run (updates × batch × context)."""
        return self.final_step * self.batch_size * self.n_ctx


def _default(name: str, arch: str) -> ZooSpec:
    return ZooSpec(name, arch, 4, 256, 8, 1024, 8192, 128, pythia_schedule(1000, 4), True,
                   batch_size=24, lr=2e-3, warmup_steps=50)


def _tiny(name: str, arch: str, seed: int = 0, updates: int = 32, max_train_chars: int = 500_000) -> ZooSpec:
    return ZooSpec(name, arch, 2, 64, 4, 256, 1024, 64, pythia_schedule(updates, 1), False,
                   batch_size=8, lr=1e-2, warmup_steps=4, eval_sequences=16, max_train_chars=max_train_chars,
                   num_threads=1, seed=seed)


def _two_layer(name: str, seed: int = 0) -> ZooSpec:
    """The model-level calibration's families: the tiny GPT-NeoX trained 16 times longer (512 updates, 262k
    tokens, about 18 s on one core). In the 32-update ``neox-tiny`` no group of 16 planted neurons can rank
    among the most rare-influential (``harness.zoo.planted``); here the planted ones do."""
    return _tiny(name, "gpt_neox", seed, updates=512, max_train_chars=2_000_000)


@dataclass(frozen=True)
class PlantedSpec:
    """A positive control: every checkpoint of a trained ``base`` family with ``n_planted``
    final-MLP neurons turned into rare-token specialists analytically (``harness.zoo.planted``).

    Planting strength grows over training, ``scale_at(step)`` = ``final_scale`` ·
    ln(1 + step) / ln(1 + final step) (0 at step 0), so the claims over training (C4, C9) have
    something to find. ``seed`` draws which neurons are planted (and each one's own read
    direction); their ids ship with the build (``planted_neurons.json``). ``read_mix`` is the weight of each
    planted neuron's own direction in its read row (the shared rare-context direction has 1): how alike the
    planted neurons fire; too alike and they act as one neuron whose members each add nothing, too unalike and
    their influence plateau bends (``harness.zoo.planted`` gives the measurements). ``construction`` is the
    version of the planting procedure: a build made by another version is rebuilt.
    """

    name: str
    base: str
    n_planted: int
    final_scale: float
    default: bool
    read_mix: float
    seed: int = 0
    construction: int = PLANTING_CONSTRUCTION

    @property
    def arch(self) -> str:
        return ZOO[self.base].arch

    @property
    def vocab_size(self) -> int:
        return ZOO[self.base].vocab_size

    @property
    def steps(self) -> tuple[int, ...]:
        return ZOO[self.base].steps

    @property
    def final_step(self) -> int:
        return self.steps[-1]

    def scale_at(self, step: int) -> float:
        """Planting strength in [0, final_scale] at checkpoint ``step``."""
        return self.final_scale * math.log1p(step) / math.log1p(self.final_step)


FamilySpec = ZooSpec | PlantedSpec

ZOO: dict[str, FamilySpec] = {
    s.name: s
    for s in [
        _default("neox-4l", "gpt_neox"),
        _default("gpt2-4l", "gpt2"),
        _tiny("neox-tiny", "gpt_neox"),
        _tiny("gpt2-tiny", "gpt2"),
        _tiny("neox-tiny-seed1", "gpt_neox", seed=1),
        _tiny("neox-tiny-seed2", "gpt_neox", seed=2),
        _two_layer("neox-2l"),
        _two_layer("neox-2l-seed1", seed=1),
        _two_layer("neox-2l-seed2", seed=2),
    ]
}
ZOO.update({
    s.name: s
    for s in [
        PlantedSpec("neox-4l-planted", "neox-4l", n_planted=17, final_scale=1.0, default=True, read_mix=0.25),
        PlantedSpec("neox-tiny-planted", "neox-tiny", n_planted=16, final_scale=1.0, default=False, read_mix=0.5),
        PlantedSpec("neox-2l-planted", "neox-2l", n_planted=16, final_scale=1.0, default=False, read_mix=0.5),
    ]
})


def zoo_root() -> Path:
    """``$RARE_ZOO_DIR`` or ``~/.cache/rare-token-claims/zoo``."""
    return Path(os.environ.get("RARE_ZOO_DIR", Path.home() / ".cache" / "rare-token-claims" / "zoo"))


def get_spec(name: str) -> FamilySpec:
    """The spec of zoo family ``name``; unknown names raise ValueError listing the known ones."""
    if name not in ZOO:
        raise ValueError(f"unknown zoo family {name!r}; known: {', '.join(sorted(ZOO))}")
    return ZOO[name]


def spec_record(spec: FamilySpec) -> dict:
    """What a build's manifest records of its spec; a build is current when this matches."""
    record = {**asdict(spec), "steps": list(spec.steps), "build_format": BUILD_FORMAT}
    if isinstance(spec, PlantedSpec):
        record["base_spec"] = spec_record(ZOO[spec.base])
    return record


def family_dir(name: str, root: Path | None = None) -> Path:
    """``<root>/<name>``: where family ``name`` is (or will be) built; nothing is checked or built."""
    get_spec(name)
    return Path(root or zoo_root()) / name


def is_built(name: str, root: Path | None = None) -> bool:
    """Whether ``<root>/<name>`` holds a complete build of the current spec."""
    path = family_dir(name, root)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("spec") == spec_record(get_spec(name))


