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


def local_server(app: WSGIApp | None, port: int = 0) -> BaseWSGIServer:
    """A threaded werkzeug server for `app` on 127.0.0.1:`port` (0: a free port).

    `app` may be None and given later with `serve_app`: the port (and so the platform's
    origin, which the app's verifier binds into every signature) is known first.
    """
    server = make_server("127.0.0.1", port, _not_ready, threaded=True)
    if app is not None:
        serve_app(server, app)
    return server


def serve_app(server: BaseWSGIServer, app: WSGIApp) -> None:
    """Serve `app` on a server made by `local_server`."""
    server.app = CloseResponses(app)


def _not_ready(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]
