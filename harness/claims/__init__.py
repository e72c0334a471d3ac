"""The claims as decision procedures: a registry (``CLAIMS``) filled by the modules below.

``harness.claims.registry`` defines the ``@claim`` decorator; importing this package registers
C1–C4 (``influence``), C5–C6 (``activation``), C7 (``attention``) and C8–C9 (``weights``).
``harness.claims.runner`` evaluates them on subjects for pytest and ``harness check``.
"""

from harness.claims import activation, attention, influence, weights  # noqa: F401  (registers the claims)
from harness.claims.registry import CLAIMS, Claim, ClaimRegistryError, select_claims

__all__ = ["CLAIMS", "Claim", "ClaimRegistryError", "select_claims"]
