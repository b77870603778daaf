"""Shared pytest configuration: fixture modules live in tests/fixtures/, one per area."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.jlis",
    "tests.fixtures.cards",
    "tests.fixtures.pcsc",
]
