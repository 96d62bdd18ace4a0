"""tracecause shared core: typed configs, crash-safe IO, stage contracts, tiny Qwen3."""
__version__ = "0.1.0"
