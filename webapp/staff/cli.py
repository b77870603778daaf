"""`flask staff create-admin LOGIN`: the first platform administrator."""

from __future__ import annotations

import os

import click
from flask.cli import AppGroup

from .. import db
from . import services
from .models import Role

group = AppGroup("staff", help="Staff accounts.")


@group.command("create-admin")
@click.argument("login")
def create_admin(login: str) -> None:
    """Create a platform admin; password from ICHIMAI_ADMIN_PASSWORD or a prompt."""
    password = os.environ.get("ICHIMAI_ADMIN_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    with db.new_session() as s:
        try:
            user = services.create_staff(s, login, password, Role.PLATFORM_ADMIN)
        except services.StaffError as exc:
            raise click.ClickException(exc.message_en) from exc
        click.echo(f"created platform admin {user.login}")
