"""Load a subject as a TransformerLens ``TransformerBridge`` (the one way models are loaded).

Why TransformerBridge and not HookedTransformer: TransformerLens 4.3 no longer ships
``HookedTransformer`` at all — ``TransformerBridge`` is its only model class. The bridge
wraps the unmodified Hugging Face module, so its logits equal the Hugging Face model's to
float precision (checked in tests/test_loading.py for GPT-NeoX and GPT-2), and the real
final LayerNorm stays in place: we do not call ``enable_compatibility_mode()``, whose
LayerNorm folding and weight centring would change the very geometry (final LayerNorm
scale, unembedding directions) that neuron-influence measurements depend on. The same
``boot_transformers`` call loads a hub Pythia checkpoint (``revision="step{N}"``), a local
directory and a zoo checkpoint, so the embedded zoo exercises exactly the code path a real
hub model takes; and the bridge exposes the hooks the measurements read
(``blocks.{L}.mlp.hook_post`` for neurons, ``blocks.{L}.attn.hook_z`` for heads,
``ln_final.hook_in`` for the residual stream before the final LayerNorm), which
``load_model`` verifies are present.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

import torch
from transformer_lens.model_bridge import TransformerBridge
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from harness import zoo as _zoo
from harness.subjects import Subject, parse_subject

REQUIRED_HOOKS = ("blocks.{layer}.mlp.hook_post", "blocks.{layer}.attn.hook_z", "ln_final.hook_in")
WEIGHT_SUFFIXES = (".safetensors", ".bin")

_identity_cache: dict[tuple[Any, ...], str] = {}


def _subject(subject: Subject | str) -> Subject:
    return subject if isinstance(subject, Subject) else parse_subject(subject)


def local_dir(subject: Subject | str) -> Path | None:
    """The Hugging Face directory holding the subject's files, or None for a hub subject.

    ``hf:/dir@stepN`` is ``/dir/stepN``; ``zoo:<name>@stepN`` is that checkpoint of the
    zoo family, which is built first if it is not yet (``harness.zoo.ensure_built``).
    """
    subject = _subject(subject)
    if subject.kind == "hub":
        return None
    base = Path(subject.family[3:]) if subject.kind == "hf" else _zoo.ensure_built(subject.family[4:])
    return base if subject.revision is None else base / subject.revision


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Forbid Hugging Face hub access (HF_HUB_OFFLINE) for the duration; restore afterwards."""
    import huggingface_hub.constants as hub_constants

    saved_env, saved_flag = os.environ.get("HF_HUB_OFFLINE"), hub_constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"], hub_constants.HF_HUB_OFFLINE = "1", True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = saved_flag
        if saved_env is None:
            del os.environ["HF_HUB_OFFLINE"]
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env


def _source(subject: Subject) -> tuple[str, str | None, contextlib.AbstractContextManager[None]]:
    """(name or directory, hub revision, context) that Hugging Face loaders take for a subject."""
    directory = local_dir(subject)
    if directory is None:
        return str(subject.hub_name), subject.revision, contextlib.nullcontext()
    return str(directory), None, _offline()


def load_tokenizer(subject: Subject | str) -> PreTrainedTokenizerBase:
    """The subject's own tokenizer as saved; callers decide BOS explicitly (``prepend_bos``).

    Local subjects load offline from their directory; hub subjects at their revision.
    """
    name, revision, context = _source(_subject(subject))
    with context:
        return AutoTokenizer.from_pretrained(name, revision=revision)


def load_model(
    subject: Subject | str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> TransformerBridge:
    """Load the subject as a TransformerBridge in eval mode, with its tokenizer attached.

    Hub subjects load through TransformerLens from the hub at revision ``step{N}``; local
    and zoo subjects load offline from their directory through the same
    ``TransformerBridge.boot_transformers`` call. Raises RuntimeError if a hook the
    measurements need (``REQUIRED_HOOKS``) is missing.
    """
    subject = _subject(subject)
    name, revision, context = _source(subject)
    tokenizer = load_tokenizer(subject)
    with context:
        bridge = TransformerBridge.boot_transformers(
            name, device=device, dtype=dtype, revision=revision, tokenizer=tokenizer
        )
    bridge.eval()
    required = {h.format(layer=layer) for h in REQUIRED_HOOKS for layer in range(bridge.cfg.n_layers)}
    missing = sorted(required - set(bridge.hook_dict))
    if missing:
        raise RuntimeError(f"{subject.spec}: the model lacks hooks {missing}; measurements need {REQUIRED_HOOKS}")
    return bridge


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _weights_sha256(directory: Path) -> str:
    """One sha256 over config.json and the weight files (name and content), cached per process.

    The cache key includes every file's size and modification time, so a rebuilt directory
    is hashed again.
    """
    files = sorted(p for p in directory.iterdir() if p.name == "config.json" or p.suffix in WEIGHT_SUFFIXES)
    if not any(p.suffix in WEIGHT_SUFFIXES for p in files):
        raise FileNotFoundError(f"{directory} holds no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    stamp = (str(directory.resolve()), *((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if stamp not in _identity_cache:
        digest = hashlib.sha256()
        for path in files:
            digest.update(f"{path.name}\0{_sha256_file(path)}\n".encode())
        _identity_cache[stamp] = digest.hexdigest()
    return _identity_cache[stamp]


def subject_identity(subject: Subject | str) -> dict[str, str | None]:
    """What identifies the subject's weights in a cache key.

    ``{"spec", "revision", "weights_sha256"}``; ``weights_sha256`` hashes config.json and the
    weight files of a local directory, and is None for a hub subject (the hub name and
    revision pin its weights).
    """
    subject = _subject(subject)
    directory = local_dir(subject)
    return {
        "spec": subject.spec,
        "revision": subject.revision,
        "weights_sha256": None if directory is None else _weights_sha256(directory),
    }


def architecture(subject: Subject | str) -> str:
    """The Hugging Face ``model_type`` of a subject (``gpt_neox``, ``gpt2``, …), read without loading weights."""
    subject = _subject(subject)
    if subject.kind == "hub":
        return "gpt_neox" if subject.family.startswith("pythia-") else "gpt2"
    directory = local_dir(subject)
    return str(json.loads((directory / "config.json").read_text())["model_type"])


def context_length(subject: Subject | str) -> int:
    """The longest sequence (tokens) the subject's position scheme supports, read from its config."""
    subject = _subject(subject)
    if subject.kind == "hub":
        return 2048 if subject.family.startswith("pythia-") else 1024
    config = json.loads((local_dir(subject) / "config.json").read_text())
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        if key in config:
            return int(config[key])
    raise ValueError(f"{subject.spec}: config.json names no context length (max_position_embeddings / n_positions)")
