"""The embedded model zoo: small models trained here on a real corpus, and planted positive controls.

``specs`` names every family (``ZOO``) and where builds live; ``build`` trains or plants them;
``planted`` turns a trained family into a positive control with known specialist neurons.
"""

from harness.zoo.builder import build, ensure_built
from harness.zoo.specs import (
    BOS_ID,
    COUNTS,
    MANIFEST,
    PLANTED_IDS,
    ZOO,
    PlantedSpec,
    ZooSpec,
    family_dir,
    get_spec,
    is_built,
    zoo_root,
)

__all__ = ["BOS_ID", "COUNTS", "MANIFEST", "PLANTED_IDS", "ZOO", "PlantedSpec", "ZooSpec", "build",
           "ensure_built", "family_dir", "get_spec", "is_built", "zoo_root"]
