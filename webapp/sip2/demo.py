"""Connect a library to the demo library system (webapp/library_demo.py), as its admin
would on the SIP2 page: the passwords sealed to the connector bridge (here in Python,
bridge.seal, the same scheme as the page's seal.js), then saved. For `make demo` and the
tests.
"""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from bridge.seal import SecretContext, seal_secret

from .. import library_demo
from ..providers.models import Provider
from . import services
from .models import LibrarySip2


def connect_demo_library(
    s: Session,
    provider: Provider,
    terminal_id: int,
    *,
    host: str,
    port: int,
    charset: str = "utf-8",
    checksums: bool = False,
    patron_status: bool = True,
    tls: bool = False,
    ca_pem: str | None = None,
    login_password: str = library_demo.LOGIN_PASSWORD,
    terminal_password: str | None = library_demo.TERMINAL_PASSWORD,
) -> LibrarySip2:
    """Save the library's SIP2 settings for the demo system at host:port."""
    connector = next(c for c in services.connectors(s, provider.id) if c.terminal_id == terminal_id)
    target = f"{'tls' if tls else 'tcp'}://{host.lower()}:{port}"

    def sealed(secret: str | None, purpose: str) -> str | None:
        if secret is None:
            return None
        envelope = seal_secret(
            connector.seal_key, secret, SecretContext(connector.bridge_id, purpose, target)
        )
        return json.dumps(envelope)

    return services.save(
        s,
        provider,
        terminal_id=terminal_id,
        sealed_for=connector.bridge_id,
        host=host,
        port=port,
        tls=tls,
        ca_pem=ca_pem,
        charset=charset,
        checksums=checksums,
        patron_status=patron_status,
        institution_id=library_demo.INSTITUTION,
        location_code="DEMO",
        login_user=library_demo.LOGIN_USER,
        login_password=sealed(login_password, "sip2-login"),
        terminal_password=sealed(terminal_password, "sip2-terminal"),
    )
