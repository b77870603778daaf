"""The card file: JSON layout, validation, atomic writes with mode 0600."""

from __future__ import annotations

import copy
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from bridge.vcard.cardfile import (
    TOKEN_INFO_LENGTH,
    CardFile,
    CardFileError,
    PinState,
    card_data_from_issued,
    from_json,
    to_json,
    token_info,
    write_atomic,
)
from tests.fixtures.cards import DemoCard


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_round_trip(card_file: DemoCard) -> None:
    loaded = CardFile.load(card_file.path)
    assert from_json(to_json(loaded.data)) == loaded.data
    assert loaded.data.auth_cert_der == card_file.issued.auth_cert_der
    assert loaded.data.sign_key_pem == card_file.issued.sign_key_pem
    assert loaded.data.my_number == card_file.issued.my_number
    assert loaded.data.holder == card_file.issued.holder


def test_layout(card_file: DemoCard) -> None:
    doc = json.loads(card_file.path.read_text("utf-8"))
    assert doc["format"] == "ichimai-vcard" and doc["version"] == 1
    assert set(doc) == {"format", "version", "jpki", "text_helper", "common", "pace"}
    assert doc["jpki"]["auth"]["pin"] == {"value": "1234", "max_tries": 3, "tries_left": 3}
    assert doc["jpki"]["sign"]["password"] == {"value": "ABC123", "max_tries": 5, "tries_left": 5}
    assert doc["text_helper"]["pin"]["max_tries"] == 3
    assert doc["jpki"]["auth"]["private_key"].startswith("-----BEGIN")
    assert doc["pace"] == {"apdu_delay_s": 0.0, "signature_time_s": 0.0}


def test_mode_0600_and_no_leftovers(card_file: DemoCard) -> None:
    assert mode(card_file.path) == 0o600
    loaded = CardFile.load(card_file.path)
    loaded.data.auth_pin.tries_left = 1
    loaded.save()
    assert mode(card_file.path) == 0o600
    assert CardFile.load(card_file.path).data.auth_pin.tries_left == 1
    assert sorted(p.name for p in card_file.path.parent.iterdir()) == ["card.json"]


def test_unknown_top_level_keys_are_kept(card_file: DemoCard) -> None:
    doc = json.loads(card_file.path.read_text("utf-8"))
    doc["note"] = "kept"
    card_file.path.write_text(json.dumps(doc), "utf-8")
    loaded = CardFile.load(card_file.path)
    loaded.save()
    assert json.loads(card_file.path.read_text("utf-8"))["note"] == "kept"


def test_write_atomic_cleans_up_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "card.json"
    target.write_bytes(b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    for key in path:
        doc = doc[key]
    if value is _DELETE:
        del doc[last]
    else:
        doc[last] = value


_DELETE = object()

INVALID = [
    ("format", "something-else"),
    ("version", 2),
    ("jpki.auth.certificate", "not base64!"),
    ("jpki.auth.certificate", _DELETE),
    ("jpki.auth.pin.value", "12345"),
    ("jpki.auth.pin.value", 1234),
    ("jpki.auth.pin.tries_left", 4),
    ("jpki.auth.pin.tries_left", -1),
    ("jpki.auth.pin.tries_left", True),
    ("jpki.auth.pin.max_tries", 16),
    ("jpki.sign.password.value", "abc123"),
    ("jpki.sign.password.value", "ABC12"),
    ("jpki.token_info", "AAAA"),
    ("text_helper.my_number", "12345678901"),
    ("text_helper.holder", {"name": 1}),
    ("text_helper.pin.value", "12a4"),
    ("common.card_serial", None),
    ("pace.apdu_delay_s", "fast"),
    ("pace", _DELETE),
]


@pytest.mark.parametrize(("dotted", "value"), INVALID, ids=[f"{d}={v!r}" for d, v in INVALID])
def test_invalid_card_files(card_file: DemoCard, dotted: str, value: Any) -> None:
    doc = json.loads(card_file.path.read_text("utf-8"))
    bad = copy.deepcopy(doc)
    _set(bad, dotted, value)
    with pytest.raises(CardFileError):
        from_json(bad)


@pytest.mark.parametrize("content", [b"", b"not json", b"[]", b"\xff\xfe", b'"text"'])
def test_unreadable_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "card.json"
    path.write_bytes(content)
    with pytest.raises(CardFileError):
        CardFile.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CardFileError, match="cannot read"):
        CardFile.load(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("pin", "password", "text_pin"),
    [("123", "ABC123", None), ("12a4", "ABC123", None), ("1234", "abc123", None),
     ("1234", "ABC12", None), ("1234", "A" * 17, None), ("1234", "ABC123", "12345")],
)  # fmt: skip
def test_issue_checks_formats(
    card_file: DemoCard, pin: str, password: str, text_pin: str | None
) -> None:
    with pytest.raises(CardFileError):
        card_data_from_issued(card_file.issued, pin=pin, sign_password=password, text_pin=text_pin)


def test_issue_defaults(card_file: DemoCard) -> None:
    data = card_data_from_issued(
        card_file.issued, pin="4321", sign_password="PASSWORD16CHARS0", locked=True
    )
    assert data.auth_pin == PinState("4321", 3, 0)
    assert data.text_pin == PinState("4321", 3, 3)  # the text PIN defaults to the PIN
    assert data.sign_password == PinState("PASSWORD16CHARS0", 5, 5)
    assert len(data.municipality_code) == 6 and data.municipality_code.isdigit()
    assert len(data.card_expiry) == 10


def test_token_info_layout() -> None:
    info = token_info("IC0123456789ABCD")
    assert len(info) == TOKEN_INFO_LENGTH == 160
    assert info[:32] == b"JPKIAPICCTOKEN2" + b" " * 17
    assert info[80:96] == b"IC0123456789ABCD"


def test_reprs_hide_secrets(card_file: DemoCard) -> None:
    data = CardFile.load(card_file.path).data
    for text in (repr(data), repr(data.auth_pin), repr(data.sign_password), str(data)):
        assert "'1234'" not in text and "ABC123" not in text and "PRIVATE" not in text
        assert "value" not in text
