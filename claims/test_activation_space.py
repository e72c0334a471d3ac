"""Claims C5–C6: specialists in activation space.

Each test runs the claim's registered procedure (``harness.claims``) through the runner that
``python -m harness check`` uses; the claim's scope decides the parametrization. No statistics here.
"""

import pytest


@pytest.mark.claim("C5")
def test_C5_specialists_not_modular(claim_target, check_claim):
    check_claim(claim_target)


@pytest.mark.claim("C6")
def test_C6_specialists_coordinated(claim_target, check_claim):
    check_claim(claim_target)
