"""Identity: MyKey IDs (マイキーID), card bindings and service links (サービスID)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the identity tables with the metadata, and the admin page of renewed
    cards to check (the kiosk's pages are the card flow's)."""
    from . import (
        models,  # noqa: F401  (imported for its tables)
        views,
    )

    if views.bp.name not in app.blueprints:
        app.register_blueprint(views.bp)
