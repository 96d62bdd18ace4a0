"""The training stage: ``python -m trainer CONFIG [key.sub=value ...]`` (trainer/README.md).

DeepSpeed ZeRO-3 full fine-tuning (engine.py, distributed.py, runtime.py), the canonical dataset
tokenized, packed and masked per paradigm (data.py, chat_data.py, packing.py, masks.py, replay.py),
the loss (loss.py, lean_loss.py), the loop (loop.py), checkpoints, preemption and resume
(checkpoint.py, signals.py) and the safetensors export (export.py).

Floor: a stage; imports only ``tracecause`` and ``configs``, never another stage or ``launch``
(tests/test_house_layers.py).
"""
