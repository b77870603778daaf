"""The counter (窓口端末): the librarian's tab shows the library's own user number."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register /counter (and the card flow layer it stands on, if not yet there)."""
    from .. import cardflow
    from . import views

    if "cardflow" not in app.blueprints:
        cardflow.init_app(app)
    app.register_blueprint(views.bp)
