"""Xvfb and a focused Tk window that reports what was typed into it (keyboard output C).

Same window as tests/unit/bridge/test_keyboard_x11.py: a Tk entry that prints
`ENTER:<text>`, `TAB:<text>` or `TEXT:<text>` as keys arrive.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WINDOW = r"""
import tkinter as tk
root = tk.Tk()
root.title("Library system")
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


@contextmanager
def xvfb() -> Iterator[str]:
    """A private X display (":N") for the test's lifetime."""
    number = next(n for n in range(120, 250) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    proc = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            assert proc.poll() is None, "Xvfb exited"
            assert time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(5)


class LibrarySystemWindow:
    """The focused window standing for the library system; `wait_for` reads it back."""

    def __init__(self, display: str, tmp: Path) -> None:
        script = tmp / "library_system.py"
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
        """The first reported line starting with `wanted`."""
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
        """Close the window."""
        self.proc.terminate()
        self.proc.wait(5)
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
