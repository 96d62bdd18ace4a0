"""The launcher (login node): ``tracecause plan / submit / status / resume / cancel / demo``.

A sweep spec (spec.py) becomes arms (arms.py) and a stage graph (graph.py, stages.py: datagen ->
train array -> eval array -> analysis), checked before any GPU-hour is spent (plan*.py, pins.py,
feasibility.py, power*.py, rehearse.py) and handed to a backend (executors.py: SLURM arrays via
submitit, a dry run, ``local``); per-task records (records.py) drive status and resume.

Floor: above the stages, whose config loaders it calls for the plan, whose command lines it renders,
and whose outputs it reads through ``tracecause.contracts``; below the fault harness (``faults/``)
that drives it (tests/test_house_layers.py). SLURM accounting comes from ``slurm.cluster``.
"""
