"""The kiosk (キオスク端末): citizens create their MyKey ID and link service IDs by themselves."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the /kiosk pages and JSON API (and the demo's virtual reader panel)."""
    from .. import demo_reader
    from . import api, views

    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    demo_reader.init_app(app)  # /demo/reader, in demo mode only
