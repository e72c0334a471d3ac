"""Speed and memory benchmarks of the suite: ``python -m benchmarks`` runs them all and prints one table.

Modules: ``measure`` (results, timing, peak memory), ``models`` (random-weight models of named
shapes, configs in code), ``influence`` (the exact sweep against the hook loop, its floor, its
scaling), ``analyses`` (null curves, Louvain, head ablation, spectra), ``claims_run`` (the whole
claims suite on the default zoo), ``zoo_build`` (zoo build times), ``gpu`` (one checkpoint through
every measurement on a GPU).
"""
