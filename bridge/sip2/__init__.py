"""The bridge's SIP2 connector: the library system's own check of a patron's number.

The platform cannot reach a library system's SIP2 port (it is on the library's own
network), so the library's bridge holds the connection and the platform sends it SIP2
exchanges over the bridge's WebSocket (docs/bridge.md, "SIP2"). The pieces:

- `codec`: pysip2's codec in the library system's character set (UTF-8, Shift_JIS,
  cp850), with sequence numbers and checksums on or off;
- `firewall`: only 99, 63 (no item lists), 35 and 23 (when the system has it) from the
  platform, re-encoded from the decoded model with the bridge's own AO, AC and AD;
- `projection`: what goes back is a projection of the reply, never the reply;
- `throttle`: wrong patron passwords per patron, counted on the bridge;
- `connector`: one connection (TCP or TLS), logged in with 93, serialised, re-made
  when the system drops it;
- `service`: the `sip2_configure` and `sip2` commands, as the session serves them.

Never logs a frame, a password or a patron id.
"""

from __future__ import annotations

from bridge.sip2_wire import Sip2Code


class Sip2Error(Exception):
    """A SIP2 command failed; `code` says why (an Error frame's code)."""

    def __init__(self, code: Sip2Code, message: str) -> None:
        super().__init__(message)
        self.code = code
