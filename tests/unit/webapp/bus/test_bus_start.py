"""An app starting while Redis is unreachable: it waits BUS_CONNECT_WAIT for it (a worker
that failed to boot would make gunicorn's master shut the platform down), then gives up;
`flask doctor` (BUS_OPTIONAL) starts on an in-process bus, to say Redis does not answer."""

from __future__ import annotations

import time

import pytest
from flask import Flask

from webapp.bus import BusError, InProcessBus, get_bus, init_app

DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_it_waits_for_redis_then_gives_up() -> None:
    app = Flask(__name__)
    app.config.update(BUS_URL=DOWN, BUS_CONNECT_WAIT=0.6)
    started = time.monotonic()
    with pytest.raises(BusError):
        init_app(app)
    assert time.monotonic() - started >= 0.6


def test_the_doctor_starts_without_redis() -> None:
    app = Flask(__name__)
    app.config.update(BUS_URL=DOWN, BUS_OPTIONAL=True)
    init_app(app)
    assert isinstance(get_bus(app), InProcessBus)
    get_bus(app).close()
