"""What the library's own system says about the patron, shown at the counter after the tap.

When a library has SIP2 (webapp/sip2) and the number just shown is verified, the platform
asks the library system through the library's connector bridge (23 Patron Status, or 63
without a password where the system has no 23) and pushes what it says to the counter's
tabs on the terminal's events channel: valid patron, and the patron-status flags that
are set (card reported lost, charge privileges denied, too many items overdue...). Staff
see a problem before they start.

It never delays the number: the question runs in a thread after the number is shown, and
a slow or absent library system only means no status line. Nothing from the answer is
stored (no names, fines or history: the bridge does not even send them); the event goes
to the tabs of that counter and is gone.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from .. import db
from ..bus import get_bus
from ..sip2 import gateway_of
from ..sip2 import services as sip2
from ..terminals.registry import events_channel
from ..terminals.remote import Sip2Failed

log = logging.getLogger(__name__)

EVENT = "patron_status"


def announce(app: Flask, terminal_id: int, provider_id: int, number: str) -> bool:
    """Ask the library system about `number` in the background and push its answer to the
    counter's tabs; False when the library has no SIP2 (nothing is asked)."""
    with db.new_session() as s:
        if sip2.settings_of(s, provider_id) is None:
            return False
    thread = threading.Thread(
        target=_ask,
        args=(app, terminal_id, provider_id, number),
        name="patron-status",
        daemon=True,
    )
    thread.start()
    return True


def _ask(app: Flask, terminal_id: int, provider_id: int, number: str) -> None:
    with app.app_context():
        with db.new_session() as s:
            row = sip2.settings_of(s, provider_id)
            if row is None:
                return
            s.expunge(row)
        event: dict[str, object] = {"type": EVENT, "number": number}
        try:
            answer = gateway_of(app).patron(row, number)
        except Sip2Failed as exc:
            event["patron"] = {"available": False, "code": exc.wire_code}
        else:
            event["patron"] = {
                "available": True,
                "valid_patron": answer.valid_patron,
                "flags": list(answer.flags),
            }
        try:
            get_bus(app).publish(events_channel(terminal_id), event)
        except Exception:
            log.warning("could not push the patron status", exc_info=True)
