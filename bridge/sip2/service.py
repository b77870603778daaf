"""The bridge's SIP2 commands: `sip2_configure` and `sip2`, as BridgeSession serves them.

configure: open the sealed login (and terminal) password for this bridge and the
settings' own target, replace the connection, connect and log in; the answer is the 98
projected. The settings are kept when the system cannot be reached now.

exchange: the SIP2 firewall admits the request (or nothing is sent); a sealed patron
password (purpose `sip2-patron`, bound to the command id) passes the throttle first and
is opened only then; the request is rebuilt with the bridge's AO, AC and AD, sent, and
the reply checked (the type the request expects, the same patron) and projected.
"""

from __future__ import annotations

import logging
import threading

from cryptography.hazmat.primitives.asymmetric import ec
from pysip2 import PatronInformationResponse, PatronStatusResponse, SIPMessage

from bridge import wire
from bridge.seal import SealError, SecretContext, open_sealed_secret
from bridge.sip2_wire import Sip2Code, Sip2Patron, Sip2Status

from . import Sip2Error
from .connector import Sip2Connection
from .firewall import admit, complete
from .projection import project
from .throttle import PasswordThrottle, Ticket

log = logging.getLogger(__name__)


class Sip2Service:
    """This bridge's SIP2 settings, connection and throttle."""

    def __init__(
        self,
        bridge_id: str,
        seal_key: ec.EllipticCurvePrivateKey,
        *,
        throttle: PasswordThrottle | None = None,
    ) -> None:
        self.bridge_id = bridge_id
        self._seal_key = seal_key
        self.throttle = throttle or PasswordThrottle()
        self._lock = threading.Lock()
        self.connection: Sip2Connection | None = None

    def _open(self, envelope: object, purpose: str, binding: str) -> str:
        try:
            return open_sealed_secret(
                self._seal_key,
                envelope,  # type: ignore[arg-type]
                SecretContext(self.bridge_id, purpose, binding),
            )
        except SealError:
            raise Sip2Error(Sip2Code.SEAL, f"the sealed {purpose} password does not open") from None

    def configure(self, command: wire.Sip2ConfigureCommand) -> wire.Sip2Result:
        """New settings: replace the connection, connect and log in; the 98 projected."""
        config = command.config
        target = config.target()
        login = self._open(config.login_password, "sip2-login", target)
        terminal = (
            ""
            if config.terminal_password is None
            else self._open(config.terminal_password, "sip2-terminal", target)
        )
        connection = Sip2Connection(config, login_password=login, terminal_password=terminal)
        with self._lock:
            old, self.connection = self.connection, connection
        if old is not None:
            old.close()
        log.info("SIP2 settings for %s (%s)", target, config.charset)
        status: Sip2Status = connection.open()
        return wire.Sip2Result(status, id=command.id)

    def exchange(self, command: wire.Sip2Command) -> wire.Sip2Result:
        """One SIP2 exchange through the firewall; the reply projected."""
        connection = self.connection
        if connection is None:
            raise Sip2Error(Sip2Code.NOT_CONFIGURED, "this bridge has no SIP2 settings")
        config = connection.config
        admitted = admit(
            command.frame,
            institution_id=config.institution_id,
            patron_status=config.patron_status,
            sealed=command.sealed is not None,
        )
        ticket: Ticket | None = None
        wrong = False
        if command.sealed is not None:
            assert admitted.patron_id is not None  # noqa: S101 - only 63 and 23 take one
            ticket = self.throttle.begin(admitted.patron_id)
        try:
            password = (
                None
                if command.sealed is None
                else self._open(command.sealed, "sip2-patron", command.id)
            )
            request = complete(
                admitted,
                institution_id=config.institution_id,
                terminal_password=connection.terminal_password,
                patron_password=password,
            )
            del password
            reply = connection.exchange(request)
            _same_patron(reply, admitted.patron_id)
            projection = project(reply)
            wrong = isinstance(projection, Sip2Patron) and projection.valid_password is False
            return wire.Sip2Result(projection, id=command.id)
        finally:
            if ticket is not None:
                self.throttle.end(ticket, wrong=wrong)

    def close(self) -> None:
        """Close the connection (the bridge is stopping)."""
        with self._lock:
            connection, self.connection = self.connection, None
        if connection is not None:
            connection.close()


def _same_patron(reply: SIPMessage, patron_id: str | None) -> None:
    """A patron reply must be about the patron asked about."""
    if isinstance(reply, PatronInformationResponse | PatronStatusResponse) and (
        reply.patron_identifier != patron_id
    ):
        raise Sip2Error(Sip2Code.BAD_REPLY, "a reply about another patron")
