"""`flask doctor`: what this deployment is missing, checked against its real services.

    flask --app app doctor

Prints one line per check (ok, or what to do), the start-up checks of
webapp/deployment.py and the ones that need the services: the database answers and its
migrations are at head, Redis answers (when the bus is Redis), the CRLs load, trust
anchors are there, demo mode is off. Exits 1 when a check that matters fails, so a
deployment script can stop on it.
"""

from __future__ import annotations

from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import text

from .deployment import Finding, static_findings, uses_redis


def running() -> bool:
    """Whether this process is `flask doctor` (which must start to say what is missing)."""
    import sys
    from pathlib import Path

    program = Path(sys.argv[0])
    return "doctor" in sys.argv[1:] and "flask" in (program.name, program.parent.name)


def _database(app: Flask) -> list[Finding]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from . import db
    from .scaled import ROOT

    try:
        with db.engine().connect() as connection:
            connection.execute(text("SELECT 1"))
            try:
                current = {
                    row[0]
                    for row in connection.execute(text("SELECT version_num FROM alembic_version"))
                }
            except Exception:
                current = set()
    except Exception as exc:
        return [Finding("database", False, f"does not answer: {exc.__class__.__name__}", True)]
    heads = set(ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_heads())
    return [
        Finding("database", True, "answers"),
        Finding(
            "migrations",
            current == heads,
            f"at {sorted(current) or 'nothing'}, head is {sorted(heads)}: "
            "run `alembic upgrade head`",
            True,
        ),
    ]


def _redis(app: Flask) -> list[Finding]:
    if not uses_redis(app.config):
        return []
    import redis

    try:
        client = redis.Redis.from_url(app.config["BUS_URL"], socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        return [Finding("redis", False, f"does not answer: {exc}", True)]
    return [Finding("redis", True, "answers")]


def _jpki(app: Flask) -> list[Finding]:
    verifier: Any = app.extensions.get("jpki_verifier")
    try:
        errors = verifier.revocation.refresh_all()
        anchors = [a for a in verifier.trust.anchors if not getattr(a, "demo", False)]
    except RuntimeError as exc:  # no CARD_KEY_SECRET: the verifier is a stand-in
        return [Finding("card checks", False, str(exc), True)]
    return [
        Finding("trust anchors", bool(anchors), "no J-LIS root in ICHIMAI_JPKI_TRUST_DIR", True),
        Finding("CRLs", not errors, f"could not load: {errors}", True),
        Finding(
            "demo mode", not app.config.get("DEMO_MODE"), "ICHIMAI_DEMO is on: never in production"
        ),
    ]


@click.command("doctor")
@with_appcontext
def doctor() -> None:
    """Check this deployment: settings, database, migrations, Redis, CRLs."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    findings = static_findings(app.config) + _database(app) + _redis(app) + _jpki(app)
    failed = False
    for finding in findings:
        if finding.ok:
            click.echo(f"ok       {finding.name}")
        elif finding.fatal:
            failed = True
            click.echo(f"MISSING  {finding.name}: {finding.detail}")
        else:
            click.echo(f"warning  {finding.name}: {finding.detail}")
    if failed:
        raise SystemExit(1)
    click.echo("this deployment is ready")
