"""The evaluation stage: ``python -m evalsuite generate|judge|score|analyze ...`` (evalsuite/README.md).

- generation: generate.py (vLLM think / no-think; engine.py, engine_hf.py, generation_key.py, cache.py)
- what is asked: battery.py (configs/evals/*.yaml), loaders.py (upstream benchmark formats)
- judging: judges/ (the judge stage, the LLM rubrics, their backends, the known-answer world's rule judge)
- scoring: score.py, metrics.py (every metric's definition), scorers.py, refusal.py
- outputs and tracking: outputs.py (shards, markers), tracking.py and eval_run.py (W&B)
- analysis/ (causal effects of a sweep) and report/ (figures, report.md, report.html)

Floor: a stage; imports only ``tracecause`` and ``configs``, never another stage or ``launch``
(tests/test_house_layers.py).
"""
