"""Random-weight TransformerLens bridges of named shapes; configs written here, nothing downloaded.

Each shape is a Hugging Face config of the real model's sizes (layers, widths, heads, vocabulary,
context); weights are drawn by the architecture's own initialiser (``init_range`` = its
``initializer_range``) from a seeded generator. The bridge wraps the model in memory
(``TransformerBridge.boot_transformers(config_dir, hf_model=…)``), the code path of every subject.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shape:
    """A model's sizes: ``arch`` ``gpt_neox`` (parallel attention and MLP, rotary on a quarter of each
    head, untied unembedding) or ``gpt2``."""

    name: str
    arch: str
    n_layers: int
    d_model: int
    n_heads: int
    d_mlp: int
    vocab: int
    n_ctx: int
    init_range: float = 0.02

    def scaled(self, **sizes: int | float) -> "Shape":
        """The same shape with some sizes changed (e.g. ``vocab=…``)."""
        return Shape(**{**self.__dict__, **sizes})


SHAPES: dict[str, Shape] = {s.name: s for s in (
    # the default zoo's families; a wider init than 0.02 so that ablation effects are not negligible
    Shape("zoo-4l", "gpt_neox", 4, 256, 8, 1024, 8192, 128, init_range=0.15),
    Shape("pythia-160m", "gpt_neox", 12, 768, 12, 3072, 50304, 2048),
    Shape("pythia-410m", "gpt_neox", 24, 1024, 16, 4096, 50304, 2048),
    Shape("pythia-2.8b", "gpt_neox", 32, 2560, 32, 10240, 50304, 2048),
    Shape("gpt2-xl", "gpt2", 48, 1600, 25, 6400, 50257, 1024),
)}


def hf_config(shape: Shape):
    """The Hugging Face config of ``shape`` (no dropout)."""
    from transformers import GPT2Config, GPTNeoXConfig

    if shape.arch == "gpt_neox":
        return GPTNeoXConfig(vocab_size=shape.vocab, hidden_size=shape.d_model, num_hidden_layers=shape.n_layers,
                             num_attention_heads=shape.n_heads, intermediate_size=shape.d_mlp,
                             max_position_embeddings=shape.n_ctx, use_parallel_residual=True, rotary_pct=0.25,
                             hidden_dropout=0.0, attention_dropout=0.0, initializer_range=shape.init_range)
    return GPT2Config(vocab_size=shape.vocab, n_embd=shape.d_model, n_layer=shape.n_layers, n_head=shape.n_heads,
                      n_inner=shape.d_mlp, n_positions=shape.n_ctx, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                      initializer_range=shape.init_range)


def random_bridge(shape: Shape, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0):
    """A ``TransformerBridge`` in eval mode around a random-weight model of ``shape``, built on ``device``."""
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import GPT2LMHeadModel, GPTNeoXForCausalLM

    config = hf_config(shape)
    torch.manual_seed(seed)
    with torch.device(device):
        model = (GPTNeoXForCausalLM if shape.arch == "gpt_neox" else GPT2LMHeadModel)(config)
    model = model.to(dtype).eval()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="bench-config-") as path:
        config.save_pretrained(path)
        bridge = TransformerBridge.boot_transformers(path, hf_model=model, device=device, dtype=dtype)
    return bridge.eval()
