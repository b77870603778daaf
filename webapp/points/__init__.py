"""Points (自治体ポイント管理): the ledger, grant programs, partner conversion, spending.

`init_app(app)` registers the partner API blueprint, the `flask points ...` commands and
the citizen directory; pages (staff grants, CSV upload, citizen view, merchant terminal
and settlement) are thin layers over the services in this package.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the points tables, the partner API, the staff pages, CLI and directory."""
    from . import api, cli, models, terminal, views  # noqa: F401  (models: the tables join the metadata)
    from .directory import IdentityDirectory

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)  # /points: officer and merchant pages
    app.register_blueprint(terminal.bp)  # /points/terminal: the merchant's till
    app.cli.add_command(cli.points)
    # The identity domain owns MyKey IDs; tests and benchmarks put another directory here.
    app.extensions.setdefault("points_directory", IdentityDirectory())
