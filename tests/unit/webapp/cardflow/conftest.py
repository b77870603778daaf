"""Card-flow fixtures: see tests/fixtures/cardflow.py."""

from __future__ import annotations

from tests.fixtures.cardflow import db_session, kiosk

__all__ = ["db_session", "kiosk"]
