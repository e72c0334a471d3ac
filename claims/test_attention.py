"""Claim C7: no routing through single attention heads.

Each test runs the claim's registered procedure (``harness.claims``) through the runner that
``python -m harness check`` uses; the claim's scope decides the parametrization. No statistics here.
"""

import pytest


@pytest.mark.claim("C7")
def test_C7_no_head_routing(claim_target, check_claim):
    check_claim(claim_target)
