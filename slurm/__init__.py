"""SLURM helpers: the local single-machine cluster (``slurm/local-cluster``) and thin, typed
wrappers over ``sacct``/``sinfo`` that the launcher uses for status at scale (see cluster.py)."""
