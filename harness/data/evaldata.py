"""Evaluation data: fixed token sequences and the rare/common target positions in them.

The same sequences are used for every checkpoint of a family (they depend only on the
corpus, the tokenizer, the count, the length and the seed), and their fingerprint enters
every measurement's cache key. Position t of a sequence predicts token t+1 (the *target*).
A position is *valid* when ``first_position <= t <= seq_len - 2`` and neither the input
token nor the target is BOS/EOS (methods.md §3.1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

Conditioning = Literal["target", "input"]


class TooFewPositionsError(ValueError):
    """The evaluation data hold fewer rare positions than an analysis needs."""


@dataclass(frozen=True)
class EvalSpec:
    """How evaluation sequences are drawn: count, length (tokens incl. BOS), seed."""

    n_sequences: int = 128
    seq_len: int = 128
    seed: int = 0
    first_position: int = 3

    def __post_init__(self) -> None:
        if self.n_sequences < 2:
            raise ValueError(f"n_sequences must be >= 2 (bootstrap over sequences), got {self.n_sequences}")
        if self.seq_len < self.first_position + 3:
            raise ValueError(f"seq_len must be >= {self.first_position + 3}, got {self.seq_len}")


@dataclass
class EvalData:
    """Fixed evaluation sequences.

    ``tokens`` [n_seq, seq_len] int64 with BOS at position 0; ``valid`` [n_seq, seq_len] bool
    marks the prediction positions kept by the BOS/EOS and position filters (the last
    position is never valid: it has no target).
    """

    tokens: np.ndarray
    valid: np.ndarray
    spec: EvalSpec
    special_ids: tuple[int, ...]
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.tokens, dtype=np.int64).tobytes())
        h.update(repr(self.spec).encode())
        self.fingerprint = h.hexdigest()[:16]

    @property
    def targets(self) -> np.ndarray:
        """Target token of each position [n_seq, seq_len] (−1 at the last position)."""
        out = np.full_like(self.tokens, -1)
        out[:, :-1] = self.tokens[:, 1:]
        return out

    def positions(self, token_mask: np.ndarray, conditioning: Conditioning = "target") -> np.ndarray:
        """Valid positions whose target (or input) token is in ``token_mask`` [vocab] → [n_seq, seq_len] bool."""
        token_mask = np.asarray(token_mask, dtype=bool)
        ids = self.targets if conditioning == "target" else self.tokens
        if conditioning not in ("target", "input"):
            raise ValueError(f"conditioning must be 'target' or 'input', got {conditioning!r}")
        hit = np.zeros_like(self.valid)
        ok = self.valid & (ids >= 0) & (ids < token_mask.size)
        hit[ok] = token_mask[ids[ok]]
        return hit


def token_stream(texts: Sequence[str], tokenizer, eos_id: int) -> np.ndarray:
    """The documents tokenized without special tokens and joined with ``eos_id`` (each one followed by
    it; the same id as BOS for GPT-2 / GPT-NeoX tokenizers): one int64 stream ``[n_tokens]``."""
    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer.encode(text, add_special_tokens=False))
        stream.append(eos_id)
    return np.asarray(stream, dtype=np.int64)


def build_eval_data(stream: np.ndarray, spec: EvalSpec, bos_id: int, special_ids: Sequence[int]) -> EvalData:
    """Draw ``spec.n_sequences`` windows of ``spec.seq_len − 1`` tokens from a ``token_stream``.

    Window starts are drawn without replacement from non-overlapping slots by
    ``numpy.random.default_rng(spec.seed)``; BOS is prepended. Raises ValueError when the stream
    has room for fewer windows than asked.
    """
    body = spec.seq_len - 1
    n_slots = stream.size // body
    if n_slots < spec.n_sequences:
        raise ValueError(
            f"the evaluation corpus has {stream.size} tokens: room for {n_slots} sequences of {spec.seq_len}, "
            f"but {spec.n_sequences} were asked for; use fewer or shorter sequences or a larger corpus"
        )
    rng = np.random.default_rng(spec.seed)
    slots = np.sort(rng.choice(n_slots, size=spec.n_sequences, replace=False))
    tokens = np.empty((spec.n_sequences, spec.seq_len), dtype=np.int64)
    tokens[:, 0] = bos_id
    for i, s in enumerate(slots):
        tokens[i, 1:] = stream[s * body:(s + 1) * body]
    valid = valid_positions(tokens, special_ids, spec.first_position)
    return EvalData(tokens=tokens, valid=valid, spec=spec, special_ids=tuple(int(i) for i in special_ids))


def valid_positions(tokens: np.ndarray, special_ids: Sequence[int], first_position: int) -> np.ndarray:
    """[n_seq, seq_len] bool: positions t ≥ ``first_position`` with a target, neither token special."""
    special = np.isin(tokens, np.asarray(list(special_ids), dtype=np.int64))
    valid = np.zeros_like(special)
    valid[:, :-1] = ~special[:, :-1] & ~special[:, 1:]
    valid[:, :first_position] = False
    return valid


@dataclass(frozen=True)
class PositionSelection:
    """The positions a measurement evaluates, as flat index arrays into [n_seq, seq_len].

    ``rare`` holds every rare-target position; ``common[k]`` (k < n_repeats) holds, for each
    sequence, as many common-target positions as that sequence has rare ones (fewer when
    it has too few), drawn without replacement and disjoint across repeats, so rare and
    common curves are compared on equal position counts.
    """

    seq: np.ndarray  # [n_selected] sequence index
    pos: np.ndarray  # [n_selected] position index
    group: np.ndarray  # [n_selected] 0 = rare, k + 1 = common repeat k

    @property
    def n_rare(self) -> int:
        return int(np.sum(self.group == 0))

    def n_common(self, repeat: int = 0) -> int:
        return int(np.sum(self.group == repeat + 1))


def select_positions(rare: np.ndarray, common: np.ndarray, n_repeats: int, seed: int, min_rare: int) -> PositionSelection:
    """All rare positions plus ``n_repeats`` disjoint per-sequence-matched common subsamples.

    ``rare``, ``common``: [n_seq, seq_len] bool. Raises :class:`TooFewPositionsError` when
    fewer than ``min_rare`` rare positions exist.
    """
    n_rare = int(rare.sum())
    if n_rare < min_rare:
        raise TooFewPositionsError(
            f"only {n_rare} rare-target positions in the evaluation data, the analysis needs >= {min_rare}; "
            f"use more or longer evaluation sequences (--eval-sequences) or another rare definition"
        )
    rng = np.random.default_rng(seed)
    seqs, poss, groups = [], [], []
    for s in range(rare.shape[0]):
        r = np.flatnonzero(rare[s])
        c = rng.permutation(np.flatnonzero(common[s] & ~rare[s]))
        seqs.append(np.full(r.size, s)); poss.append(r); groups.append(np.zeros(r.size, dtype=np.int64))
        for k in range(n_repeats):
            take = np.sort(c[k * r.size:(k + 1) * r.size])
            seqs.append(np.full(take.size, s)); poss.append(take); groups.append(np.full(take.size, k + 1))
    return PositionSelection(
        seq=np.concatenate(seqs).astype(np.int64),
        pos=np.concatenate(poss).astype(np.int64),
        group=np.concatenate(groups).astype(np.int64),
    )
