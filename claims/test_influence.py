"""Claims C1–C4: rare-token influence regimes and their emergence in training.

Each test runs the claim's registered procedure (``harness.claims``) through the runner that
``python -m harness check`` uses; the claim's scope decides the parametrization. No statistics here.
"""

import pytest


@pytest.mark.claim("C1")
def test_C1_rare_three_regimes(claim_target, check_claim):
    check_claim(claim_target)


@pytest.mark.claim("C2")
def test_C2_common_two_regimes(claim_target, check_claim):
    check_claim(claim_target)


@pytest.mark.claim("C3")
def test_C3_power_law_middle(claim_target, check_claim):
    check_claim(claim_target)


@pytest.mark.claim("C4")
def test_C4_plateau_emerges(claim_target, check_claim):
    check_claim(claim_target)
