"""The bridge runs commands on kept daemon threads (bridge.client._Workers): one after
another on the same thread, at once on as many as run at once, none lost."""

from __future__ import annotations

import threading

from bridge.client import _Workers

WAIT = 10.0


def test_commands_one_after_another_reuse_one_thread() -> None:
    workers = _Workers("test-command")
    seen: list[threading.Thread] = []
    for _ in range(5):
        done = threading.Event()
        workers.run(lambda done=done: (seen.append(threading.current_thread()), done.set()))
        assert done.wait(WAIT)
    assert workers.started == 1
    assert len(set(seen)) == 1 and seen[0].daemon and seen[0].name == "test-command"


def test_commands_at_once_each_get_a_thread_and_all_run() -> None:
    workers = _Workers("test-command")
    barrier = threading.Barrier(4, timeout=WAIT)  # all four must run at the same time
    ran: list[str] = []
    lock = threading.Lock()
    all_ran = threading.Event()

    def command() -> None:
        barrier.wait()
        with lock:
            ran.append(threading.current_thread().name)
            if len(ran) == 4:
                all_ran.set()

    for _ in range(4):
        workers.run(command)
    assert all_ran.wait(WAIT) and workers.started == 4


def test_a_command_that_raises_keeps_its_thread() -> None:
    workers = _Workers("test-command")
    ran_on: list[threading.Thread] = []

    def boom() -> None:
        ran_on.append(threading.current_thread())
        raise RuntimeError("outside the handler")

    workers.run(boom)
    done = threading.Event()
    workers.run(done.set)
    assert done.wait(WAIT)
    ran_on[0].join(timeout=0.5)  # a thread whose loop the error ended would be gone
    assert ran_on[0].is_alive()
