"""Keyboard output typed into a real X11 window under Xvfb, and read back from it.

The window is a small Tk entry that reports its text, and which suffix key arrived.
Under CI nothing here may skip: Xvfb, xdotool, Tk and pynput must be installed.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.keyboard import (
    KeyboardOutput,
    PynputKeyboard,
    XdotoolKeyboard,
    select_keyboard,
    type_number,
)

IN_CI = os.environ.get("CI", "").lower() == "true"

WINDOW = r"""
import sys, tkinter as tk
root = tk.Tk()
root.geometry("400x80+0+0")
entry = tk.Entry(root)
entry.pack(fill="both", expand=True)
def report(kind):
    print(f"{kind}:{entry.get()}", flush=True)
    return "break"
entry.bind("<Return>", lambda e: report("ENTER"))
entry.bind("<Tab>", lambda e: report("TAB"))
last = [None]
def poll():
    if entry.get() != last[0]:
        last[0] = entry.get()
        print(f"TEXT:{last[0]}", flush=True)
    root.after(20, poll)
def ready():
    entry.focus_force()
    print("READY", flush=True)
root.after(300, ready)
root.after(20, poll)
root.mainloop()
"""


def need(condition: bool, reason: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI must run the X11 keyboard tests)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    need(shutil.which("Xvfb") is not None, "Xvfb is not installed (apt: xvfb)")
    number = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    xvfb = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            assert xvfb.poll() is None, "Xvfb exited"
            assert time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        yield f":{number}"
    finally:
        xvfb.terminate()
        xvfb.wait(5)


class Window:
    """The Tk entry window; `lines` are what it reported."""

    def __init__(self, display: str, tmp: Path) -> None:
        script = tmp / "window.py"
        script.write_text(WINDOW)
        env = {**os.environ, "DISPLAY": display}
        self.proc = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for("READY")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def wait_for(self, wanted: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            seen.append(line)
            if line.startswith(wanted):
                return line
        raise AssertionError(f"the window never reported {wanted!r}; it said {seen}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def window(display: str, tmp_path: Path) -> Iterator[Window]:
    try:
        import tkinter  # noqa: F401
    except ImportError:
        need(False, "tkinter is not available (apt: python3-tk)")
    w = Window(display, tmp_path)
    yield w
    w.close()


def backend(name: str, display: str) -> KeyboardOutput:
    env = {**os.environ, "DISPLAY": display}
    env.pop("WAYLAND_DISPLAY", None)
    keyboard = PynputKeyboard(env) if name == "pynput" else XdotoolKeyboard(env)
    why = keyboard.problem()
    need(why is None, f"{name}: {why}")
    return keyboard


@pytest.mark.parametrize("name", ["xdotool", "pynput"])
@pytest.mark.parametrize(
    ("text", "allowed", "suffix", "expected"),
    [
        ("20240001", "0123456789", "enter", "ENTER:20240001"),
        ("A0012345B", "0123456789-$:/.+ABCD", "tab", "TAB:A0012345B"),
        ("987654", "0123456789", "none", "TEXT:987654"),
    ],
)
def test_typed_into_the_focused_window(
    window: Window, display: str, name: str, text: str, allowed: str, suffix: str, expected: str
) -> None:
    type_number(backend(name, display), text, allowed=allowed, suffix=suffix)
    assert window.wait_for(expected) == expected


def test_auto_picks_a_working_backend(window: Window, display: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
    keyboard = select_keyboard("auto", {**env, "DISPLAY": display})
    assert keyboard.name in ("pynput", "xdotool")
    type_number(keyboard, "31415926")
    assert window.wait_for("ENTER:") == "ENTER:31415926"
