"""Benchmarks: each module prints one JSON line (python -m bench.<name>)."""
