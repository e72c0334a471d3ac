"""The embedded model zoo (STUB: the zoo helper replaces the bodies; the API stays).

API contract used by other modules:
- ``ZOO: dict[str, ZooSpec]`` — every zoo family by name; ``spec.steps`` is its checkpoint list.
- ``zoo_root() -> Path`` — ``$RARE_ZOO_DIR`` or ``~/.cache/rare-token-claims/zoo``.
- ``ensure_built(name, root=None, progress=True) -> Path`` — builds the family once (file lock,
  safe under xdist) and returns ``<root>/<name>``, holding ``step{N}/`` Hugging Face
  directories (config, safetensors weights, tokenizer), ``token_counts.npy`` and
  ``manifest.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import os


@dataclass(frozen=True)
class ZooSpec:
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


ZOO: dict[str, ZooSpec] = {
    s.name: s
    for s in [
        ZooSpec("neox-4l", "gpt_neox", 4, 256, 8, 1024, 8192, 128, (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512), True),
        ZooSpec("gpt2-4l", "gpt2", 4, 256, 8, 1024, 8192, 128, (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512), True),
        ZooSpec("neox-tiny", "gpt_neox", 2, 64, 4, 256, 1024, 64, (0, 1, 2, 4, 8, 16), False),
        ZooSpec("gpt2-tiny", "gpt2", 2, 64, 4, 256, 1024, 64, (0, 1, 2, 4, 8, 16), False),
    ]
}


def zoo_root() -> Path:
    return Path(os.environ.get("RARE_ZOO_DIR", Path.home() / ".cache" / "rare-token-claims" / "zoo"))


def ensure_built(name: str, root: Path | None = None, progress: bool = True) -> Path:
    raise NotImplementedError("zoo build: being written")
