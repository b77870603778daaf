"""Entry point: `flask --app app run` serves the Ichimai platform."""

from __future__ import annotations

from webapp import create_app

app = create_app()
