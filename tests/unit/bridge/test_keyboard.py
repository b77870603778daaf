"""Keyboard output rules: what may be typed, and a clear error where nothing can type."""

from __future__ import annotations

import pytest

from bridge.keyboard import (
    DIGITS,
    KeyboardRefused,
    KeyboardUnavailable,
    NoKeyboard,
    XdotoolKeyboard,
    checked_text,
    select_keyboard,
    type_number,
)

NW7 = DIGITS + "-$:/.+ABCD"


@pytest.mark.parametrize(
    ("text", "allowed", "suffix", "keys"),
    [
        ("12345678", DIGITS, "enter", "12345678\n"),
        ("12345678", DIGITS, "tab", "12345678\t"),
        ("12345678", DIGITS, "none", "12345678"),
        ("A1234-5678B", NW7, "enter", "A1234-5678B\n"),
    ],
)
def test_checked_text(text: str, allowed: str, suffix: str, keys: str) -> None:
    assert checked_text(text, allowed, suffix) == keys


@pytest.mark.parametrize(
    ("text", "allowed", "suffix"),
    [
        ("", DIGITS, "enter"),
        ("1" * 65, DIGITS, "enter"),
        ("1234A", DIGITS, "enter"),  # not in the library's format
        ("12\n34", DIGITS + "\n", "enter"),  # control characters are never allowed
        ("12\x1b34", DIGITS + "\x1b", "enter"),
        ("１２３", "１２３", "enter"),  # full-width digits: an IME's output, not ours
        (" 123", DIGITS + " ", "enter"),
        ("123", DIGITS, "escape"),
    ],
)
def test_refused_text(text: str, allowed: str, suffix: str) -> None:
    with pytest.raises(KeyboardRefused):
        checked_text(text, allowed, suffix)


def test_refusal_does_not_repeat_the_number() -> None:
    with pytest.raises(KeyboardRefused) as refused:
        checked_text("98765X", DIGITS)
    assert "98765" not in str(refused.value)


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({}, "no X display"),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "Wayland"),
        ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "XWayland"),
        ({"DISPLAY": ":0", "PATH": "/nonexistent"}, "xdotool is not installed"),
    ],
)
def test_no_backend_says_why(env: dict[str, str], reason: str) -> None:
    keyboard = select_keyboard("xdotool", env)
    assert isinstance(keyboard, NoKeyboard)
    with pytest.raises(KeyboardUnavailable, match=reason):
        type_number(keyboard, "1234")


def test_auto_lists_every_backend_it_tried() -> None:
    keyboard = select_keyboard("auto", {})
    assert isinstance(keyboard, NoKeyboard)
    assert "pynput" in keyboard.reason and "xdotool" in keyboard.reason


def test_turned_off() -> None:
    with pytest.raises(KeyboardUnavailable, match="off"):
        select_keyboard("none").type_keys("1")


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown keyboard backend"):
        select_keyboard("sendinput", {})


def test_xdotool_refuses_without_display() -> None:
    with pytest.raises(KeyboardUnavailable):
        XdotoolKeyboard({"PATH": "/usr/bin"}).type_keys("1\n")


def test_pynput_on_windows_needs_no_display() -> None:
    from bridge.keyboard import PynputKeyboard

    assert PynputKeyboard({}, platform="win32").problem() is None
    assert "DISPLAY" in (PynputKeyboard({}, platform="linux").problem() or "")


def test_auto_on_windows_and_macos_tries_only_pynput(monkeypatch: pytest.MonkeyPatch) -> None:
    import bridge.keyboard as keyboard

    monkeypatch.setattr(keyboard.sys, "platform", "win32")
    assert keyboard.select_keyboard("auto", {}).name == "pynput"
    assert keyboard.describe_keyboard("auto", {}) == "pynput"


def test_macos_without_accessibility_says_where_to_allow_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys
    import types

    from bridge.keyboard import PynputKeyboard

    services = types.ModuleType("HIServices")
    services.AXIsProcessTrusted = lambda: False  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "HIServices", services)
    why = PynputKeyboard({}, platform="darwin").problem()
    assert why is not None and "Accessibility" in why
    services.AXIsProcessTrusted = lambda: True  # type: ignore[attr-defined]
    assert PynputKeyboard({}, platform="darwin").problem() is None
