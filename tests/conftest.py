"""Shared pytest configuration: fixture modules live in tests/fixtures/, one per area."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

pytest_plugins = [
    "tests.fixtures.jlis",
    "tests.fixtures.cards",
    "tests.fixtures.pcsc",
]

# Timing is never a pass/fail criterion here (a loaded 2-core CI machine is slow);
# hypothesis' per-example deadline would turn load into flaky failures.
settings.register_profile(
    "ichimai", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("ichimai")
