"""Shared helpers of the harness tests: tiny real models, one-thread torch, the tiny zoo.

Tiny models are real ``transformers`` causal LMs (GPT-NeoX, GPT-2, Llama, Gemma, Gemma-2),
randomly initialised from a seed with dropout off, saved next to a byte-level BPE tokenizer
trained on the project corpus by the zoo's own ``train_tokenizer`` (id 0 ``<|endoftext|>`` is
BOS, EOS, pad and unk), so TransformerLens boots them exactly as it boots a subject. The tiny
zoo families build into one temporary ``RARE_ZOO_DIR`` per session (seconds each); the default
zoo is never built here.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from harness import zoo
from harness.data import corpus
from harness.zoo.builder import train_tokenizer

TINY_VOCAB = 320
# A family measured on rare tokens needs more: a byte-level BPE holds 256 byte symbols, most never used
# in English text, so the rare half of a vocabulary near 256 is bytes that never occur.
FAMILY_VOCAB = 1024
TINY_SIZES = {"d_model": 32, "n_layers": 2, "n_heads": 4, "d_mlp": 128, "n_ctx": 64}
ARCHS = ("gpt_neox", "gpt2", "llama", "gemma", "gemma2")


@functools.cache
def train_texts(n_documents: int) -> tuple[str, ...]:
    """The first ``n_documents`` documents of the corpus's train split (the zoo's training text)."""
    return tuple(d.text for d in corpus.split_documents(corpus.documents())[0][:n_documents])


# Where each architecture keeps the parts tests read, as attribute paths from the Hugging Face model.
_PARTS = {
    "gpt_neox": {"layers": "gpt_neox.layers", "final_norm": "gpt_neox.final_layer_norm",
                 "attn_out": "attention.dense", "mlp_in": "mlp.dense_h_to_4h", "mlp_out": "mlp.dense_4h_to_h"},
    "gpt2": {"layers": "transformer.h", "final_norm": "transformer.ln_f", "attn_out": "attn.c_proj",
             "mlp_in": "mlp.c_fc", "mlp_out": "mlp.c_proj"},
    "gated": {"layers": "model.layers", "final_norm": "model.norm", "attn_out": "self_attn.o_proj",
              "mlp_gate": "mlp.gate_proj", "mlp_in": "mlp.up_proj", "mlp_out": "mlp.down_proj"},
}


def hf_module(hf, part: str, layer: int | None = None) -> torch.nn.Module:
    """A part of a Hugging Face causal LM: ``final_norm``, or in block ``layer`` ``attn_out`` (input
    ``[batch, pos, n_heads · d_head]``, head-major), ``mlp_in``, ``mlp_gate`` (gated MLPs; ``mlp_in`` is
    their up projection) or ``mlp_out`` (input: the post-activations ``[batch, pos, d_mlp]``)."""
    paths = _PARTS.get(hf.config.model_type, _PARTS["gated"])
    path = paths[part] if layer is None else f"{paths['layers']}.{layer % hf.config.num_hidden_layers}.{paths[part]}"
    return functools.reduce(getattr, path.split("."), hf)


def _n_documents(vocab_size: int) -> int:
    """Train documents a tokenizer of ``vocab_size`` types learns from (40 reach a few hundred types)."""
    return 40 if vocab_size <= 512 else 100


@functools.cache
def _tokenizer(vocab_size: int):
    return train_tokenizer(list(train_texts(_n_documents(vocab_size))), vocab_size)


def _config(arch: str, vocab_size: int, d_model: int, n_layers: int, n_heads: int, d_mlp: int, n_ctx: int):
    from transformers import Gemma2Config, GemmaConfig, GPT2Config, GPTNeoXConfig, LlamaConfig

    special = {"bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}
    if arch == "gpt_neox":
        return GPTNeoXConfig(vocab_size=vocab_size, hidden_size=d_model, num_hidden_layers=n_layers,
                             num_attention_heads=n_heads, intermediate_size=d_mlp, max_position_embeddings=n_ctx,
                             rotary_pct=0.25, use_parallel_residual=True, hidden_dropout=0.0,
                             attention_dropout=0.0, **special)
    if arch == "gpt2":
        return GPT2Config(vocab_size=vocab_size, n_embd=d_model, n_layer=n_layers, n_head=n_heads, n_inner=d_mlp,
                          n_positions=n_ctx, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **special)
    gated = {"llama": LlamaConfig, "gemma": GemmaConfig, "gemma2": Gemma2Config}
    if arch not in gated:
        raise ValueError(f"unknown tiny architecture {arch!r}; use one of {ARCHS}")
    return gated[arch](vocab_size=vocab_size, hidden_size=d_model, intermediate_size=d_mlp,
                       num_hidden_layers=n_layers, num_attention_heads=n_heads, num_key_value_heads=n_heads // 2,
                       head_dim=d_model // n_heads, max_position_embeddings=n_ctx, **special)


def make_tiny_model(arch: str, *, vocab_size: int = TINY_VOCAB, seed: int = 0, perturb: float = 0.0, **sizes: int):
    """A seeded random causal LM in eval mode; ``sizes`` override ``TINY_SIZES``.

    ``perturb`` adds N(0, perturb²) noise to every 1-D parameter (norm gains, biases), so a
    readout that takes a wrong vector (or ignores Gemma's 1 + g) cannot pass a test.
    """
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_config(arch, vocab_size, **{**TINY_SIZES, **sizes}))
    if perturb:
        with torch.no_grad():
            for param in model.parameters():
                if param.ndim == 1:
                    param.add_(perturb * torch.randn_like(param))
    return model.eval()


def save_model_dir(model, path: Path, tokenizer=None) -> Path:
    """``model`` and its tokenizer (default: the tiny one) saved as a Hugging Face directory."""
    model.save_pretrained(path)
    (tokenizer if tokenizer is not None else _tokenizer(TINY_VOCAB)).save_pretrained(path)
    return path


def train_steps(model, tokens: np.ndarray, steps: int, *, lr: float = 1e-2, batch_size: int = 8, seed: int = 0):
    """``steps`` Adam updates of next-token loss on random rows of ``tokens`` [n_seq, seq_len]; eval mode after."""
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        batch = torch.as_tensor(tokens[rng.integers(0, tokens.shape[0], batch_size)])
        loss = model(batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def corpus_rows(tokenizer, seq_len: int, n_documents: int = 40) -> np.ndarray:
    """The train texts tokenized, joined with BOS and cut into rows [n_rows, seq_len] (int64)."""
    ids: list[int] = []
    for text in train_texts(n_documents):
        ids += [zoo.BOS_ID, *tokenizer.encode(text, add_special_tokens=False)]
    n = len(ids) // seq_len
    return np.asarray(ids[: n * seq_len], dtype=np.int64).reshape(n, seq_len)


def build_family(path: Path, arch: str, steps: tuple[int, ...], *, vocab_size: int = FAMILY_VOCAB,
                 updates_per_step: int = 1, **sizes: int) -> Path:
    """A local checkpoint family: ``step{N}/`` after N update rounds of training on corpus rows, plus
    ``token_counts.npy`` (the exact unigram counts of those training rows, one per vocabulary id)."""
    tokenizer = _tokenizer(vocab_size)
    size = {**TINY_SIZES, **sizes}
    rows = corpus_rows(tokenizer, size["n_ctx"], _n_documents(vocab_size))
    model = make_tiny_model(arch, vocab_size=len(tokenizer), **sizes)
    done = 0
    for step in sorted(steps):
        train_steps(model, rows, (step - done) * updates_per_step, seed=step)
        done = step
        save_model_dir(model, path / f"step{step}", tokenizer)
    np.save(path / "token_counts.npy", np.bincount(rows.ravel(), minlength=len(tokenizer)).astype(np.int64))
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """The tiny models' tokenizer (``TINY_VOCAB`` types)."""
    return _tokenizer(TINY_VOCAB)


@pytest.fixture(scope="session")
def tiny_model() -> Callable:
    """``tiny_model(arch, vocab_size=…, seed=…, perturb=…, **sizes)``: see ``make_tiny_model``."""
    return make_tiny_model


@pytest.fixture(scope="session")
def save_model() -> Callable:
    """``save_model(model, path, tokenizer=None) -> path``: a Hugging Face directory with its tokenizer."""
    return save_model_dir


@pytest.fixture(scope="session")
def model_family() -> Callable:
    """``model_family(path, arch, steps, vocab_size=…, **sizes) -> path``: see ``build_family``."""
    return build_family


@pytest.fixture(scope="session")
def training() -> Callable:
    """``training(model, tokens, steps, lr=…)``: a few Adam updates (see ``train_steps``)."""
    return train_steps


@pytest.fixture(scope="session")
def hf_part() -> Callable:
    """``hf_part(hf, part, layer=None)``: see ``hf_module``."""
    return hf_module


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors gain nothing from threads; on a shared 2-core machine threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_zoo_root(tmp_path_factory) -> Path:
    """The session's temporary zoo directory (families are built into it on demand by ``tiny_zoo``)."""
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture
def tiny_zoo(tiny_zoo_root: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """``tiny_zoo(*names) -> root``: those tiny zoo families built (once per session) into a temporary
    ``RARE_ZOO_DIR``, which this test sees, offline (``HF_HUB_OFFLINE=1``)."""
    monkeypatch.setenv("RARE_ZOO_DIR", str(tiny_zoo_root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def build(*names: str) -> Path:
        for name in names:
            if zoo.get_spec(name).default:
                raise ValueError(f"zoo:{name} is a default family; the harness tests build tiny families only")
            zoo.ensure_built(name, tiny_zoo_root, progress=False)
        return tiny_zoo_root
    return build
