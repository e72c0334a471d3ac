"""Evaluation data: drawn windows, position filters, rare/common conditioning, matched selections, bad input."""

import numpy as np
import pytest

from harness.data.evaldata import (EvalData, EvalSpec, TooFewPositionsError, build_eval_data, select_positions,
                                   token_stream, valid_positions)

BOS = 0


def _data(tokens, first_position=1):
    tokens = np.asarray(tokens, dtype=np.int64)
    spec = EvalSpec(n_sequences=tokens.shape[0], seq_len=tokens.shape[1], first_position=first_position)
    valid = valid_positions(tokens, (BOS,), first_position)
    return EvalData(tokens=tokens, valid=valid, spec=spec, special_ids=(BOS,))


def test_targets_are_the_next_tokens_and_conditioning_switches():
    d = _data([[BOS, 5, 6, 7, 8, 9], [BOS, 9, 8, 7, 6, 5]])
    assert d.targets[0].tolist() == [5, 6, 7, 8, 9, -1]
    rare = np.zeros(10, dtype=bool)
    rare[7] = True
    by_target = d.positions(rare, "target")
    by_input = d.positions(rare, "input")
    assert np.flatnonzero(by_target[0]).tolist() == [2]  # position 2 predicts token 7
    assert np.flatnonzero(by_input[0]).tolist() == [3]  # position 3 reads token 7
    with pytest.raises(ValueError, match="conditioning"):
        d.positions(rare, "output")


def test_positions_next_to_bos_or_eos_and_before_first_position_are_not_valid():
    tokens = [[BOS, 5, 6, BOS, 7, 8, 9, 4], [BOS, 1, 2, 3, 4, 5, 6, 7]]
    d = _data(tokens, first_position=2)
    # t=0,1 before first_position; t=2 predicts BOS; t=3 reads BOS; the last position has no target.
    assert np.flatnonzero(d.valid[0]).tolist() == [4, 5, 6]


def test_fingerprint_follows_the_tokens():
    a = _data([[BOS, 5, 6, 7], [BOS, 1, 2, 3]])
    b = _data([[BOS, 5, 6, 7], [BOS, 1, 2, 3]])
    c = _data([[BOS, 5, 6, 7], [BOS, 1, 2, 4]])
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_selection_matches_rare_counts_per_sequence_with_disjoint_common_repeats():
    rng = np.random.default_rng(0)
    rare = rng.random((20, 50)) < 0.1
    common = ~rare & (rng.random((20, 50)) < 0.8)
    sel = select_positions(rare, common, n_repeats=3, seed=1, min_rare=10)
    assert sel.n_rare == rare.sum()
    for s in range(20):
        in_seq = sel.seq == s
        r = set(sel.pos[in_seq & (sel.group == 0)])
        assert r == set(np.flatnonzero(rare[s]))
        seen = set()
        for k in range(1, 4):
            c = set(sel.pos[in_seq & (sel.group == k)])
            assert len(c) == min(len(r), max(0, common[s].sum() - (k - 1) * len(r)))
            assert c <= set(np.flatnonzero(common[s])) and not (c & seen) and not (c & r)
            seen |= c
    again = select_positions(rare, common, n_repeats=3, seed=1, min_rare=10)
    assert np.array_equal(sel.pos, again.pos)


def test_too_few_rare_positions_is_a_clear_error():
    rare = np.zeros((4, 10), dtype=bool)
    rare[0, 3] = True
    with pytest.raises(TooFewPositionsError, match=r"only 1 rare-target positions.*needs >= 5.*--eval-sequences"):
        select_positions(rare, ~rare, n_repeats=1, seed=0, min_rare=5)


@pytest.mark.parametrize("kwargs, match", [({"n_sequences": 1}, "n_sequences"), ({"seq_len": 4}, "seq_len")])
def test_bad_eval_spec(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EvalSpec(**kwargs)


class _Words:
    """A tokenizer of whitespace-separated integers (ids are the numbers themselves)."""

    @staticmethod
    def encode(text, add_special_tokens=False):
        return [int(w) for w in text.split()]


def test_sequences_are_non_overlapping_windows_of_the_document_stream():
    texts = [" ".join(str(i) for i in range(1 + 10 * d, 10 * (d + 1))) for d in range(6)]  # 6 documents of 9 ids
    stream = token_stream(texts, _Words(), eos_id=BOS)
    assert stream.tolist() == [i for t in texts for i in [*map(int, t.split()), BOS]] and stream.dtype == np.int64
    data = build_eval_data(stream, EvalSpec(n_sequences=5, seq_len=7, seed=3), bos_id=BOS, special_ids=(BOS,))
    assert data.tokens.shape == (5, 7) and (data.tokens[:, 0] == BOS).all()
    windows = {tuple(stream[s:s + 6]) for s in range(0, stream.size - 5, 6)}
    assert {tuple(row[1:]) for row in data.tokens} <= windows and len({tuple(r) for r in data.tokens}) == 5
    assert not data.valid[data.targets == BOS].any() and not data.valid[data.tokens == BOS].any()
    again = build_eval_data(stream, EvalSpec(n_sequences=5, seq_len=7, seed=3), bos_id=BOS, special_ids=(BOS,))
    assert again.fingerprint == data.fingerprint
    with pytest.raises(ValueError, match=r"room for 10 sequences of 7, but 11 were asked for"):
        build_eval_data(stream, EvalSpec(n_sequences=11, seq_len=7), bos_id=BOS, special_ids=(BOS,))
