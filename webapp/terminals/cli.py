"""Terminals from the command line, for an operator's first run and for scripts.

`flask terminals create|pairing-code|list` (the admin pages' *Terminals* does the same);
`flask bridge wheel`: build the bridge's wheel into the cache now (at deploy time)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from .. import db
from ..providers.models import Provider
from . import services
from .bridge_wheel import WheelUnavailable, ensure_wheel
from .download_views import wheel_dir
from .errors import TerminalsError
from .models import TerminalKind

group = AppGroup("terminals", help="Counter, kiosk and till terminals.")


@group.command("create")
@click.argument("name")
@click.option("--provider", "provider_id", type=int, required=True, help="The provider's id.")
@click.option("--kind", type=click.Choice(TerminalKind.STAFFED), default=TerminalKind.COUNTER)
@click.option("--merchant", "merchant_id", type=int, help="A shop till's merchant id.")
def create(name: str, provider_id: int, kind: str, merchant_id: int | None) -> None:
    """Create a terminal NAME (e.g. カウンター1) of a provider."""
    with db.new_session() as s:
        if s.get(Provider, provider_id) is None:
            raise click.ClickException(f"no provider {provider_id} (`flask providers list`)")
        try:
            terminal = services.create_terminal(s, provider_id, kind, name, merchant_id=merchant_id)
        except TerminalsError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"created terminal {terminal.id} {terminal.name} ({terminal.kind})")


@group.command("pairing-code")
@click.argument("terminal_id", type=int)
def pairing_code(terminal_id: int) -> None:
    """A one-time code that pairs a bridge with terminal TERMINAL_ID (printed once)."""
    with db.new_session() as s:
        try:
            issued = services.create_pairing_code(s, terminal_id)
        except TerminalsError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(issued.code)
        click.echo(f"valid until {issued.expires_at:%Y-%m-%d %H:%M} UTC", err=True)


@group.command("list")
def list_() -> None:
    """List the terminals: id, provider, kind, name."""
    from sqlalchemy import select

    from .models import Terminal

    with db.new_session() as s:
        for t in s.scalars(select(Terminal).order_by(Terminal.id)):
            click.echo(f"{t.id}\t{t.provider_id}\t{t.kind}\t{t.name}")


@click.group("bridge")
def bridge_cli() -> None:
    """The bridge as the platform serves it."""


@bridge_cli.command("wheel")
@with_appcontext
def wheel() -> None:
    """Build (or find) the ichimai-bridge wheel that /bridge/ serves; print its path."""
    try:
        path = ensure_wheel(wheel_dir(current_app))
    except WheelUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(path))
