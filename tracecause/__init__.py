"""tracecause shared core: typed configs, crash-safe IO, stage contracts, tiny Qwen3.

Also the chat template's rendering and splitting (chat.py), seals of finished outputs (seal.py),
the request journal and the one-writer lease (journal.py, lease.py), hub names and benchmark
files (hub.py, benchmarks.py), the W&B offline-file reader and sync, and the known-answer world
(world/).

Floor: the ground floor every other room builds on; imports nothing of the project but
``configs`` (tests/test_house_layers.py).
"""
__version__ = "0.1.0"
