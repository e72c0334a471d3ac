"""Model-level calibration: the claims on real tiny models, trained with several seeds and planted.

End to end, with the exact influence: the 2-layer GPT-NeoX family (the tiny zoo model trained 512
updates) with three seeds (``neox-2l``, ``-seed1``, ``-seed2``: no specialists were put there) and
``neox-2l-planted`` (``harness.zoo.planted``: 16 planted specialists, their ids known). The 32-update
``neox-tiny`` family was used first; no group of 16 planted neurons can reach the top of its influence
ranking (``harness.zoo.planted``). For each family the registered procedures run through the same
``Session`` as ``harness check``; for the planted one the specialists the suite selects are compared
with the planted ids (precision and recall).
"""

from __future__ import annotations

import json
from typing import Any

from harness import zoo
from harness.claims import select_claims
from harness.claims.runner import Session, build_zoo, targets
from harness.claims.specialists import recovery, select_specialists
from harness.data.evaldata import EvalSpec
from harness.measure.cache import MeasurementCache
from harness.measure.study import StudyConfig
from harness.subjects import expand_subjects

UNPLANTED = ("neox-2l", "neox-2l-seed1", "neox-2l-seed2")
PLANTED = "neox-2l-planted"
CONFIG = StudyConfig(eval=EvalSpec(n_sequences=192, seq_len=64), min_rare_positions=100)


def model_level(settings: dict[str, Any], cache_dir: str | None = None, claims: str | None = None) -> dict[str, Any]:
    """Verdicts of every claim on the unplanted and planted tiny families, and the planted ones' recovery."""
    families = [*UNPLANTED, PLANTED]
    subjects = expand_subjects(",".join(f"zoo:{f}@*" for f in families))
    build_zoo(subjects, progress=False)
    session = Session(settings, CONFIG, MeasurementCache(cache_dir))
    verdicts: dict[str, dict[str, str]] = {}
    for target in targets(select_claims(claims), subjects):
        record = session.evaluate(target)
        verdicts.setdefault(record.subject, {})[record.claim_id] = record.verdict
    final = next(s for s in subjects if s.family == f"zoo:{PLANTED}" and s.step == zoo.ZOO[PLANTED].final_step)
    planted = set(json.loads((zoo.family_dir(PLANTED) / zoo.PLANTED_IDS).read_text())["planted_neurons"])
    found = set(int(i) for i in select_specialists(session.study(final), settings).ids)
    return {"families": families, "verdicts": verdicts, "recovery": recovery(found, planted),
            "eval": {"sequences": CONFIG.eval.n_sequences, "sequence_length": CONFIG.eval.seq_len}}
