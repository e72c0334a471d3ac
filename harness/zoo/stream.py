"""Token streams of the zoo: documents joined with BOS and cut into training rows."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from harness.zoo.specs import BOS_ID


def pack(token_lists: Sequence[Sequence[int]], n_ctx: int) -> np.ndarray:
    """Concatenate ``[BOS] + tokens`` of each document and cut into rows: ``[n_seq, n_ctx]`` int64.

    The tail that does not fill a row is dropped.
    """
    bos = np.array([BOS_ID], dtype=np.int64)
    stream = np.concatenate([part for ids in token_lists for part in (bos, np.asarray(ids, dtype=np.int64))])
    n_seq = len(stream) // n_ctx
    return stream[: n_seq * n_ctx].reshape(n_seq, n_ctx)
