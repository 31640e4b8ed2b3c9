"""Benchmarks, exports and checks, run as modules from the repository: python -m scripts.NAME."""
