"""Causal-effect analysis of a sweep's scored samples.

Entry points: ``python -m evalsuite analyze SWEEP_DIR`` (:func:`evalsuite.analysis.cli.main`),
:func:`evalsuite.analysis.run.analyze` (writes ``<sweep>/analysis/``) and
:func:`evalsuite.analysis.simulate.simulate_sweep` (a sweep with planted effects for tests and demos).
"""
