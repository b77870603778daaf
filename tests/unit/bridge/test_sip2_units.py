"""SIP2 pieces on their own: wire frames and bounds, the codec's character sets, the
projection, the throttle."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from pysip2 import (
    ACSStatusResponse,
    LoginRequest,
    PatronInformationRequest,
    PatronInformationResponse,
    SIP2ChecksumError,
    decode_message,
    encode_message,
)

from bridge import wire
from bridge.sip2 import Sip2Error
from bridge.sip2.codec import Sip2Codec
from bridge.sip2.projection import project
from bridge.sip2.throttle import PasswordThrottle, key
from bridge.sip2_wire import (
    PATRON_FLAGS,
    Sip2Config,
    Sip2EndSession,
    Sip2Login,
    Sip2Patron,
    Sip2Status,
)

ENVELOPE = {"v": 1, "epk": "a", "salt": "b", "iv": "c", "ct": "d"}
CONFIG = Sip2Config("ils.local", 6001, "bridge", ENVELOPE, institution_id="JP-1")

# -- wire ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        wire.Sip2ConfigureCommand(CONFIG),
        wire.Sip2ConfigureCommand(
            Sip2Config(
                "fe80::1",
                1,
                "",
                ENVELOPE,
                terminal_password=ENVELOPE,
                tls=True,
                ca_pem="-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
                charset="shift_jis",
                checksums=True,
                patron_status=False,
                connect_timeout=0.5,
                reply_timeout=60,
            )
        ),
        wire.Sip2Command("99"),
        wire.Sip2Command("6300020250101    120000          AO|AA1|", sealed=ENVELOPE),
        wire.Sip2Result(Sip2Status(True, ("99", "63"), "JP-1", "図書館", "2.00")),
        wire.Sip2Result(Sip2Status(False, (), "", None, "1.00")),
        wire.Sip2Result(Sip2Patron(None, None, ())),
        wire.Sip2Result(Sip2Patron(True, False, PATRON_FLAGS)),
        wire.Sip2Result(Sip2Login(True)),
        wire.Sip2Result(Sip2EndSession(False)),
    ],
)
def test_frames_round_trip(frame: Any) -> None:
    assert wire.decode(wire.encode(frame)) == frame


def _configure(**config: Any) -> str:
    base = json.loads(wire.encode(wire.Sip2ConfigureCommand(CONFIG)))
    base["config"].update(config)
    return json.dumps(base)


@pytest.mark.parametrize(
    "change",
    [
        {"host": ""},
        {"host": "a b"},
        {"host": "h" * 254},
        {"port": 0},
        {"port": 65536},
        {"port": True},
        {"charset": "euc-jp"},
        {"login_user": "a|b"},
        {"institution_id": "x" * 65},
        {"location_code": "\n"},
        {"tls": "yes"},
        {"ca_pem": "not pem"},
        {"ca_pem": "-----BEGIN CERTIFICATE-----" + "x" * 17000},
        {"connect_timeout": 0},
        {"reply_timeout": 61},
        {"login_password": "plain"},
        {"terminal_password": {}},
        {"extra": 1},
    ],
)
def test_bad_settings_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(wire.RemoteProtocolError):
        wire.decode(_configure(**change))


@pytest.mark.parametrize(
    "text",
    [
        '{"v":1,"type":"sip2","id":"a","frame":"9"}',
        '{"v":1,"type":"sip2","id":"a","frame":5}',
        '{"v":1,"type":"sip2","id":"a","frame":"' + "9" * 1025 + '"}',
        '{"v":1,"type":"sip2","id":"a","frame":"99","sealed":"x"}',
        '{"v":1,"type":"sip2_result","id":"a","projection":{"kind":"patron","valid_patron":true,'
        '"valid_password":null,"flags":["name"]}}',
        '{"v":1,"type":"sip2_result","id":"a","projection":{"kind":"patron","valid_patron":true,'
        '"valid_password":null,"flags":[],"personal_name":"x"}}',
        '{"v":1,"type":"sip2_result","id":"a","projection":{"kind":"checkout","ok":true}}',
        '{"v":1,"type":"sip2_result","id":"a","projection":{"kind":"status","online":true,'
        '"supported":["11","11"],"institution_id":"","library_name":null,"protocol_version":"2"}}',
    ],
)
def test_bad_sip2_frames_are_refused(text: str) -> None:
    with pytest.raises(wire.RemoteProtocolError):
        wire.decode(text)


def test_reprs_show_no_envelope() -> None:
    assert "epk" not in repr(wire.Sip2ConfigureCommand(CONFIG))
    assert "AD" not in repr(wire.Sip2Command("63...ADsecret|", sealed=ENVELOPE))


# -- codec -------------------------------------------------------------------------------


def _request(password: str | None, name: str = "0000000011") -> PatronInformationRequest:
    return PatronInformationRequest(
        language="000",
        transaction_date="20250101    120000",
        summary=" " * 10,
        institution_id="JP",
        patron_identifier=name,
        patron_password=password,
    )


@pytest.mark.parametrize("charset", ["utf-8", "shift_jis", "cp850"])
@pytest.mark.parametrize("checksums", [False, True])
def test_codec_round_trip(charset: str, checksums: bool) -> None:
    codec = Sip2Codec(charset, checksums=checksums)
    message = _request("pässword" if charset != "shift_jis" else "パスワード①")
    if charset == "cp850":
        message = _request("pässword")
    frame = codec.encode(message, 7)
    decoded = codec.decode(frame)
    assert decoded.message == message
    assert (decoded.sequence_number, decoded.checksum is not None) == (
        (7, True) if checksums else (None, False)
    )


def test_shift_jis_replies_with_a_delimiter_byte_inside_a_name() -> None:
    reply = PatronInformationResponse(
        patron_status=" " * 14, language="000", transaction_date="20250101    120000",
        hold_items_count="0000", overdue_items_count="0000", charged_items_count="0000",
        fine_items_count="0000", recall_items_count="0000", unavailable_holds_count="0000",
        institution_id="JP", patron_identifier="1", personal_name="ポール・ポポ",
        valid_patron="Y", valid_patron_password="N",
    )  # fmt: skip
    for checksum in (False, True):
        raw = encode_message(reply, sequence_number=3, checksum=checksum, encoding="cp932")
        assert b"|" in "ポ".encode("cp932")
        with pytest.raises(Exception):  # noqa: B017 - pysip2 alone cannot read it
            assert decode_message(raw, encoding="cp932").message == reply
        assert Sip2Codec("shift_jis").decode(raw).message == reply
    bad = encode_message(reply, sequence_number=3, checksum=True, encoding="cp932")
    bad = bad[:-2] + (b"0" if bad[-2:-1] != b"0" else b"1") + b"\r"
    with pytest.raises(SIP2ChecksumError):
        Sip2Codec("shift_jis").decode(bad)


@pytest.mark.parametrize(
    ("charset", "password"),
    [("shift_jis", "ポチ"), ("shift_jis", "😀"), ("cp850", "パス"), ("utf-8", "a|b")],
)
def test_values_that_do_not_fit_are_refused(charset: str, password: str) -> None:
    with pytest.raises(Sip2Error) as caught:
        Sip2Codec(charset).encode(_request(password))
    assert caught.value.code.value in ("sip2_charset", "sip2_refused")


def test_login_password_in_shift_jis() -> None:
    login = LoginRequest(
        uid_algorithm="0", pwd_algorithm="0", login_user_id="u", login_password="ポ"
    )
    with pytest.raises(Sip2Error):
        Sip2Codec("shift_jis").encode(login)


# -- projection --------------------------------------------------------------------------


def test_projection_of_every_flag() -> None:
    for i, name in enumerate(PATRON_FLAGS):
        status = "".join("Y" if j == i else " " for j in range(14))
        reply = PatronInformationResponse(
            patron_status=status, language="000", transaction_date="20250101    120000",
            hold_items_count="0000", overdue_items_count="0000", charged_items_count="0000",
            fine_items_count="0000", recall_items_count="0000", unavailable_holds_count="0000",
            institution_id="JP", patron_identifier="1", personal_name="名",
        )  # fmt: skip
        projected = project(reply)
        assert projected == Sip2Patron(None, None, (name,))
        assert isinstance(projected, Sip2Patron) and projected.flag(name)


def test_projection_of_98_decodes_bx() -> None:
    reply = ACSStatusResponse(
        online_status="N", checkin_ok="Y", checkout_ok="Y", acs_renewal_policy="Y",
        status_update_ok="Y", offline_ok="Y", timeout_period="030", retries_allowed="003",
        date_time_sync="20250101    120000", protocol_version="2.00", institution_id="JP\x07",
        library_name="図書館", supported_messages="NNNNYYYYYNNNNNNN", terminal_location="2F",
        screen_message=("hello",),
    )  # fmt: skip
    assert project(reply) == Sip2Status(
        False, ("99", "97", "93", "63", "35"), "JP", "図書館", "2.00"
    )


# -- throttle ----------------------------------------------------------------------------


def test_throttle_moving_window() -> None:
    now = [0.0]
    t = PasswordThrottle(limit=5, window=900, clock=lambda: now[0])
    for i in range(5):
        now[0] = i * 60.0
        t.end(t.begin("0000000011"), wrong=True)
    with pytest.raises(Sip2Error) as caught:
        t.begin("0000000011")
    assert caught.value.code.value == "sip2_throttled"
    with pytest.raises(Sip2Error):
        t.begin(" " + "".join(chr(ord(c) + 0xFEE0) for c in "0000000011") + " ")  # full width
    t.end(t.begin("0000000022"), wrong=False)
    now[0] = 900.0  # the first wrong one leaves the window
    t.end(t.begin("0000000011"), wrong=False)  # a right one clears nothing
    assert t.wrong_count("0000000011") == 4
    t.end(t.begin("0000000011"), wrong=True)
    with pytest.raises(Sip2Error):
        t.begin("0000000011")
    now[0] = 960.0
    t.begin("0000000011")


def test_throttle_counts_checks_in_flight() -> None:
    t = PasswordThrottle(limit=5)
    tickets = [t.begin("x") for _ in range(5)]
    with pytest.raises(Sip2Error):
        t.begin("x")
    for ticket in tickets:
        t.end(ticket, wrong=False)
    t.begin("x")


def test_throttle_overall_and_capacity() -> None:
    t = PasswordThrottle(limit=5, overall=10, capacity=100)
    for i in range(10):
        t.end(t.begin(f"p{i}"), wrong=True)
    with pytest.raises(Sip2Error):
        t.begin("somebody else")
    full = PasswordThrottle(capacity=3)
    for i in range(3):
        full.end(full.begin(f"p{i}"), wrong=True)
    with pytest.raises(Sip2Error):
        full.begin("p3")  # full of live records: fail closed
    full.begin("p0")


def test_throttle_is_thread_safe() -> None:
    t = PasswordThrottle(limit=5)
    passed: list[int] = []

    def guess() -> None:
        try:
            ticket = t.begin("x")
        except Sip2Error:
            return
        passed.append(1)
        t.end(ticket, wrong=True)

    threads = [threading.Thread(target=guess) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(passed) == 5 and t.wrong_count("x") == 5


def test_key() -> None:
    assert key(" ＡＢＣ１ ") == key("abc1")
