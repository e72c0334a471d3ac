"""Load a subject as a TransformerLens ``TransformerBridge`` (the one way models are loaded).

Why TransformerBridge and not HookedTransformer: TransformerLens 4.3 no longer ships
``HookedTransformer`` at all — ``TransformerBridge`` is its only model class. The bridge
wraps the unmodified Hugging Face module, so its logits equal the Hugging Face model's to
float precision (checked in tests/test_loading.py for GPT-NeoX, GPT-2, Llama and Gemma), and
the real final norm (LayerNorm or RMSNorm) stays in place: we do not call
``enable_compatibility_mode()``, whose norm folding and weight centring would change the very
geometry (final norm scale, unembedding directions) that neuron-influence measurements depend on. The same
``boot_transformers`` call loads a hub Pythia checkpoint (``revision="step{N}"``), a local
directory and a zoo checkpoint, so the embedded zoo exercises exactly the code path a real
hub model takes; and the bridge exposes the hooks the measurements read
(``blocks.{L}.mlp.hook_post`` for neurons, ``blocks.{L}.attn.hook_z`` for heads,
``ln_final.hook_in`` for the residual stream before the final norm), which
``load_model`` verifies are present.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import torch

from harness import zoo as _zoo
from harness.subjects.grammar import Subject, parse_subject

if TYPE_CHECKING:  # imported where used: transformer_lens takes seconds to import, start-up errors must not wait
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import PreTrainedTokenizerBase

REQUIRED_HOOKS = ("blocks.{layer}.mlp.hook_post", "blocks.{layer}.attn.hook_z", "ln_final.hook_in")


def _quiet_transformers() -> None:
    """No per-load progress bars or advisory warnings from transformers (the runners show their own)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def as_subject(subject: Subject | str) -> Subject:
    """A Subject, parsing a string."""
    return subject if isinstance(subject, Subject) else parse_subject(subject)


def local_dir(subject: Subject | str) -> Path | None:
    """The Hugging Face directory holding the subject's files, or None for a hub subject.

    ``hf:/dir@stepN`` is ``/dir/stepN``; ``zoo:<name>@stepN`` is that checkpoint of the
    zoo family. A lookup never builds anything: a zoo family that is not built raises
    ``ZooNotBuiltError`` (the runners build the zoo at start-up, ``harness.zoo.ensure_built``).
    """
    subject = as_subject(subject)
    if subject.kind == "hub":
        return None
    if subject.kind == "hf":
        base = Path(subject.family[3:])
    else:
        name = subject.family[4:]
        if not _zoo.is_built(name):
            raise ZooNotBuiltError(f"{subject.family} is not built in {_zoo.zoo_root()}; run "
                                   f"`python -m harness zoo build {name}` (or `harness check`, which builds it)")
        base = _zoo.family_dir(name)
    return base if subject.revision is None else base / subject.revision


class ZooNotBuiltError(FileNotFoundError):
    """A zoo subject was looked up before its family was built."""


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


def load_tokenizer(subject: Subject | str) -> "PreTrainedTokenizerBase":
    """The subject's own tokenizer as saved; callers decide BOS explicitly (``prepend_bos``).

    Local subjects load offline from their directory; hub subjects at their revision.
    """
    from transformers import AutoTokenizer

    name, revision, context = _source(as_subject(subject))
    with context:
        return AutoTokenizer.from_pretrained(name, revision=revision)


def load_model(
    subject: Subject | str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> "TransformerBridge":
    """Load the subject as a TransformerBridge in eval mode, with its tokenizer attached.

    Hub subjects load through TransformerLens from the hub at revision ``step{N}``; local
    and zoo subjects load offline from their directory through the same
    ``TransformerBridge.boot_transformers`` call. Raises RuntimeError if a hook the
    measurements need (``REQUIRED_HOOKS``) is missing.
    """
    from transformer_lens.model_bridge import TransformerBridge

    subject = as_subject(subject)
    _quiet_transformers()
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


def model_config(subject: Subject | str) -> dict[str, Any]:
    """The subject's Hugging Face ``config.json`` as a dict, read without loading weights.

    Local and zoo subjects read their directory; hub subjects go through ``AutoConfig`` at their
    revision (network, or the local hub cache).
    """
    subject = as_subject(subject)
    directory = local_dir(subject)
    if directory is not None:
        return json.loads((directory / "config.json").read_text())
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(subject.hub_name), revision=subject.revision).to_dict()


HUB_VOCABULARY = {"pythia-": (50277, 50304), "gpt2": (50257, 50257)}
"""(tokenizer ids, unembedding rows) of the hub families, by family-name prefix."""


def vocabulary_sizes(subject: Subject | str) -> tuple[int, int]:
    """(tokenizer ids, unembedding rows) of a subject, read without loading weights or building anything.

    Hub families have known sizes (``HUB_VOCABULARY``); a zoo family's tokenizer and unembedding both
    hold its spec's ``vocab_size``; a local directory's come from its tokenizer and ``config.json``.
    """
    subject = as_subject(subject)
    if subject.kind == "hub":
        return next(sizes for prefix, sizes in HUB_VOCABULARY.items() if subject.family.startswith(prefix))
    if subject.kind == "zoo":
        size = _zoo.get_spec(subject.family[4:]).vocab_size
        return size, size
    return len(load_tokenizer(subject)), int(model_config(subject)["vocab_size"])


def architecture(subject: Subject | str) -> str:
    """The Hugging Face ``model_type`` of a subject (``gpt_neox``, ``gpt2``, ``llama``, …)."""
    subject = as_subject(subject)
    if subject.kind == "hub":
        return "gpt_neox" if subject.family.startswith("pythia-") else "gpt2"
    return str(model_config(subject)["model_type"])


def n_layers(subject: Subject | str) -> int:
    """Number of transformer blocks, from the config."""
    config = model_config(subject)
    for key in ("num_hidden_layers", "n_layer", "num_layers"):
        if key in config:
            return int(config[key])
    raise ValueError(f"{as_subject(subject).spec}: config.json names no layer count (num_hidden_layers / n_layer)")


def parallel_attention(subject: Subject | str) -> bool:
    """Whether blocks run attention and MLP in parallel on the same input (GPT-NeoX ``use_parallel_residual``,
    GPT-J, Falcon ``parallel_attn``); then the final attention layer cannot feed the final MLP."""
    config = model_config(subject)
    if config.get("model_type") == "gpt_neox":
        return bool(config.get("use_parallel_residual", True))
    return bool(config.get("parallel_attn", config.get("model_type") == "gptj"))


def context_length(subject: Subject | str) -> int:
    """The longest sequence (tokens) the subject's position scheme supports, read from its config."""
    subject = as_subject(subject)
    if subject.kind == "hub":
        return 2048 if subject.family.startswith("pythia-") else 1024
    config = model_config(subject)
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        if key in config:
            return int(config[key])
    raise ValueError(f"{subject.spec}: config.json names no context length (max_position_embeddings / n_positions)")
