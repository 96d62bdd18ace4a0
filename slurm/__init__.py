"""SLURM helpers the launcher uses: the local single-machine cluster (``slurm/local-cluster``, a script)
and thin, typed wrappers over ``sacct``/``sinfo`` for status at scale (``slurm.cluster``).

Below ``launch`` and the stages: this package imports nothing of the project above ``tracecause``
(tests/test_house_layers.py). The fault-injection harness that drives this cluster lives in
``faults/``, above ``launch``.
"""
