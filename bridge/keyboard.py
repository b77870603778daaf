"""Keyboard output: type a service number into whatever window has focus.

The bridge acts like a barcode scanner in keyboard-wedge mode (the seed's "keyboard
interface"): the library system keeps its own input field and never knows we exist.
Rules (shared/docs/library-interop.md, "Keyboard output"):

- only digits and the characters the library's number format allows are typed; never
  a control character, so a number can never become a command in the focused window;
- the suffix (Enter, Tab or none) is a setting, and the number plus suffix go to the
  X server in one batch (one xdotool call, or one pynput loop) so that a person's
  keystrokes cannot interleave with ours between two calls;
- a Japanese IME left on turns digits into composition text: libraries must switch the
  field to direct input (docs/bridge.md says so); we cannot detect it from here.

Backends: pynput (Windows, macOS, X11) or xdotool (X11; it refuses XWayland). Where
neither works, `KeyboardUnavailable` says why, instead of typing nothing silently;
`describe_keyboard` says which one a bridge would use (`ichimai-bridge status`).

Platform quirks pynput cannot hide:
- macOS drops synthetic keystrokes unless the user has allowed the program (the Python
  that runs the bridge) under System Settings > Privacy & Security > Accessibility; it
  does so silently, so we ask the system first (AXIsProcessTrusted).
- Windows does not let a program type into a window of higher integrity (one run as
  administrator) than its own (UIPI): run the bridge at the library system's level.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import string
import subprocess
import sys
from collections.abc import Mapping
from typing import Protocol

MAX_LENGTH = 64
# The widest set a provider may allow: NW-7 (0-9 - $ : / . + and A-D start/stop),
# Code 39 (A-Z 0-9 - . $ / + % space) and Code 128's printable ASCII subset that
# library numbers use. Never control characters; space only inside a number.
SAFE_CHARACTERS = frozenset(string.digits + string.ascii_letters + "-$:/.+% ")
DIGITS = string.digits
SUFFIX_KEYS = {"enter": "\n", "tab": "\t", "none": ""}
# X keysym names for what `checked_text` lets through (digits and letters name
# themselves). `xdotool key` with keysyms, not `xdotool type`: type sends newline as
# Linefeed, which a library system's field does not take for Enter.
KEYSYMS = {
    "-": "minus",
    "$": "dollar",
    ":": "colon",
    "/": "slash",
    ".": "period",
    "+": "plus",
    "%": "percent",
    " ": "space",
    "\n": "Return",
    "\t": "Tab",
}


class KeyboardError(Exception):
    """Keyboard output failed; `code` is the wire error code."""

    code = "keyboard_failed"


class KeyboardUnavailable(KeyboardError):
    """No keyboard backend works here (no X display, Wayland, nothing installed)."""

    code = "keyboard_unavailable"


class KeyboardRefused(KeyboardError):
    """The text has characters the number format does not allow; nothing was typed."""

    code = "refused"


def checked_text(text: str, allowed: str = DIGITS, suffix: str = "enter") -> str:
    """The exact keystrokes for `text` + `suffix`, or KeyboardRefused (nothing typed)."""
    if suffix not in SUFFIX_KEYS:
        raise KeyboardRefused(f"unknown suffix {suffix!r}")
    if not text or len(text) > MAX_LENGTH:
        raise KeyboardRefused(f"text must be 1-{MAX_LENGTH} characters")
    permitted = frozenset(allowed) & SAFE_CHARACTERS
    if not set(text) <= permitted:
        # Say which class of character, not the text itself (it identifies a person).
        raise KeyboardRefused("text has characters the number format does not allow")
    if text != text.strip():
        raise KeyboardRefused("text starts or ends with a space")
    return text + SUFFIX_KEYS[suffix]


class KeyboardOutput(Protocol):
    """Types keystrokes into the focused window."""

    name: str

    def type_keys(self, keys: str) -> None:
        """Type `keys` (checked text; newline = Enter, tab = Tab) in one batch."""
        ...


def type_number(
    output: KeyboardOutput, text: str, *, allowed: str = DIGITS, suffix: str = "enter"
) -> None:
    """Check `text` against the allowed characters and type it plus `suffix`."""
    output.type_keys(checked_text(text, allowed, suffix))


class XdotoolKeyboard:
    """xdotool (X11): one `xdotool key` call types the number and its suffix."""

    name = "xdotool"

    def __init__(self, env: Mapping[str, str] | None = None, delay_ms: int = 2) -> None:
        self.env = dict(os.environ if env is None else env)
        self.delay_ms = delay_ms
        self.binary = shutil.which("xdotool", path=self.env.get("PATH"))

    def problem(self) -> str | None:
        """Why this backend cannot work here, or None."""
        if self.binary is None:
            return "xdotool is not installed"
        return _x11_problem(self.env)

    def type_keys(self, keys: str) -> None:
        """Type `keys` as keysyms in one xdotool call (newline = Return, tab = Tab)."""
        why = self.problem()
        if why is not None:
            raise KeyboardUnavailable(why)
        assert self.binary is not None  # noqa: S101 - checked by problem()
        argv = [self.binary, "key", "--clearmodifiers", "--delay", str(self.delay_ms)]
        argv += [KEYSYMS.get(ch, ch) for ch in keys]
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, checked text
                argv, env=self.env, capture_output=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KeyboardError(f"xdotool failed: {type(exc).__name__}") from exc
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip()[:200]
            raise KeyboardError(f"xdotool failed ({done.returncode}): {detail}")


class PynputKeyboard:
    """pynput (Windows, macOS, X11 through python-xlib): number and suffix in one loop."""

    name = "pynput"

    def __init__(self, env: Mapping[str, str] | None = None, platform: str | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.platform = platform or sys.platform

    def problem(self) -> str | None:
        """Why this backend cannot work here, or None."""
        if importlib.util.find_spec("pynput") is None:
            return "pynput is not installed"
        if self.platform == "win32":
            return None
        if self.platform == "darwin":
            return _macos_problem()
        return _x11_problem(self.env)

    def type_keys(self, keys: str) -> None:
        """Type `keys` with pynput's controller; Enter/Tab as key taps."""
        why = self.problem()
        if why is not None:
            raise KeyboardUnavailable(why)
        if self.platform not in ("win32", "darwin"):
            # pynput reads DISPLAY when its X11 backend is imported: set it for this process.
            os.environ["DISPLAY"] = self.env["DISPLAY"]
        try:
            from pynput.keyboard import Controller, Key
        except Exception as exc:  # pynput raises ImportError or Xlib errors here
            raise KeyboardUnavailable(f"pynput cannot open the display: {exc}") from exc
        controller = Controller()
        specials = {"\n": Key.enter, "\t": Key.tab}
        for ch in keys:
            if ch in specials:
                controller.tap(specials[ch])
            else:
                controller.tap(ch)


def _macos_problem() -> str | None:
    """None when macOS lets this process send keystrokes (Accessibility), else why not."""
    try:
        from HIServices import AXIsProcessTrusted  # pyobjc, a dependency of pynput on macOS
    except ImportError:
        return None  # cannot ask; pynput itself will try
    if AXIsProcessTrusted():
        return None
    return (
        "macOS has not allowed this program to type: System Settings > Privacy & Security"
        f" > Accessibility, add {sys.executable}"
    )


class NoKeyboard:
    """No backend works: every call raises KeyboardUnavailable with the reasons."""

    name = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def type_keys(self, keys: str) -> None:
        """Always fails, saying why."""
        raise KeyboardUnavailable(self.reason)


def _x11_problem(env: Mapping[str, str]) -> str | None:
    if not env.get("DISPLAY"):
        if env.get("WAYLAND_DISPLAY"):
            return "Wayland session without X11: use ydotool or wtype (not supported yet)"
        return "no X display (DISPLAY is not set)"
    if env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland":
        return "XWayland: X11 typing tools cannot type into Wayland windows"
    return None


BACKENDS: dict[str, type[PynputKeyboard] | type[XdotoolKeyboard]] = {
    "pynput": PynputKeyboard,
    "xdotool": XdotoolKeyboard,
}
# What `auto` tries, in order: xdotool is an X11 tool (Linux and the BSDs).
AUTO_ORDER = {"win32": ["pynput"], "darwin": ["pynput"]}


def select_keyboard(
    preference: str = "auto", env: Mapping[str, str] | None = None
) -> KeyboardOutput:
    """The first working backend (`auto`: pynput, then xdotool), or a NoKeyboard saying why."""
    if preference == "none":
        return NoKeyboard("keyboard output is turned off on this bridge")
    names = AUTO_ORDER.get(sys.platform, list(BACKENDS)) if preference == "auto" else [preference]
    problems = []
    for name in names:
        if name not in BACKENDS:
            raise ValueError(f"unknown keyboard backend {name!r}")
        backend: PynputKeyboard | XdotoolKeyboard = BACKENDS[name](env)
        why = backend.problem()
        if why is None:
            return backend
        problems.append(f"{name}: {why}")
    return NoKeyboard("no keyboard backend works here (" + "; ".join(problems) + ")")


def describe_keyboard(preference: str = "auto", env: Mapping[str, str] | None = None) -> str | None:
    """The backend `run --keyboard preference` would use here, or None when none can
    type (`select_keyboard(...).reason` then says why)."""
    keyboard = select_keyboard(preference, env)
    return None if isinstance(keyboard, NoKeyboard) else keyboard.name
