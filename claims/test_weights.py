"""Claims C8–C9: heavy-tailed specialist weight spectra, growing in training.

Each test runs the claim's registered procedure (``harness.claims``) through the runner that
``python -m harness check`` uses; the claim's scope decides the parametrization. No statistics here.
"""

import pytest


@pytest.mark.claim("C8")
def test_C8_specialists_heavy_tailed(claim_target, check_claim):
    check_claim(claim_target)


@pytest.mark.claim("C9")
def test_C9_tails_grow_in_training(claim_target, check_claim):
    check_claim(claim_target)
