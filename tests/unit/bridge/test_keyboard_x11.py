"""Keyboard output typed into a real X11 window under Xvfb, and read back from it.

The window is a small Tk entry that reports its text, and which suffix key arrived.
Under CI nothing here may skip: Xvfb, xdotool, Tk and pynput must be installed.
"""

from __future__ import annotations

import os
import shutil
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
from tests.support.x11 import LibrarySystemWindow, xvfb

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI must run the X11 keyboard tests)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    need(shutil.which("Xvfb") is not None, "Xvfb is not installed (apt: xvfb)")
    with xvfb() as name:
        yield name


@pytest.fixture
def window(display: str, tmp_path: Path) -> Iterator[LibrarySystemWindow]:
    try:
        import tkinter  # noqa: F401
    except ImportError:
        need(False, "tkinter is not available (apt: python3-tk)")
    w = LibrarySystemWindow(display, tmp_path)
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
    window: LibrarySystemWindow,
    display: str,
    name: str,
    text: str,
    allowed: str,
    suffix: str,
    expected: str,
) -> None:
    type_number(backend(name, display), text, allowed=allowed, suffix=suffix)
    assert window.wait_for(expected) == expected


def test_auto_picks_a_working_backend(window: LibrarySystemWindow, display: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
    keyboard = select_keyboard("auto", {**env, "DISPLAY": display})
    assert keyboard.name in ("pynput", "xdotool")
    type_number(keyboard, "31415926")
    assert window.wait_for("ENTER:") == "ENTER:31415926"
