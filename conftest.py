"""Loads the claims suite's pytest plugin (fixtures/plugin.py).

The analyses run many small matrix products; multithreaded OpenBLAS is 5–25× slower for
them on a busy 2-core machine, so BLAS runs single-threaded unless the user says otherwise
(torch keeps its own thread setting, chosen per xdist worker by the plugin).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

pytest_plugins = ["fixtures.plugin"]
