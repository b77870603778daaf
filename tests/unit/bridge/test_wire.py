"""The bridge <-> platform frames: round trips, bounds, and whose fault an error is."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import jpki, wire
from bridge.apdu import Command, Response
from bridge.transport import Step

WIRE_SOURCE = Path(wire.__file__)

FRAMES: list[wire.Frame] = [
    wire.Challenge(b"\x01" * 32),
    wire.Auth("brg_abc", b"\x02" * 64, "ichimai-bridge/0.1"),
    wire.Welcome("brg_abc", 7, 25.0),
    wire.Snapshot(
        (
            wire.ReaderState("Reader A 00 00"),
            wire.ReaderState(
                "Reader B 00 00", wire.CardState(bytes.fromhex("3BE000FF8131FE4514"), 5)
            ),
        )
    ),
    wire.ReaderAdded("Reader A 00 00"),
    wire.ReaderRemoved("Reader A 00 00"),
    wire.CardInserted("Reader A 00 00", bytes.fromhex("3BE000FF8131FE4514"), 1795796825241),
    wire.CardRemoved("Reader A 00 00", 1795796825241),
    wire.BatchCommand(tuple(next(jpki.read_certificate())), reader="Reader A 00 00", epoch=3),
    wire.BatchCommand((Step(jpki.tries_left_command(), frozenset({0x9000, 0x63C3, 0x6984})),)),
    wire.VerifyCommand(
        {"v": 1, "epk": "AAAA", "salt": "BBBB", "iv": "CCCC", "ct": "DDDD"},
        confirmed=True,
        then=(Step(jpki.select_ef(0x17)),),
        epoch=9,
    ),
    wire.TypeCommand("12345678", "tab", "0123456789"),
    wire.Result((Response(b"\x30\x82", 0x9000), Response(b"", 0x6B00)), reader="r", epoch=2),
    wire.Result(tries_left=3),
    wire.Result((Response(b"", 0x63C1),), reader="r", epoch=2, tries_left=1, last_try_armed=False),
    wire.Result((Response(b"", 0x63C1),), tries_left=1, last_try_armed=True),
    wire.Error("card_removed", "the card was removed", tries_left=None),
    wire.Error("pin_last_try", "confirm", tries_left=1),
    wire.Error("pin_retap", "take the card off the reader and tap it again", tries_left=1),
    wire.Ping(),
    wire.Pong(id="abc"),
]


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: type(f).__name__)
def test_round_trip(frame: wire.Frame) -> None:
    text = wire.encode(frame)
    assert len(text) <= wire.MAX_FRAME_BYTES
    assert wire.decode(text) == frame
    assert wire.decode(text.encode()) == frame
    obj = json.loads(text)
    assert obj["v"] == wire.PROTOCOL_VERSION and obj["id"] == frame.id


def test_a_certificate_read_is_one_frame_well_under_the_bound() -> None:
    batch = wire.BatchCommand(tuple(next(jpki.read_certificate())))
    result = wire.Result(
        tuple(Response(b"\xff" * 256, 0x9000) for _ in range(wire.MAX_BATCH_STEPS))
    )
    assert len(batch.steps) == 10
    assert len(wire.encode(result)) < wire.MAX_FRAME_BYTES // 4


def _frame(**fields: Any) -> str:
    base = {"v": 1, "type": "ping", "id": "x1"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None})


def _steps(n: int) -> list[dict[str, Any]]:
    return [{"apdu": wire.b64u(jpki.select_jpki().encode())}] * n


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("x" * (wire.MAX_FRAME_BYTES + 1), "exceeds"),
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (_frame(v=2), "version"),
        (_frame(v=True), "version"),
        (_frame(type="launch"), "unknown frame type"),
        (_frame(id="has space"), "bad id"),
        (_frame(id="a" * 65), "bad id"),
        (_frame(extra=1), "unknown fields"),
        (_frame(type="card_removed", reader="r"), "missing epoch"),
        (_frame(type="card_removed", reader="r", epoch=-1), "non-negative"),
        (_frame(type="card_removed", reader="r", epoch=True), "non-negative"),
        (_frame(type="card_removed", reader="", epoch=1), "printable"),
        (_frame(type="card_removed", reader="a\nb", epoch=1), "printable"),
        (_frame(type="batch", steps=_steps(wire.MAX_BATCH_STEPS + 1)), "at most"),
        (_frame(type="batch", steps=[{"apdu": "!!"}]), "base64url"),
        (_frame(type="batch", steps=[{"apdu": wire.b64u(b"\x00" * 300)}]), "out of bounds"),
        (
            _frame(type="batch", steps=[{"apdu": wire.b64u(b"\x00\xa4\x04\x0c\x05\x01")}]),
            "bad APDU",
        ),
        (
            _frame(type="batch", steps=[{"apdu": wire.b64u(b"\x00\xb0\x00\x00\x10"), "ok": []}]),
            "proceed",
        ),
        (
            _frame(
                type="batch", steps=[{"apdu": wire.b64u(b"\x00\xb0\x00\x00\x10"), "ok": [70000]}]
            ),
            "status word",
        ),
        (_frame(type="challenge", nonce=wire.b64u(b"short")), "out of bounds"),
        (_frame(type="welcome", bridge_id="b", terminal_id=1, ping_interval=0), "1-3600"),
        (_frame(type="type", text="1" * (wire.MAX_TEXT + 1)), "at most"),
        (_frame(type="type", text="1", suffix="escape"), "one of"),
        (_frame(type="result", responses=[{"data": "", "sw": "9000"}]), "status word"),
        (_frame(type="result", tries_left=16), "0-15"),
        (_frame(type="result", last_try_armed=1), "boolean"),
        (_frame(type="result", last_try_armed="true"), "boolean"),
        (_frame(type="error", code="Not-A-Code"), "bad error code"),
        (_frame(type="snapshot", readers=[{"name": "a"}, {"name": "a"}]), "duplicate"),
        (_frame(type="snapshot", readers=[{"name": "a", "atr": "3B"}]), "go together"),
        (_frame(type="snapshot", readers=[{"name": f"r{i}"} for i in range(17)]), "at most"),
        (_frame(type="verify", sealed={}), "small object"),
        (_frame(type="verify", sealed={"ct": "x" * 2000}), "too long"),
    ],
)
def test_decode_refuses_with_a_remote_protocol_error(text: str, match: str) -> None:
    with pytest.raises(wire.RemoteProtocolError, match=match):
        wire.decode(text)


@pytest.mark.parametrize(
    "frame",
    [
        wire.BatchCommand(tuple(Step(jpki.select_jpki()) for _ in range(wire.MAX_BATCH_STEPS + 1))),
        wire.BatchCommand((Step(Command(0, 0xB0, 0, 0, b"\x00" * 300)),)),
        wire.TypeCommand("1" * 100),
        wire.CardRemoved("", 1),
        wire.Result((Response(b"\x00" * 300, 0x9000),)),
        wire.Welcome("bad id!", 1, 25.0),
    ],
    ids=["too-many-steps", "extended-apdu", "long-text", "empty-reader", "long-response", "bad-id"],
)
def test_encode_refuses_with_a_local_protocol_error(frame: wire.Frame) -> None:
    with pytest.raises(wire.LocalProtocolError):
        wire.encode(frame)


def test_last_try_armed_is_left_out_unless_set() -> None:
    """An older platform's decoder never meets the field unless one try is left."""
    assert "last_try_armed" not in json.loads(wire.encode(wire.Result(tries_left=3)))
    obj = json.loads(wire.encode(wire.Result(tries_left=1, last_try_armed=False)))
    assert obj["last_try_armed"] is False
    decoded = wire.decode(
        json.dumps({"v": 1, "type": "result", "id": "r1", "last_try_armed": None})
    )
    assert isinstance(decoded, wire.Result) and decoded.last_try_armed is None


def test_verify_command_repr_hides_the_envelope() -> None:
    frame = wire.VerifyCommand({"ct": "secret-ciphertext"})
    assert "secret" not in repr(frame)


def test_auth_transcript_is_unambiguous() -> None:
    a = wire.auth_transcript("https://a.example", "brg_1", b"\x00" * 32)
    b = wire.auth_transcript("https://a.example/", "brg_1", b"\x00" * 32)
    c = wire.auth_transcript("https://a.exampleb", "rg_1", b"\x00" * 32)
    assert len({a, b, c}) == 3
    assert a.startswith(wire.AUTH_LABEL)


def test_base64url() -> None:
    for n in range(8):
        data = bytes(range(n))
        assert wire.unb64u(wire.b64u(data)) == data
    with pytest.raises(ValueError, match="base64url"):
        wire.unb64u("a+b/")


scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
)
json_values = (
    scalars
    | st.lists(scalars, max_size=3)
    | st.dictionaries(st.text(max_size=4), scalars, max_size=3)
)


@given(
    st.sampled_from(sorted(wire._BY_NAME)),
    st.dictionaries(
        st.sampled_from(
            [
                "reader",
                "epoch",
                "steps",
                "atr",
                "nonce",
                "readers",
                "code",
                "text",
                "responses",
                "sealed",
                "bridge_id",
                "terminal_id",
                "ping_interval",
                "tries_left",
                "last_try_armed",
            ]
        ),
        json_values,
        max_size=5,
    ),
)
def test_decode_never_fails_any_other_way(kind: str, fields: dict[str, Any]) -> None:
    text = json.dumps({"v": 1, "type": kind, "id": "f1", **fields})
    try:
        frame = wire.decode(text)
    except wire.RemoteProtocolError:
        return
    assert wire.decode(wire.encode(frame)) == frame


def test_wire_uses_the_standard_library_only() -> None:
    tree = ast.parse(WIRE_SOURCE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            assert node.module in {"apdu", "transport", "errors", "sip2_wire"}, node.module
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
