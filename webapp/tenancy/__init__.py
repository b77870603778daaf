"""Municipal tenancy: each municipality (by its 全国地方公共団体コード) is a tenant; its
administrator manages its providers, their terminals and staff, and its points officers
(webapp/tenancy/scope.py); the platform admin creates municipalities and their first
administrator, and either imports providers from an ISIL-list CSV (importer.py)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The municipalities and provider-import pages (/admin/municipalities, ...)."""
    from . import views

    app.register_blueprint(views.bp)
