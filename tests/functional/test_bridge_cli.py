"""`python -m bridge pair` and `python -m bridge run --sim CARD` as real processes."""

from __future__ import annotations

import os
import queue
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge import jpki
from bridge.transport import drive
from webapp.terminals.registry import events_channel
from webapp.terminals.testing import LivePlatform

ROOT = Path(__file__).resolve().parents[2]


def bridge_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bridge", *args]


def env() -> dict[str, str]:
    # PYTHONFAULTHANDLER: a bridge that hangs can be made to print every thread's stack.
    return {**os.environ, "PYTHONPATH": str(ROOT), "DISPLAY": "", "PYTHONFAULTHANDLER": "1"}


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LivePlatform]:
    with LivePlatform(tmp_path) as live:
        yield live


def next_event(q: queue.Queue[dict[str, Any]], kind: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event = q.get(timeout=max(0.01, deadline - time.monotonic()))
        if event["type"] == kind:
            return event


def bridge_event(
    q: queue.Queue[dict[str, Any]],
    kind: str,
    run: subprocess.Popen[str],
    log: Path | None = None,
    timeout: float = 15.0,
) -> dict[str, Any]:
    """The next `kind` event of the bridge process `run`; if none comes, fail with its stacks.

    `log`: the file the bridge's stderr goes to (else it is read from the pipe).
    """
    try:
        return next_event(q, kind, timeout)
    except queue.Empty:
        pass
    if run.poll() is None:
        run.send_signal(signal.SIGABRT)  # faulthandler (see env()) prints every thread's stack
    try:
        _, stderr = run.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        run.kill()
        _, stderr = run.communicate()
    if log is not None:
        stderr = log.read_text(errors="replace")
    pytest.fail(f"no {kind} event from the bridge in {timeout} s; its stderr:\n{stderr[-6000:]}")


def test_pair_run_and_revoke(platform: LivePlatform, card_file: Any, tmp_path: Path) -> None:
    terminal = platform.terminal()
    code = platform.pairing_code(terminal)
    home = tmp_path / "home"
    paired = subprocess.run(
        bridge_command("pair", platform.url, code, "--home", str(home), "--name", "counter PC"),
        capture_output=True,
        text=True,
        timeout=60,
        env=env(),
        cwd=ROOT,
        check=False,
    )
    assert paired.returncode == 0, paired.stderr
    assert "paired: bridge brg_" in paired.stdout
    for name in ("auth_key.pem", "seal_key.pem", "bridge.json"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
    again = subprocess.run(
        bridge_command("pair", platform.url, code, "--home", str(tmp_path / "other")),
        capture_output=True,
        text=True,
        timeout=60,
        env=env(),
        cwd=ROOT,
        check=False,
    )
    assert again.returncode == 1 and "already used" in again.stderr

    events: queue.Queue[dict[str, Any]] = queue.Queue()
    platform.bus.subscribe(events_channel(terminal), events.put)
    run = subprocess.Popen(
        bridge_command(
            "run", "--home", str(home), "--sim", str(card_file.path), "--keyboard", "none"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=ROOT,
    )
    try:
        status = platform.wait_ready(terminal, timeout=30)
        card = status.readers[0].card
        assert card is not None
        epoch = card.epoch
        remote = platform.remote(terminal)
        assert drive(jpki.read_certificate(), remote) == card_file.issued.auth_cert_der
        run.send_signal(signal.SIGUSR1)  # take the card off the virtual reader
        assert bridge_event(events, "card_removed", run)["epoch"] == epoch
        # At once, as a demo user would: the bridge may still be finishing the first toggle.
        run.send_signal(signal.SIGUSR1)  # and put it back
        assert bridge_event(events, "card_inserted", run)["epoch"] > epoch
        bridge_id = status.bridge_id
        started = time.monotonic()
        assert platform.admin("POST", f"/api/v1/admin/bridges/{bridge_id}/revoke")[0] == 200
        assert run.wait(timeout=10) == 3
        assert time.monotonic() - started < 5
        _, stderr = run.communicate(timeout=5)
        assert "pair it again" in stderr
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()


def test_run_before_pairing(tmp_path: Path) -> None:
    done = subprocess.run(
        bridge_command("run", "--home", str(tmp_path / "nothing")),
        capture_output=True,
        text=True,
        timeout=60,
        env=env(),
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2 and "pair this bridge first" in done.stderr


def test_sim_card_toggled_back_to_back_never_hangs(
    platform: LivePlatform, card_file: Any, tmp_path: Path
) -> None:
    terminal = platform.terminal()
    home = tmp_path / "home"
    platform.pair_bridge(home, terminal)
    # 600 card events as fast as they go: far beyond a person's pace, which the platform
    # would cut off as a flood (socket_limits.py); this test is about the bridge's races.
    platform.app.config.update(BRIDGE_FRAME_RATE=10_000.0, BRIDGE_FRAME_BURST=10_000)
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    platform.bus.subscribe(events_channel(terminal), events.put)
    log = tmp_path / "bridge.log"
    with log.open("w") as out:  # a file: 300 toggles log more than a pipe holds
        run = subprocess.Popen(
            bridge_command(
                "run", "--home", str(home), "--sim", str(card_file.path), "--keyboard", "none"
            ),
            stdout=subprocess.DEVNULL,
            stderr=out,
            text=True,
            env=env(),
            cwd=ROOT,
        )
    try:
        platform.wait_ready(terminal, timeout=30)
        # Each toggle as soon as the previous one was seen; a few hundred make the race
        # with the bridge's own sends likely (within a few dozen, under load).
        for i in range(300):
            run.send_signal(signal.SIGUSR1)
            bridge_event(events, "card_removed" if i % 2 == 0 else "card_inserted", run, log)
    finally:
        if run.poll() is None:
            run.kill()
        run.wait()
