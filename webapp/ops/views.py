"""GET /metrics: the Prometheus exposition, for the deployment's monitoring only.

Refused unless configured: ICHIMAI_METRICS_TOKEN (the scraper sends `Authorization:
Bearer <token>`) and/or ICHIMAI_METRICS_ALLOW (addresses and networks the scraper may
come from, e.g. `10.0.0.0/8,127.0.0.1`; the client address as ICHIMAI_PROXY_HOPS says).
With both, both must hold. With neither, /metrics answers 404 as if it did not exist.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence

from flask import Blueprint, Response, abort, current_app, request
from flask.typing import ResponseReturnValue

from . import metrics

bp = Blueprint("ops", __name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow(value: object) -> list[Network]:
    """ICHIMAI_METRICS_ALLOW as networks (a bare address is a /32 or /128); a clear
    ValueError for anything else."""
    items = value if isinstance(value, list | tuple) else str(value or "").split(",")
    networks: list[Network] = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(
                f"ICHIMAI_METRICS_ALLOW: {item!r} is not an address or network (e.g. 10.0.0.0/8)"
            ) from exc
    return networks


def _allowed(address: str | None, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    ip = mapped or ip
    return any(ip in n for n in networks if n.version == ip.version)


@bp.get("/metrics")
def scrape() -> ResponseReturnValue:
    """The metrics, to a scraper with the token and/or from an allowed address."""
    token = str(current_app.config.get("METRICS_TOKEN") or "")
    networks: list[Network] = current_app.config.get("METRICS_NETWORKS") or []
    if not token and not networks:
        abort(404)
    if networks and not _allowed(request.remote_addr, networks):
        abort(403)
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return Response(
                "metrics need a bearer token\n",
                401,
                {"WWW-Authenticate": 'Bearer realm="metrics"', "Content-Type": "text/plain"},
            )
    body, content_type = metrics.render()
    return Response(body, 200, {"Content-Type": content_type, "Cache-Control": "no-store"})
