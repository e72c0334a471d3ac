"""Token frequencies: validation, exact mask sizes, and the Zipf elbow on planted and null tails."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.data import corpus
from harness.zoo.builder import train_tokenizer
from harness.data.frequencies import (
    COMMON_FRACTION,
    LONGTAIL_FRACTION,
    NoElbowError,
    TokenFrequencies,
    elbow_window,
    sliding_slopes,
)

SCALE = 1e12  # counts this large make add-one smoothing and rounding negligible


def zipf_counts(vocab_size: int, kink_rank: int | None = None, tail_exponent: float = 3.0) -> np.ndarray:
    """Counts ∝ rank⁻¹, continuing as rank^-tail_exponent beyond ``kink_rank``; ids shuffled."""
    rank = np.arange(1, vocab_size + 1, dtype=float)
    p = rank**-1.0
    if kink_rank is not None:
        p = np.where(rank <= kink_rank, p, kink_rank**-1.0 * (rank / kink_rank) ** -tail_exponent)
    counts = np.round(SCALE * p / p.sum()).astype(np.int64)
    return counts[np.random.default_rng(vocab_size).permutation(vocab_size)]


@pytest.mark.parametrize(
    "counts, message",
    [
        (np.array([[1, 2], [3, 4]]), "1-D"),
        (np.array([], dtype=np.int64), "1-D"),
        (np.array([1, -2, 3]), "non-negative"),
        (np.array([1.5, 2.0]), "whole numbers"),
        (np.array([1.0, np.nan]), "whole numbers"),
        (np.array(["a", "b"]), "numbers"),
    ],
)
def test_bad_counts_are_rejected(counts, message):
    with pytest.raises(ValueError, match=message):
        TokenFrequencies(counts)


def test_from_npy_validates_the_file(tmp_path):
    good = tmp_path / "counts.npy"
    np.save(good, np.arange(10, dtype=np.int64))
    assert TokenFrequencies.from_npy(good, 10).counts.tolist() == list(range(10))
    with pytest.raises(ValueError, match=r"shape \(10,\); expected .*\(12,\) unembedding rows$"):
        TokenFrequencies.from_npy(good, 12)
    with pytest.raises(ValueError, match=r"\(12,\) unembedding rows or \(11,\) tokenizer ids"):
        TokenFrequencies.from_npy(good, 12, tokenizer_size=11)
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match="cannot read token counts"):
        TokenFrequencies.from_npy(garbage, 10)
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}] * 10, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="cannot read token counts"):
        TokenFrequencies.from_npy(pickled, 10)
    negative = tmp_path / "negative.npy"
    np.save(negative, -np.ones(10))
    with pytest.raises(ValueError, match="non-negative"):
        TokenFrequencies.from_npy(negative, 10)
    with pytest.raises(ValueError, match="cannot read"):
        TokenFrequencies.from_npy(tmp_path / "missing.npy", 10)


def test_counts_of_tokenizer_length_are_padded_to_the_unembedding(tmp_path):
    """Pythia: 50,277 tokenizer ids, 50,304 unembedding rows. Counts of either length give the same
    frequencies: the rows no token reaches have count 0 (and so are among the rare types)."""
    tokenizer_counts = np.random.default_rng(0).poisson(50.0, 50277) + 1
    short, full = tmp_path / "short.npy", tmp_path / "full.npy"
    np.save(short, tokenizer_counts)
    np.save(full, np.concatenate([tokenizer_counts, np.zeros(27, dtype=tokenizer_counts.dtype)]))
    padded = TokenFrequencies.from_npy(short, 50304, tokenizer_size=50277)
    assert padded.vocab_size == 50304 and (padded.counts[50277:] == 0).all()
    assert np.array_equal(padded.counts, TokenFrequencies.from_npy(full, 50304, tokenizer_size=50277).counts)
    assert padded.longtail_50()[50277:].all() and not padded.common()[50277:].any()
    assert TokenFrequencies.from_npy(short, 50277, tokenizer_size=50277).vocab_size == 50277


def test_probabilities_are_add_one_smoothed():
    counts = np.array([6, 0, 3, 1])
    freqs = TokenFrequencies(counts)
    np.testing.assert_allclose(freqs.probabilities, (counts + 1) / (counts.sum() + counts.size))
    assert freqs.entropy() == pytest.approx(-(freqs.probabilities * np.log(freqs.probabilities)).sum())


def test_ties_are_broken_by_token_id():
    freqs = TokenFrequencies(np.array([5, 9, 5, 0, 9, 5]))
    assert freqs.order.tolist() == [1, 4, 0, 2, 5, 3]
    assert freqs.rank_index.tolist() == [2, 0, 3, 5, 1, 4]


@pytest.mark.parametrize("vocab_size", [8, 20, 1000, 50257])
def test_mask_sizes_are_exact(vocab_size):
    freqs = TokenFrequencies(np.random.default_rng(0).poisson(3.0, vocab_size))
    common, rare = freqs.common(), freqs.longtail_50()
    assert common.sum() == math.floor(COMMON_FRACTION * vocab_size)
    assert rare.sum() == math.floor(LONGTAIL_FRACTION * vocab_size)
    assert not (common & rare).any()
    assert freqs.counts[common].min() >= freqs.counts[~common].max()
    assert freqs.counts[rare].max() <= freqs.counts[~rare].min()


@pytest.mark.parametrize("vocab_size, kink_rank, tail_exponent", [(8192, 6000, 3.0), (8192, 5000, 2.0), (4000, 3000, 1.5)])
def test_elbow_finds_a_planted_kink(vocab_size, kink_rank, tail_exponent):
    freqs = TokenFrequencies(zipf_counts(vocab_size, kink_rank, tail_exponent))
    elbow = freqs.elbow()
    w = elbow_window(vocab_size)
    assert elbow.window == w
    # the largest slope change is in a window that contains the kink
    assert kink_rank - w <= elbow.index <= kink_rank
    mask = freqs.rare_mask("elbow_15")
    assert mask.sum() == vocab_size - elbow.index
    assert np.array_equal(mask, freqs.rank_index >= elbow.index)


@pytest.mark.parametrize(
    "counts",
    [zipf_counts(8192), zipf_counts(1024), np.full(4096, 17)],
    ids=["zipf-8192", "zipf-1024", "uniform"],
)
def test_no_elbow_on_a_straight_tail(counts):
    freqs = TokenFrequencies(counts)
    with pytest.raises(NoElbowError, match="no slope jump"):
        freqs.elbow()
    with pytest.raises(NoElbowError):
        freqs.rare_mask("elbow_15")
    assert freqs.rare_mask("longtail_50").sum() == counts.size // 2


def test_elbow_refuses_a_tiny_vocabulary():
    with pytest.raises(NoElbowError, match="too small"):
        TokenFrequencies(np.arange(12)).elbow()


def test_unknown_rare_definition():
    with pytest.raises(ValueError, match="longtail_50, elbow_15"):
        TokenFrequencies(np.ones(10)).rare_mask("bottom_10")


def test_sliding_slopes_match_per_window_least_squares():
    rng = np.random.default_rng(1)
    x = np.sort(rng.uniform(5, 9, 60))
    y = -1.3 * x + rng.normal(0, 0.1, 60)
    w = 7
    expected = [np.polyfit(x[i : i + w], y[i : i + w], 1)[0] for i in range(len(x) - w + 1)]
    np.testing.assert_allclose(sliding_slopes(x, y, w), expected, rtol=1e-8)


def test_from_texts_counts_with_the_subject_tokenizer():
    texts = [d.text for d in corpus.documents()[:40]]
    tokenizer = train_tokenizer(texts, 512)
    freqs = TokenFrequencies.from_texts(texts, tokenizer)
    expected = np.zeros(512, dtype=np.int64)
    for text in texts:
        np.add.at(expected, tokenizer.encode(text, add_special_tokens=False), 1)
    assert np.array_equal(freqs.counts, expected)
    assert TokenFrequencies.from_texts(texts, tokenizer, vocab_size=520).vocab_size == 520
    with pytest.raises(ValueError, match="vocab_size"):
        TokenFrequencies.from_texts(texts, tokenizer, vocab_size=100)
