"""Building zoo families: train a ``ZooSpec`` family, or plant specialists into a trained one.

A build: the corpus (``harness.data.corpus``: Shakespeare and the KJV Bible) is split by document
into train and eval; a byte-level BPE tokenizer (``tokenizers``; ``<|endoftext|>`` = id 0 is
BOS, EOS and pad) is trained on the train split; the train documents, each preceded by BOS,
are concatenated into one token stream and cut into sequences of ``n_ctx`` tokens; a plain
torch loop (AdamW, linear warmup then cosine decay to 10% of the peak rate, gradient
clipping at 1, float32 unless the spec asks for bf16 autocast) trains on batches whose sequence indices
come from a seeded ``torch.Generator`` (a fresh permutation per epoch). Checkpoints after
0, 1, 2, 4, … updates and then at evenly spaced steps are saved with ``save_pretrained``
(safetensors). ``token_counts.npy`` holds the exact unigram counts of that training
stream (int64, one per vocabulary id; BOS included); ``manifest.json`` holds the spec,
every checkpoint's weight hash and eval loss, the corpus fingerprint, the unigram
baselines, token counts, wall time and throughput. The build runs in a temporary
directory renamed into place at the end, under a file lock, so a partial or interrupted
build never looks complete and concurrent pytest-xdist workers build once. Same spec,
same machine → byte-identical weights (deterministic algorithms, a fixed thread count).
A ``PlantedSpec`` family is built from its base family's checkpoints by
``harness.zoo.planted`` (no training), under the same lock-and-rename discipline.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from harness.data import corpus
from harness.zoo.stream import pack
from harness.zoo.specs import (
    BOS_ID,
    BOS_TOKEN,
    COUNTS,
    MANIFEST,
    PlantedSpec,
    ZooSpec,
    family_dir,
    get_spec,
    is_built,
    spec_record,
    zoo_root,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast


def ensure_built(name: str, root: Path | None = None, progress: bool = True) -> Path:
    """``<root>/<name>``, building it first (once, under a file lock) unless complete.

    A planted family builds its base family first.
    """
    if is_built(name, root):
        return family_dir(name, root)
    return build(name, root, progress)


def build(name: str, root: Path | None = None, progress: bool = True, force: bool = False) -> Path:
    """Build family ``name`` into ``<root>/<name>`` atomically; skip if complete unless ``force``."""
    from filelock import FileLock

    spec = get_spec(name)
    root = Path(root or zoo_root())
    root.mkdir(parents=True, exist_ok=True)
    if isinstance(spec, PlantedSpec):
        ensure_built(spec.base, root, progress)
    final = family_dir(name, root)
    with FileLock(str(root / f".{name}.lock")):
        if not force and is_built(name, root):
            return final
        for stale in root.glob(f".tmp-{name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
        tmp.chmod(0o755)
        if isinstance(spec, PlantedSpec):
            from harness.zoo.planted import build_planted

            build_planted(spec, family_dir(spec.base, root), tmp)
        else:
            _train(spec, tmp, progress)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-old-", dir=root))
            final.rename(old / name)
            shutil.rmtree(old)
        tmp.rename(final)
    return final


# --- the build itself -------------------------------------------------------------------------


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> "PreTrainedTokenizerFast":
    """A byte-level BPE tokenizer trained on ``texts`` (deterministic), wrapped for transformers.

    ``<|endoftext|>`` is id 0 and serves as BOS, EOS, pad and unk; no special tokens are
    added automatically when encoding (as with GPT-2 and Pythia).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    if tok.get_vocab_size() != vocab_size or tok.token_to_id(BOS_TOKEN) != BOS_ID:
        raise RuntimeError(
            f"BPE training gave {tok.get_vocab_size()} types (asked {vocab_size}) and BOS id "
            f"{tok.token_to_id(BOS_TOKEN)}; the training text is too small for this vocabulary"
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS_TOKEN, eos_token=BOS_TOKEN, pad_token=BOS_TOKEN, unk_token=BOS_TOKEN
    )


def make_model(spec: ZooSpec) -> "PreTrainedModel":
    """A freshly initialised model of ``spec`` (weights drawn from the current torch RNG state)."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM

    special = dict(bos_token_id=BOS_ID, eos_token_id=BOS_ID, pad_token_id=BOS_ID)
    if spec.arch == "gpt_neox":
        config = GPTNeoXConfig(
            vocab_size=spec.vocab_size, hidden_size=spec.d_model, num_hidden_layers=spec.n_layers,
            num_attention_heads=spec.n_heads, intermediate_size=spec.d_mlp,
            max_position_embeddings=spec.n_ctx, hidden_act="gelu", use_parallel_residual=True,
            tie_word_embeddings=False, attention_dropout=0.0, hidden_dropout=0.0, **special,
        )
        return GPTNeoXForCausalLM(config)
    if spec.arch == "gpt2":
        config = GPT2Config(
            vocab_size=spec.vocab_size, n_positions=spec.n_ctx, n_embd=spec.d_model, n_layer=spec.n_layers,
            n_head=spec.n_heads, n_inner=spec.d_mlp, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            tie_word_embeddings=True, **special,
        )
        return GPT2LMHeadModel(config)
    raise ValueError(f"unknown arch {spec.arch!r}; use 'gpt_neox' or 'gpt2'")


def lr_factor(step: int, warmup: int, total: int, floor: float = 0.1) -> float:
    """Learning-rate multiplier for update ``step`` (0-based): linear warmup, cosine to ``floor``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def batch_order(n_seq: int, batch_size: int, n_batches: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of each batch: consecutive slices of seeded per-epoch permutations."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    pending = np.empty(0, dtype=np.int64)
    for _ in range(n_batches):
        while len(pending) < batch_size:
            pending = np.concatenate([pending, torch.randperm(n_seq, generator=gen).numpy()])
        yield pending[:batch_size]
        pending = pending[batch_size:]


@contextlib.contextmanager
def _build_environment(num_threads: int) -> Iterator[None]:
    """Fixed thread count (results depend on it), deterministic algorithms, no save progress bars."""
    import torch
    from transformers.utils import logging as hf_logging

    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    bars = hf_logging.is_progress_bar_enabled()
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det)
        if bars:
            hf_logging.enable_progress_bar()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _eval_loss(model: "PreTrainedModel", rows: np.ndarray) -> float:
    """Mean next-token cross-entropy (nats, fp32) of ``model`` on ``rows`` ``[n_seq, n_ctx]``."""
    import torch

    with torch.no_grad():
        ids = torch.from_numpy(rows)
        return float(model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss)


def _train(spec: ZooSpec, out: Path, progress: bool) -> None:
    import torch
    import transformers
    import tokenizers
    from tqdm import tqdm

    from harness.data.frequencies import TokenFrequencies

    t_start = time.perf_counter()
    docs = corpus.documents()
    train_docs, eval_docs = corpus.split_documents(docs, spec.eval_fraction)
    if spec.max_train_chars is not None:
        cum = np.cumsum([len(d.text) for d in train_docs])
        train_docs = train_docs[: int(np.searchsorted(cum, spec.max_train_chars)) + 1]
    train_texts = [d.text for d in train_docs]
    tokenizer = train_tokenizer(train_texts, spec.vocab_size)
    backend = tokenizer.backend_tokenizer
    train_rows = pack([e.ids for e in backend.encode_batch(train_texts)], spec.n_ctx)
    eval_rows = pack([e.ids for e in backend.encode_batch([d.text for d in eval_docs])], spec.n_ctx)
    eval_rows = eval_rows[: spec.eval_sequences]
    counts = np.bincount(train_rows.ravel(), minlength=spec.vocab_size).astype(np.int64)
    np.save(out / COUNTS, counts)
    freqs = TokenFrequencies(counts)
    eval_unigram_ce = float(-np.log(freqs.probabilities[eval_rows[:, 1:]]).mean())

    checkpoints: dict[str, dict] = {}
    with _build_environment(spec.num_threads):
        torch.manual_seed(spec.seed)
        model = make_model(spec)
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=spec.lr, betas=(0.9, 0.95), eps=1e-8,
        )
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_factor(s, spec.warmup_steps, spec.final_step)
        )

        def save(step: int, train_loss: float | None) -> None:
            d = out / f"step{step}"
            model.save_pretrained(d)
            tokenizer.save_pretrained(d)
            model.eval()
            checkpoints[str(step)] = {
                "sha256": _sha256(d / "model.safetensors"),
                "eval_loss": _eval_loss(model, eval_rows),
                "train_loss": train_loss,
            }
            model.train()

        save(0, None)
        t_train = time.perf_counter()
        save_time = 0.0
        bar = tqdm(total=spec.final_step, desc=f"zoo {spec.name}", disable=not progress, file=sys.stderr)
        order = batch_order(len(train_rows), spec.batch_size, spec.final_step, spec.seed + 1)
        model.train()
        for step, idx in enumerate(order, start=1):
            batch = torch.from_numpy(train_rows[idx])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=spec.bf16_autocast):
                loss = model(input_ids=batch, attention_mask=torch.ones_like(batch), labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if step in spec.steps:
                t_save = time.perf_counter()
                save(step, float(loss.item()))
                save_time += time.perf_counter() - t_save
        bar.close()
        train_time = time.perf_counter() - t_train - save_time

    manifest = {
        "name": spec.name,
        "spec": spec_record(spec),
        "steps": list(spec.steps),
        "checkpoints": checkpoints,
        "corpus_fingerprint": corpus.corpus_fingerprint(docs),
        "n_train_documents": len(train_docs),
        "n_eval_documents": len(eval_docs),
        "train_stream_tokens": int(train_rows.size),
        "tokens_trained": spec.train_tokens,
        "epochs": spec.train_tokens / train_rows.size,
        "eval_tokens": int(eval_rows[:, 1:].size),
        "unigram_entropy_nats": freqs.entropy(),
        "eval_unigram_cross_entropy_nats": eval_unigram_ce,
        "final_eval_loss_nats": checkpoints[str(spec.final_step)]["eval_loss"],
        "wall_time_s": time.perf_counter() - t_start,
        "train_time_s": train_time,
        "tokens_per_s": spec.train_tokens / train_time,
        "num_threads": spec.num_threads,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
