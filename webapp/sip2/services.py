"""A library's SIP2: its settings, its connector bridge, and asking the library system.

Plain Python over a database session and a TerminalLink (no Flask). What reaches the
library system is decided by the connector bridge's SIP2 firewall (bridge/sip2); here
the platform only builds the requests (webapp/terminals/sip2.py), relays sealed
passwords it cannot open, and reads the bridge's projection of the answer (valid patron,
valid password, the patron-status flags: never a name, fees or items).

A bridge keeps its SIP2 settings in memory only: after it restarts it answers
`sip2_not_configured`, and `Sip2Gateway` sends the settings again and retries once.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bridge import seal
from bridge.sip2_wire import (
    CHARSETS,
    Sip2Config,
    Sip2EndSession,
    Sip2Patron,
    Sip2Status,
    config_from_json,
)

from ..inputs import parse_json
from ..providers.models import Provider, ProviderKind
from ..terminals import sip2 as requests
from ..terminals.interfaces import TerminalLink
from ..terminals.models import BridgeDevice, Terminal, TerminalKind, utcnow
from ..terminals.remote import Sip2Failed
from .models import LibrarySip2

# How long the platform waits for the library system's answer through the bridge.
EXCHANGE_TIMEOUT = 12.0
CONFIGURE_TIMEOUT = 20.0
# Where a library's connector may stand: a counter or kiosk PC on the library's network.
CONNECTOR_KINDS = (TerminalKind.COUNTER, TerminalKind.KIOSK)
MAX_ENVELOPE_TEXT = 2048


class Sip2Code(enum.StrEnum):
    """Why a SIP2 setting or check was refused here (the bridge's own codes are sip2_*)."""

    NOT_A_LIBRARY = "sip2_not_a_library"
    NO_CONNECTOR = "sip2_no_connector"  # the terminal has no paired bridge
    CONNECTOR_CHANGED = "sip2_connector_changed"  # re-paired: type the passwords again
    RESEAL = "sip2_reseal"  # the address changed: type the passwords again
    INVALID = "sip2_invalid"  # a setting out of bounds; `field` says which
    NOT_SET_UP = "sip2_not_set_up"


class Sip2SettingsError(Exception):
    """A SIP2 setting refused; `code` words it, `field` names the form field if any."""

    def __init__(self, code: str, field: str | None = None, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.field = field


@dataclass(frozen=True)
class Connector:
    """A terminal of the library that can carry SIP2: its bridge and sealing key."""

    terminal_id: int
    terminal_name: str
    bridge_id: str
    seal_key: str


def settings_of(s: Session, provider_id: int) -> LibrarySip2 | None:
    """The library's SIP2 settings, or None (staff verify its links at the counter)."""
    return s.get(LibrarySip2, provider_id)


_PROVIDER_WITH_SETTINGS = (
    select(Provider, LibrarySip2)
    .outerjoin(LibrarySip2, LibrarySip2.provider_id == Provider.id)
    .where(Provider.id == bindparam("provider_id"))
)


def provider_with_settings(
    s: Session, provider_id: int
) -> tuple[Provider | None, LibrarySip2 | None]:
    """The provider and its SIP2 settings (either None when missing), in one read."""
    row = s.execute(_PROVIDER_WITH_SETTINGS, {"provider_id": provider_id}).first()
    return (None, None) if row is None else (row[0], row[1])


def has_sip2(s: Session, provider_id: int) -> bool:
    """Whether the library checks library passwords with its own system."""
    return settings_of(s, provider_id) is not None


def connectors(s: Session, provider_id: int) -> list[Connector]:
    """The library's terminals with an active paired bridge (candidate connectors)."""
    stmt = (
        select(Terminal, BridgeDevice)
        .join(BridgeDevice, BridgeDevice.terminal_id == Terminal.id)
        .where(
            Terminal.provider_id == provider_id,
            Terminal.kind.in_(CONNECTOR_KINDS),
            BridgeDevice.revoked_at.is_(None),
        )
        .order_by(Terminal.id)
    )
    return [
        Connector(terminal.id, terminal.name, device.id, device.seal_public_key)
        for terminal, device in s.execute(stmt)
    ]


def _envelope(text: str, field: str) -> dict[str, Any]:
    """A sealed envelope as the admin's page posted it (checked, never opened here)."""
    if len(text) > MAX_ENVELOPE_TEXT:
        raise Sip2SettingsError(Sip2Code.INVALID, field, "envelope too large")
    try:
        value = parse_json(text, max_bytes=MAX_ENVELOPE_TEXT)  # bounded depth: never RecursionError
        seal.check_secret_envelope(value)
    except (ValueError, seal.SealError) as exc:
        raise Sip2SettingsError(Sip2Code.INVALID, field, str(exc)) from None
    return dict(value)


def save(
    s: Session,
    provider: Provider,
    *,
    terminal_id: int,
    sealed_for: str,
    host: str,
    port: int,
    tls: bool,
    ca_pem: str | None,
    charset: str,
    checksums: bool,
    patron_status: bool,
    institution_id: str,
    location_code: str,
    login_user: str,
    login_password: str | None,
    terminal_password: str | None,
    clear_terminal_password: bool = False,
    now: datetime | None = None,
) -> LibrarySip2:
    """Save the library's SIP2 settings (the passwords as envelopes sealed in the page).

    A password left empty keeps the stored envelope, but only while the connector
    bridge and the address (host, port, TLS) are the ones it was sealed for; otherwise
    it must be typed again (connector_changed / reseal). Nothing is written on refusal.
    """
    if provider.kind not in ProviderKind.LIBRARIES:
        raise Sip2SettingsError(Sip2Code.NOT_A_LIBRARY)
    connector = next((c for c in connectors(s, provider.id) if c.terminal_id == terminal_id), None)
    if connector is None:
        raise Sip2SettingsError(Sip2Code.NO_CONNECTOR, "terminal_id")
    if sealed_for and sealed_for != connector.bridge_id:
        # The page sealed to a bridge that is no longer the terminal's (re-paired since).
        raise Sip2SettingsError(Sip2Code.CONNECTOR_CHANGED, "terminal_id")
    row = settings_of(s, provider.id)
    target = f"{'tls' if tls else 'tcp'}://{host.strip().lower()}:{port}"
    same_seal = row is not None and row.bridge_id == connector.bridge_id
    same_seal = same_seal and row is not None and row.target() == target

    def sealed(text: str | None, stored: dict[str, Any] | None, field: str) -> Any:
        if text:
            return _envelope(text, field)
        if stored is None:
            return None
        if not same_seal:
            code = Sip2Code.CONNECTOR_CHANGED
            if row is not None and row.bridge_id == connector.bridge_id:
                code = Sip2Code.RESEAL
            raise Sip2SettingsError(code, field)
        return stored

    login = sealed(login_password, row.login_password if row else None, "login_password")
    if login is None:
        raise Sip2SettingsError(Sip2Code.INVALID, "login_password", "a login password is needed")
    if clear_terminal_password:
        terminal = None
    else:
        terminal = sealed(
            terminal_password, row.terminal_password if row else None, "terminal_password"
        )
    fields: dict[str, Any] = {
        "host": host.strip(),
        "port": port,
        "login_user": login_user.strip(),
        "login_password": login,
        "institution_id": institution_id.strip(),
        "location_code": location_code.strip(),
        "tls": tls,
        "charset": charset,
        "checksums": checksums,
        "patron_status": patron_status,
    }
    if terminal is not None:
        fields["terminal_password"] = terminal
    if ca_pem and ca_pem.strip():
        fields["ca_pem"] = ca_pem.strip() + "\n"
    if charset not in CHARSETS:
        raise Sip2SettingsError(Sip2Code.INVALID, "charset")
    try:
        config_from_json(fields, envelope=lambda value, name: value)
    except ValueError as exc:
        name = str(exc).split(":", 1)[0]
        raise Sip2SettingsError(Sip2Code.INVALID, name, str(exc)) from None
    if row is None:
        row = LibrarySip2(provider_id=provider.id)
        s.add(row)
    row.terminal_id = connector.terminal_id
    row.bridge_id = connector.bridge_id
    row.host, row.port, row.tls = fields["host"], port, tls
    row.ca_pem = fields.get("ca_pem")
    row.charset, row.checksums, row.patron_status = charset, checksums, patron_status
    row.institution_id, row.location_code = fields["institution_id"], fields["location_code"]
    row.login_user, row.login_password = fields["login_user"], login
    row.terminal_password = terminal
    row.updated_at = now or utcnow()
    row.checked_at, row.check_code = None, None
    s.commit()
    return row


def remove(s: Session, provider_id: int) -> bool:
    """Drop the library's SIP2 (its links are verified by staff again); True if it had one."""
    row = settings_of(s, provider_id)
    if row is None:
        return False
    s.delete(row)
    s.commit()
    return True


def config_of(row: LibrarySip2) -> Sip2Config:
    """The settings the connector bridge is sent (the passwords still sealed)."""
    return Sip2Config(
        host=row.host,
        port=row.port,
        login_user=row.login_user,
        login_password=row.login_password,
        institution_id=row.institution_id,
        location_code=row.location_code,
        terminal_password=row.terminal_password,
        tls=row.tls,
        ca_pem=row.ca_pem,
        charset=row.charset,
        checksums=row.checksums,
        patron_status=row.patron_status,
    )


def current_connector(s: Session, row: LibrarySip2) -> Connector:
    """The connector the row was sealed for, if it is still the terminal's bridge."""
    for connector in connectors(s, row.provider_id):
        if connector.terminal_id == row.terminal_id:
            if connector.bridge_id != row.bridge_id:
                raise Sip2SettingsError(Sip2Code.CONNECTOR_CHANGED)
            return connector
    raise Sip2SettingsError(Sip2Code.NO_CONNECTOR)


class Sip2Gateway:
    """Asks a library's system through its connector bridge (re-sending the settings to a
    bridge that restarted)."""

    def __init__(self, link: TerminalLink) -> None:
        self.link = link

    def configure(self, row: LibrarySip2) -> Sip2Status:
        """Send the settings; the bridge logs in (93) and checks (99): the status."""
        return self.link.sip2_configure(row.terminal_id, config_of(row), timeout=CONFIGURE_TIMEOUT)

    def exchange(
        self,
        row: LibrarySip2,
        frame: str,
        *,
        sealed: Mapping[str, Any] | None = None,
        command_id: str | None = None,
    ) -> Sip2Status | Sip2Patron | Sip2EndSession:
        """One SIP2 request through the connector; Sip2Failed with the bridge's code.

        A bridge that restarted has no settings (sip2_not_configured): they are sent and
        the request retried once, unless it carries a sealed password, whose command id
        the bridge has seen already (it never runs a command twice): `ready` first."""
        for attempt in (1, 2):
            try:
                return self.link.sip2_exchange(
                    row.terminal_id,
                    frame,
                    sealed=sealed,
                    command_id=command_id,
                    timeout=EXCHANGE_TIMEOUT,
                )
            except Sip2Failed as exc:
                if exc.wire_code != "sip2_not_configured" or attempt == 2 or sealed:
                    raise
                self.configure(row)
        raise AssertionError("unreachable")  # pragma: no cover

    def ready(self, row: LibrarySip2) -> Sip2Status:
        """Make sure the connector has its settings and the system answers (99)."""
        answer = self.exchange(row, requests.sc_status())
        if not isinstance(answer, Sip2Status):
            raise Sip2Failed("not a status answer", code=_transport(), wire_code="sip2_bad_reply")
        return answer

    def patron(
        self,
        row: LibrarySip2,
        number: str,
        *,
        sealed: Mapping[str, Any] | None = None,
        command_id: str | None = None,
    ) -> Sip2Patron:
        """63 Patron Information (with the sealed password, when given), or 23 Patron
        Status for a status without password where the system has it."""
        if sealed is None and row.patron_status:
            frame = requests.patron_status(number)
        else:
            frame = requests.patron_information(number)
        answer = self.exchange(row, frame, sealed=sealed, command_id=command_id)
        if not isinstance(answer, Sip2Patron):
            raise Sip2Failed("not a patron answer", code=_transport(), wire_code="sip2_bad_reply")
        return answer


def _transport() -> Any:
    from bridge.errors import Code

    return Code.TRANSPORT
