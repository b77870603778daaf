"""The in-process server closes every response, also when the client drops the connection."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer

from webapp.devserver import local_server


class Body:
    """A response body like a file's: chunks, and a close() that must be called."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield b"x" * 1024  # fits the socket's buffer: the write succeeds

    def close(self) -> None:
        self.closed.set()


@pytest.fixture
def served() -> Iterator[tuple[BaseWSGIServer, list[Body]]]:
    bodies: list[Body] = []

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        body = Body()
        bodies.append(body)
        return body

    server = local_server(app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, bodies
    server.shutdown()
    server.server_close()


def _request(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\nabcd")
    return sock


def _wait(body_count: int, bodies: list[Body]) -> None:
    deadline = time.monotonic() + 5
    while len(bodies) < body_count and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(bodies) == body_count


def test_a_response_read_to_the_end_is_closed(served: tuple[BaseWSGIServer, list[Body]]) -> None:
    server, bodies = served
    with _request(server.server_port) as sock:
        while sock.recv(1 << 20):
            pass
    _wait(1, bodies)
    assert bodies[0].closed.wait(5)


def test_a_response_whose_client_reset_the_connection_is_closed(
    served: tuple[BaseWSGIServer, list[Body]],
) -> None:
    server, bodies = served
    for n in range(1, 21):
        sock = _request(server.server_port)
        sock.recv(1)  # the whole response is written
        # Close with a reset (SO_LINGER 0) while werkzeug drains the request: its read
        # fails inside its `finally`, before it closes the response.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        _wait(n, bodies)
        assert bodies[-1].closed.wait(5), f"response {n} was never closed"
