"""gunicorn.conf.py's hooks: a stop signal that reaches a worker while it boots (before
its own signal handlers) stops it, instead of being lost in the master's inherited queue
(a worker respawned just before a deploy's SIGTERM served on until it was killed)."""

from __future__ import annotations

import importlib.util
import logging
import queue
import signal
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from webapp.ops import going_away

ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
def hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # its own, not made
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before = signal.getsignal(signal.SIGTERM)
    try:
        yield module
    finally:
        signal.signal(signal.SIGTERM, before)
        going_away.reset_for_tests()


def _booted(hooks: ModuleType, *queued: int) -> Any:
    """A worker forked while `queued` signals reached it, then initialised as gunicorn
    does: its own SIGTERM handler (stop serving) in place, then post_worker_init."""
    server = SimpleNamespace(SIG_QUEUE=queue.SimpleQueue())
    worker = SimpleNamespace(alive=True, log=logging.getLogger("test.gunicorn"))
    hooks.post_fork(server, worker)
    for sig in queued:  # the master's handler, inherited with fork, queues them
        server.SIG_QUEUE.put_nowait(sig)

    def handle_exit(signum: int, frame: Any) -> None:
        worker.alive = False

    signal.signal(signal.SIGTERM, handle_exit)
    hooks.post_worker_init(worker)
    return worker


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_a_stop_signal_while_booting_stops_the_worker(hooks: ModuleType, sig: int) -> None:
    worker = _booted(hooks, signal.SIGCHLD, sig)
    assert worker.alive is False
    assert going_away.leaving()  # and its sockets would go with 1001


def test_other_signals_while_booting_leave_the_worker_serving(hooks: ModuleType) -> None:
    worker = _booted(hooks, signal.SIGCHLD, signal.SIGWINCH, signal.SIGHUP)
    assert worker.alive is True
    assert not going_away.leaving()


def test_a_sigterm_after_booting_still_closes_sockets_then_stops(hooks: ModuleType) -> None:
    worker = _booted(hooks)
    assert worker.alive is True
    signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # type: ignore[operator]
    assert worker.alive is False
    assert going_away.leaving()
