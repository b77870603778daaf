"""`ichimai-bridge status` findings from PC/SC answers that the harness cannot make (no
reader at all, a mute card, each system's own service), its texts, and its verdict.

Only the pyscard boundary is faked (`smartcard.scard`): the checks themselves run as in
the bridge. tests/functional/test_bridge_wheel.py runs them with real parts.
"""

from __future__ import annotations

import string
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from bridge import status
from bridge.status import CLOCK_SKEW_LIMIT, Finding, check_keyboard, check_pcsc, render
from bridge.status_text import TEXTS, default_lang, say

PRESENT, EMPTY, MUTE = 0x20, 0x10, 0x200


def fake_scard(
    *,
    context: int = 0,
    readers: tuple[int, list[str]] = (0, []),
    states: list[tuple[str, int, list[int]]] | None = None,
) -> types.ModuleType:
    """A `smartcard.scard` answering as told (error codes as pcsc-lite's)."""
    module = types.ModuleType("smartcard.scard")
    values: dict[str, Any] = {
        "SCARD_S_SUCCESS": 0,
        "SCARD_SCOPE_USER": 0,
        "SCARD_E_NO_SERVICE": 0x8010001D,
        "SCARD_E_NO_READERS_AVAILABLE": 0x8010002E,
        "SCARD_STATE_UNAWARE": 0,
        "SCARD_STATE_PRESENT": PRESENT,
        "SCARD_STATE_EMPTY": EMPTY,
        "SCARD_STATE_MUTE": MUTE,
        "SCardEstablishContext": lambda scope: (context, 1),
        "SCardReleaseContext": lambda ctx: 0,
        "SCardListReaders": lambda ctx, groups: readers,
        "SCardGetStatusChange": lambda ctx, timeout, asked: (0, states or []),
        "SCardGetErrorMessage": lambda code: f"error {code:#x}",
    }
    for name, value in values.items():
        setattr(module, name, value)
    return module


@pytest.fixture
def scard(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(**answers: Any) -> None:
        package = types.ModuleType("smartcard")
        package.scard = fake_scard(**answers)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "smartcard", package)
        monkeypatch.setitem(sys.modules, "smartcard.scard", package.scard)  # type: ignore[attr-defined]

    return install


@pytest.mark.parametrize(
    ("platform", "words"),
    [("linux", "pcscd"), ("win32", "services.msc"), ("darwin", "restart the Mac")],
)
def test_no_service_says_what_to_do_on_each_system(scard: Any, platform: str, words: str) -> None:
    scard(context=0x8010001D)
    [found] = check_pcsc("en", platform)
    assert found.code == "no_service" and found.ok is False and words in found.text


@pytest.mark.parametrize("answer", [(0x8010002E, []), (0, [])])
def test_no_reader(scard: Any, answer: tuple[int, list[str]]) -> None:
    scard(readers=answer)
    [found] = check_pcsc("en", "linux")
    assert found.code == "no_reader" and found.ok is False
    assert "USB" in found.text and "libccid" in found.text
    assert "libccid" not in check_pcsc("en", "win32")[0].text


def test_each_reader_and_its_card(scard: Any) -> None:
    scard(
        readers=(0, ["A", "B", "C"]),
        states=[("A", PRESENT, [0x3B]), ("B", EMPTY, []), ("C", PRESENT | MUTE, [])],
    )
    found = check_pcsc("en", "linux")
    assert [(f.code, f.ok) for f in found] == [
        ("pcsc_ok", True),
        ("card_present", True),
        ("no_card", None),
        ("card_mute", False),
    ]


def test_another_pcsc_error_is_named(scard: Any) -> None:
    scard(context=0x80100001)
    [found] = check_pcsc("ja", "linux")
    assert found.code == "pcsc_error" and "0x80100001" in found.text


@pytest.mark.parametrize(
    ("skew", "code"),
    [
        (0.0, "clock_ok"),
        (CLOCK_SKEW_LIMIT, "clock_ok"),
        (600.0, "clock_skew"),
        (-600, "clock_skew"),
    ],
)
def test_clock(skew: float, code: str) -> None:
    found = status._clock_finding(skew, "en")
    assert found.code == code
    if code == "clock_skew":
        assert ("ahead" if skew > 0 else "behind") in found.text and "10 minute" in found.text


def test_every_text_exists_in_both_languages_and_fills_in() -> None:
    values = {
        name: "x"
        for text in (t for pair in TEXTS.values() for t in pair)
        for _, name, _, _ in string.Formatter().parse(text)
        if name
    }
    for code, (english, japanese) in TEXTS.items():
        assert english and japanese, code
        assert say("en", code, **values) != say("ja", code, **values)


@pytest.mark.parametrize(
    ("env", "lang"),
    [({"LANG": "ja_JP.UTF-8"}, "ja"), ({"LANG": "C.UTF-8"}, "en"), ({"LC_ALL": "ja_JP"}, "ja")],
)
def test_language_from_the_locale(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], lang: str
) -> None:
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert default_lang() == lang


def test_keyboard_off_and_unavailable_are_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_keyboard("none", "en").code == "keyboard_off"
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    found = check_keyboard("xdotool", "en")
    assert found.code == "keyboard_unavailable" and found.ok is None


def test_render_counts_the_problems() -> None:
    findings = [Finding("a", True, "fine"), Finding("b", None, "note"), Finding("c", False, "bad")]
    text = render(findings, "en")
    assert "[OK] fine" in text and "[--] note" in text and "[!!] bad" in text
    assert text.endswith("1 problem(s) to fix: see the lines marked [!!].")


def test_not_paired(tmp_path: Path) -> None:
    identity, found = status.check_pairing(tmp_path / "none", "en")
    assert identity is None and found.code == "not_paired"
