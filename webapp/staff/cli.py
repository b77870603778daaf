"""`flask staff create-admin LOGIN` (the first platform admin) and `create-points LOGIN`."""

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


@group.command("create-points")
@click.argument("login")
@click.option("--municipality", "municipality_id", type=int, help="A points officer's city id.")
@click.option("--merchant", "merchant_id", type=int, help="Merchant staff's merchant id.")
def create_points(login: str, municipality_id: int | None, merchant_id: int | None) -> None:
    """Create a points officer (--municipality) or merchant staff (--merchant) account."""
    if (municipality_id is None) == (merchant_id is None):
        raise click.UsageError("give exactly one of --municipality or --merchant")
    role = Role.POINTS_OFFICER if municipality_id is not None else Role.MERCHANT_STAFF
    password = os.environ.get("ICHIMAI_STAFF_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    with db.new_session() as s:
        try:
            user = services.create_staff(
                s, login, password, role, municipality_id=municipality_id, merchant_id=merchant_id
            )
        except services.StaffError as exc:
            raise click.ClickException(exc.message_en) from exc
        click.echo(f"created {role.value} {user.login}")
