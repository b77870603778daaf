"""Sending the shops' webhooks from the outbox: signed, retried with backoff, given up
after a number of tries (the officer sees the failures on the merchant's page).

`deliver_due` is one pass: it claims the due deliveries (PostgreSQL: FOR UPDATE SKIP
LOCKED, so several workers share the queue without sending one event twice at once),
moves each one's next try a lease ahead and commits, then sends them outside any
transaction, then records each outcome. A worker that dies mid-send leaves the event to
be sent again after the lease: delivery is at least once, and the shop tells repeats
apart by the event id (`id` in the body, `Ichimai-Event-Id` header).

Backoff: BASE × 2^(tries-1), capped at MAX_BACKOFF: with the defaults 30 s, 1, 2, 4, 8,
16, 32 min, 1 h; after MAX_ATTEMPTS (8) tries the delivery is marked failed.

The sender refuses a webhook URL whose host resolves to a loopback, private or
link-local address (the platform's own network), unless the settings allow it (the demo
and the tests, where the shop runs on 127.0.0.1); it follows no redirect.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..validation import utc_now
from .models import DeliveryStatus, Shop, WebhookDelivery
from .signing import webhook_signature

log = logging.getLogger(__name__)

BASE_SECONDS = 30.0
MAX_BACKOFF = timedelta(hours=1)
MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)  # a claimed delivery is not claimed again before this
TIMEOUT = 10.0  # seconds for the shop to answer
BATCH = 50


@dataclass(frozen=True, slots=True)
class Sent:
    """What one try gave: delivered (a 2xx), or why not."""

    ok: bool
    error: str = ""


Sender = Callable[[str, str, dict[str, str]], Sent]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is an answer, not a place to go (no SSRF by redirect)


def _public_host(url: str) -> bool:
    """Whether every address the URL's host resolves to is public."""
    host = urlsplit(url).hostname or ""
    port = urlsplit(url).port or 443
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            return False
    return bool(infos)


def http_sender(allow_private: bool = False, timeout: float = TIMEOUT) -> Sender:
    """A sender over HTTP(S) with urllib: POST, no redirects, a 2xx is delivered."""
    opener = urllib.request.build_opener(_NoRedirect)

    def send(url: str, body: str, headers: dict[str, str]) -> Sent:
        if not allow_private and not _public_host(url):
            return Sent(False, "refused: the host is not a public address")
        request = urllib.request.Request(  # noqa: S310  (http(s) only: checked when saved)
            url, data=body.encode(), method="POST", headers=headers
        )
        try:
            with opener.open(request, timeout=timeout) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError) as exc:
            return Sent(False, f"{type(exc).__name__}: {exc}"[:300])
        return Sent(True) if 200 <= status < 300 else Sent(False, f"HTTP {status}")

    return send


def backoff(attempts: int, base: float = BASE_SECONDS) -> timedelta:
    """The wait after the `attempts`-th failed try."""
    return min(MAX_BACKOFF, timedelta(seconds=base * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class Pass:
    """One pass of the worker: how many were delivered, retried later, given up."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def _claim(
    session: Session, now: datetime, batch: int
) -> list[tuple[int, str, str, str, str, int]]:
    stmt = (
        select(WebhookDelivery)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING.value,
            WebhookDelivery.next_attempt_at <= now,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.scalars(stmt))
    claimed = []
    for row in rows:
        shop = session.get(Shop, row.merchant_id)
        row.next_attempt_at = now + LEASE
        if shop is None or not shop.webhook_url:
            row.status, row.last_error = DeliveryStatus.FAILED.value, "no webhook URL"
            continue
        claimed.append(
            (row.id, row.event_id, shop.webhook_url, shop.signing_secret, row.body, row.attempts)
        )
    session.commit()
    return claimed


def deliver_due(
    session: Session,
    send: Sender,
    *,
    now: datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    base_seconds: float = BASE_SECONDS,
    batch: int = BATCH,
) -> Pass:
    """Send what is due now, once each; record each outcome."""
    now = utc_now(now)
    delivered = retrying = failed = 0
    for row_id, event_id, url, secret, body, attempts in _claim(session, now, batch):
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "ichimai-webhooks/1",
            "Ichimai-Event-Id": event_id,
            "Ichimai-Signature": webhook_signature(secret, ts, body),
        }
        sent = send(url, body, headers)
        row = session.get(WebhookDelivery, row_id)
        assert row is not None  # noqa: S101  (never deleted)
        row.attempts = attempts + 1
        done_at = utc_now()
        if sent.ok:
            row.status, row.delivered_at, row.last_error = (
                DeliveryStatus.DELIVERED.value, done_at, None,
            )  # fmt: skip
            delivered += 1
        elif row.attempts >= max_attempts:
            row.status, row.last_error = DeliveryStatus.FAILED.value, sent.error[:300]
            log.warning(
                "webhook %s given up after %s tries: %s", event_id, row.attempts, sent.error
            )
            failed += 1
        else:
            row.next_attempt_at = now + backoff(row.attempts, base_seconds)
            row.last_error = sent.error[:300]
            retrying += 1
        session.commit()
    return Pass(delivered, retrying, failed)


def troubles(session: Session, merchant_id: int, limit: int = 20) -> list[WebhookDelivery]:
    """The shop's deliveries that failed or are being retried, newest first."""
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.merchant_id == merchant_id,
                WebhookDelivery.last_error.is_not(None),
                WebhookDelivery.status != DeliveryStatus.DELIVERED.value,
            )
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


def retry_now(session: Session, merchant_id: int, delivery_id: int) -> bool:
    """Give a failed delivery of the shop another round of tries, from now."""
    row = session.get(WebhookDelivery, delivery_id)
    if row is None or row.merchant_id != merchant_id or row.status == DeliveryStatus.DELIVERED:
        return False
    row.status, row.attempts, row.next_attempt_at = DeliveryStatus.PENDING.value, 0, utc_now()
    session.commit()
    return True
