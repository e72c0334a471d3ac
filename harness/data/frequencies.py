"""Unigram token frequencies of a model's training corpus, and the rare / common token masks.

Definitions (methods.md §2). Probabilities are add-one smoothed counts,
``p_i = (c_i + 1) / (N + V)``. Types are ranked by count, descending, ties broken by token
id ascending (a stable, deterministic order); ``rank index`` 0 is the most frequent type.

- ``common``: the ``floor(0.15 V)`` most frequent types.
- ``longtail_50`` (P1/P2): the ``floor(V / 2)`` least frequent types.
- ``elbow_15`` (P3): types outside the common set *and* at or beyond the Zipf elbow (the
  elbow lies past rank V/2, so the first condition never binds; it is kept as P3 states it).
  Elbow detector (the authors' ``ZipfThresholdAnalyzer.find_elbow_point``): on
  ``x = ln rank`` (1-based), ``y = ln p`` sorted descending, OLS slopes over sliding windows
  of ``w = max(5, round(2000 V / 50257))`` consecutive ranks (2,000 for GPT-2's vocabulary),
  one window per start index ``i`` in ``[max(floor(V/2), 2w), V − w)``; jumps are the
  absolute differences of consecutive slopes; the elbow is the window start just after the
  largest jump among jumps > mean + 3 SD (population SD) of all jumps. Jumps smaller than
  ``MIN_JUMP`` (1e-6 slope units: floating-point and count-rounding noise) never qualify.
  When no jump qualifies — a distribution with no change of slope in its tail, such as an
  exact power law or equal counts — ``elbow()`` raises :class:`NoElbowError`; choose
  ``longtail_50`` for such a vocabulary. On a planted kink the detector returns the start
  of the window centred on it, i.e. within ``w`` ranks below the kink. On real counts the
  largest jumps come from the integer steps of the few-count tail, as in the authors'
  code. Measured on the default zoo's counts (V = 8192): the largest jump is where the
  545 never-seen types begin (unused byte symbols, BPE intermediate merges), so
  ``elbow_15`` holds exactly the types that never occur — no eval position has such a
  target. (Restricted to the 7,647 seen types, the elbow falls at count 7: 400 types.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Literal

import numpy as np

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

COMMON_FRACTION = 0.15
LONGTAIL_FRACTION = 0.5
ELBOW_REFERENCE_WINDOW = 2000  # the authors' window for a 50,257-type vocabulary
ELBOW_REFERENCE_VOCAB = 50257
ELBOW_MIN_WINDOW = 5
ELBOW_SD = 3.0
MIN_JUMP = 1e-6

RareDefinition = Literal["longtail_50", "elbow_15"]
RARE_DEFINITIONS: tuple[str, ...] = ("longtail_50", "elbow_15")


class NoElbowError(ValueError):
    """The Zipf elbow detector found no slope jump above its threshold."""


@dataclass(frozen=True)
class ZipfElbow:
    """Result of the elbow detector.

    ``index``: rank index (0-based) where the tail beyond the elbow begins; ``window`` w;
    ``start``: first window's start index; ``slopes`` ``[n_windows]`` (slope of window
    ``start + j``); ``jumps`` ``[n_windows − 1]``; ``threshold``: mean + 3 SD of the jumps.
    """

    index: int
    window: int
    start: int
    slopes: np.ndarray
    jumps: np.ndarray
    threshold: float

    @property
    def rank(self) -> int:
        """1-based rank of the first type beyond the elbow."""
        return self.index + 1


def _floor_fraction(fraction: float, n: int) -> int:
    return int(math.floor(round(fraction * n, 9)))


def elbow_window(vocab_size: int) -> int:
    """The sliding-window size for a vocabulary of ``vocab_size`` types (≥ 5)."""
    return max(ELBOW_MIN_WINDOW, round(ELBOW_REFERENCE_WINDOW * vocab_size / ELBOW_REFERENCE_VOCAB))


def sliding_slopes(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """OLS slope of ``y`` on ``x`` over every window of ``window`` consecutive points: ``[n − w + 1]``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x, y = x - x[0], y - y[0]  # centring keeps the running sums well conditioned

    def sums(a: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0.0], np.cumsum(a)])
        return c[window:] - c[:-window]

    sx, sy, sxx, sxy = sums(x), sums(y), sums(x * x), sums(x * y)
    return (sxy - sx * sy / window) / (sxx - sx * sx / window)


class TokenFrequencies:
    """Unigram counts ``[vocab_size]`` (int64, ≥ 0) of a training corpus, with the rare/common masks."""

    def __init__(self, counts: np.ndarray | Iterable[int]):
        arr = np.asarray(counts)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"counts must be a non-empty 1-D array (one count per token id); got shape {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(f"counts must be numbers; got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError("counts must be finite whole numbers (one count per token id)")
        if np.any(arr < 0):
            bad = np.flatnonzero(arr < 0)[:5].tolist()
            raise ValueError(f"counts must be non-negative; negative at token ids {bad}")
        self.counts: np.ndarray = arr.astype(np.int64)
        self.counts.setflags(write=False)

    @classmethod
    def from_npy(cls, path: str | Path, vocab_size: int, tokenizer_size: int | None = None) -> "TokenFrequencies":
        """Counts from a ``.npy`` file of one count per token id: ``vocab_size`` of them (the model's
        unembedding rows), or ``tokenizer_size`` (the tokenizer's ids), padded with zero counts up to
        ``vocab_size`` — the rows no token reaches (Pythia: 50,277 tokenizer ids, 50,304 rows)."""
        try:
            arr = np.load(Path(path), allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read token counts from {path}: {err}; expected a .npy array") from err
        sizes = [vocab_size] + ([tokenizer_size] if tokenizer_size not in (None, vocab_size) else [])
        if arr.ndim != 1 or arr.size not in sizes:
            raise ValueError(
                f"token counts in {path} have shape {arr.shape}; expected one count per vocabulary id of the "
                f"model: ({vocab_size},) unembedding rows" + (f" or ({tokenizer_size},) tokenizer ids" if len(sizes) > 1
                                                               else "")
            )
        return cls(np.pad(arr, (0, max(0, vocab_size - arr.size))))

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], tokenizer: "PreTrainedTokenizerBase", vocab_size: int | None = None
    ) -> "TokenFrequencies":
        """Count the tokens of ``texts`` with ``tokenizer`` (no special tokens added).

        ``vocab_size`` defaults to ``len(tokenizer)``; pass the model's (larger) unembedding
        size where they differ (Pythia: 50,304 rows for 50,277 tokens).
        """
        size = len(tokenizer) if vocab_size is None else vocab_size
        counts = np.zeros(size, dtype=np.int64)
        for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
            ids = np.asarray(ids, dtype=np.int64)
            if ids.size and ids.max() >= size:
                raise ValueError(f"tokenizer produced id {int(ids.max())} ≥ vocab_size {size}")
            counts += np.bincount(ids, minlength=size)
        return cls(counts)

    @property
    def vocab_size(self) -> int:
        return int(self.counts.size)

    @property
    def total(self) -> int:
        """Number of counted tokens N."""
        return int(self.counts.sum())

    @property
    def probabilities(self) -> np.ndarray:
        """Add-one smoothed probabilities ``[vocab_size]``, summing to 1."""
        return (self.counts + 1.0) / (self.total + self.vocab_size)

    def entropy(self) -> float:
        """Entropy of the smoothed unigram distribution, in nats."""
        p = self.probabilities
        return float(-(p * np.log(p)).sum())

    @property
    def order(self) -> np.ndarray:
        """Token ids from most to least frequent (count descending, then id ascending): ``[V]``."""
        return np.lexsort((np.arange(self.vocab_size), -self.counts))

    @property
    def rank_index(self) -> np.ndarray:
        """Each token id's 0-based position in ``order``: ``[V]``."""
        ranks = np.empty(self.vocab_size, dtype=np.int64)
        ranks[self.order] = np.arange(self.vocab_size)
        return ranks

    def _top(self, n: int) -> np.ndarray:
        return self.rank_index < n

    def common(self) -> np.ndarray:
        """Boolean mask ``[V]``: the ``floor(0.15 V)`` most frequent types."""
        return self._top(_floor_fraction(COMMON_FRACTION, self.vocab_size))

    def longtail_50(self) -> np.ndarray:
        """Boolean mask ``[V]``: the ``floor(V / 2)`` least frequent types."""
        return ~self._top(self.vocab_size - _floor_fraction(LONGTAIL_FRACTION, self.vocab_size))

    def elbow(self) -> ZipfElbow:
        """Locate the Zipf elbow (module docstring); raises :class:`NoElbowError` if none qualifies."""
        v = self.vocab_size
        w = elbow_window(v)
        start = max(v // 2, 2 * w)
        if v - w - start < 3:
            raise NoElbowError(
                f"a vocabulary of {v} types is too small for the elbow detector (window {w}, start {start}); "
                f"it needs at least {start + w + 3} types"
            )
        log_rank = np.log(np.arange(1, v + 1, dtype=np.float64))
        log_p = np.log(self.probabilities[self.order])
        # windows start at i in [start, v - w): drop the last full window, as the authors' loop does
        slopes = sliding_slopes(log_rank[start:], log_p[start:], w)[:-1]
        jumps = np.abs(np.diff(slopes))
        threshold = float(jumps.mean() + ELBOW_SD * jumps.std())
        qualifying = np.flatnonzero((jumps > threshold) & (jumps > MIN_JUMP))
        if qualifying.size == 0:
            raise NoElbowError(
                f"no slope jump exceeds mean + {ELBOW_SD:g} SD ({threshold:.3g}) of {jumps.size} jumps: the tail "
                "has no Zipf elbow; use the 'longtail_50' definition instead"
            )
        best = int(qualifying[np.argmax(jumps[qualifying])])
        return ZipfElbow(start + best + 1, w, start, slopes, jumps, threshold)

    def elbow_15(self) -> np.ndarray:
        """Boolean mask ``[V]``: outside the common 15% and at or beyond the Zipf elbow."""
        return ~self.common() & (self.rank_index >= self.elbow().index)

    def rare_mask(self, definition: RareDefinition) -> np.ndarray:
        """The rare-token mask ``[V]`` for ``definition`` ∈ {"longtail_50", "elbow_15"}."""
        if definition == "longtail_50":
            return self.longtail_50()
        if definition == "elbow_15":
            return self.elbow_15()
        raise ValueError(f"unknown rare-token definition {definition!r}; use one of {', '.join(RARE_DEFINITIONS)}")
