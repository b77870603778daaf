"""Liveness and readiness for the reverse proxy."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from . import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """200 when the process is up and the database answers."""
    db.session().execute(text("SELECT 1"))
    return jsonify(status="ok")
