"""The in-process werkzeug server that `make demo` and the tests run the platform on.

Werkzeug's development server skips closing a response when the client drops the
connection at the wrong moment (reading what is left of the request raises inside its
`finally`, before the `close()` call). A static file's handle is then closed only by the
garbage collector, with a ResourceWarning, which the test suite treats as an error in
whichever test happens to run. `CloseResponses` makes the response a generator that
closes what it wraps when it ends, is closed, or is collected.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

WSGIApp = Any


class CloseResponses:
    """WSGI middleware: the response iterable is always closed, even when dropped."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        return _closing(self.app(environ, start_response))


def _closing(iterable: Iterable[bytes]) -> Iterator[bytes]:
    try:
        yield from iterable
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()


def local_server(app: WSGIApp, port: int = 0) -> BaseWSGIServer:
    """A threaded werkzeug server for `app` on 127.0.0.1:`port` (0: a free port)."""
    return make_server("127.0.0.1", port, CloseResponses(app), threaded=True)
