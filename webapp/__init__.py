"""Ichimai platform: the Flask app factory."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from . import config, db


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the platform app; `test_config` overrides the environment's settings."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=os.path.join(os.path.dirname(__file__), "..", "templates"),
        static_folder=os.path.join(os.path.dirname(__file__), "..", "static"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(config.from_environment(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    db.init_app(app)

    from .views import health

    app.register_blueprint(health.bp)
    return app
