"""Counter fixtures: see tests/fixtures/counter.py."""

from __future__ import annotations

from tests.fixtures.counter import counter

__all__ = ["counter"]
