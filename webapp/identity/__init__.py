"""Identity: MyKey IDs (マイキーID), card bindings and service links (サービスID)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the identity tables with the metadata (no views yet: kiosk pages come later)."""
    from . import models  # noqa: F401  (imported for its tables)
