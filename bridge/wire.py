"""The frames between a bridge and the platform: JSON text over one WebSocket.

Sans-IO and standard library only (imported by the bridge and the platform alike):
`encode(frame) -> str` and `decode(text) -> Frame`, with validation into frozen
dataclasses. Every frame is one JSON object `{"v": 1, "type": ..., "id": ..., ...}`.

Whose fault an error is, as h11 says it: `decode` raises `RemoteProtocolError` (the
peer sent something we refuse), `encode` raises `LocalProtocolError` (our own code
tried to send something out of bounds).

Bounds, and why each is what it is:

- `MAX_FRAME_BYTES` (64 KiB): the largest legitimate frame is a batch result of
  `MAX_BATCH_STEPS` responses of at most 258 bytes (256 data + SW), about 11 KB once
  base64 and JSON are added; a snapshot of `MAX_READERS` readers is under 8 KB. 64 KiB
  leaves room for a larger next-generation card while capping what one peer can make
  the platform buffer (10,000 bridges x 64 KiB = 640 MB in the very worst case).
- `MAX_BATCH_STEPS` (32): a certificate read is 10 steps (SELECT AP, SELECT EF, 8 READ
  BINARY of 256 bytes); a PIN + signature is 5.
- `MAX_APDU_BYTES` (261): short APDUs only (4 + 1 + 255 + 1); the JPKI commands
  we allow never need extended lengths. `MAX_RESPONSE_BYTES` (258): Le 256 + SW.
- `MAX_READERS` (16), `MAX_NAME` (128 chars, PC/SC reader names are ~60), `MAX_ID`
  (64), `MAX_TEXT` (64 chars of keyboard output: a library number is 8-14).
- `MAX_DEPTH` (16): the deepest frame nests 4 levels (a snapshot's readers and their
  cards). Python's parser recurses once per level, so a frame of 64 KiB of `[` would
  raise RecursionError out of `decode`; depth is counted before parsing.
- SIP2 (`sip2_configure`, `sip2`, `sip2_result`): the bounds of bridge.sip2_wire (a
  request frame 1024 characters, settings' fields 64, a CA bundle 16 KiB).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .apdu import MalformedAPDU, Response, parse_command
from .sip2_wire import (
    Projection,
    Sip2Config,
    check_frame_text,
    config_from_json,
    config_to_json,
    projection_from_json,
    projection_to_json,
)
from .transport import OK_ONLY, Step

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024
MAX_BATCH_STEPS = 32
MAX_PROCEED_ON = 32
MAX_APDU_BYTES = 4 + 1 + 255 + 1
MAX_RESPONSE_BYTES = 256 + 2
MAX_READERS = 16
MAX_NAME = 128
MAX_ID = 64
MAX_TEXT = 64
MAX_MESSAGE = 200
MAX_ENVELOPE_FIELDS = 8
MAX_ENVELOPE_VALUE = 1024
MAX_ATR_BYTES = 33  # ISO 7816-3: TS + 32
MAX_DEPTH = 16

# What the bridge signs to prove possession of its key: a fixed label (domain
# separation), the platform origin it believes it talks to (a relayed challenge from
# another platform fails), the bridge id and the server's fresh nonce.
AUTH_LABEL = b"ichimai-bridge-auth-v1"
# `ichimai-bridge status` asks the platform over HTTPS whether this bridge is still
# allowed (POST /api/v1/bridges/check). Its own label, so that a check signature can
# never answer a connection's challenge, nor the other way round.
CHECK_LABEL = b"ichimai-bridge-check-v1"
NONCE_BYTES = 32

Suffix = Literal["enter", "tab", "none"]
SUFFIXES: tuple[str, ...] = ("enter", "tab", "none")

_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# A JSON string token (possessive: linear on any input) or a bracket outside one.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]')


class ProtocolError(ValueError):
    """A frame broke the wire protocol."""


class LocalProtocolError(ProtocolError):
    """Our side tried to encode a frame that breaks the protocol (a bug here)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent a frame that breaks the protocol (too large, malformed, unknown)."""


def new_id() -> str:
    """A fresh random frame id."""
    return secrets.token_urlsafe(12)


def b64u(data: bytes) -> str:
    """Base64url without padding (RFC 4648 section 5), as WebCrypto and JWK use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    """Decode base64url with or without padding; raise ValueError on bad input."""
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def auth_transcript(origin: str, bridge_id: str, nonce: bytes) -> bytes:
    """The bytes a bridge signs to answer a challenge (length-prefixed fields)."""
    return _transcript(AUTH_LABEL, origin, bridge_id, nonce)


def check_transcript(origin: str, bridge_id: str, nonce: bytes) -> bytes:
    """The bytes a bridge signs to ask whether it is still allowed (its own nonce)."""
    return _transcript(CHECK_LABEL, origin, bridge_id, nonce)


def _transcript(label: bytes, origin: str, bridge_id: str, nonce: bytes) -> bytes:
    out = bytearray(label)
    for part in (origin.encode(), bridge_id.encode(), nonce):
        out += len(part).to_bytes(2, "big") + part
    return bytes(out)


# -- frames --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardState:
    """A card in a reader: its ATR and the insertion epoch."""

    atr: bytes
    epoch: int


@dataclass(frozen=True, slots=True)
class ReaderState:
    """One reader and the card in it, if any."""

    name: str
    card: CardState | None = None


@dataclass(frozen=True, slots=True)
class Challenge:
    """Platform -> bridge, first frame: sign this fresh nonce."""

    nonce: bytes
    id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class Auth:
    """Bridge -> platform: the signed answer to the challenge."""

    bridge_id: str
    signature: bytes
    agent: str = ""
    id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class Welcome:
    """Platform -> bridge: authenticated; ping at this interval (seconds)."""

    bridge_id: str
    terminal_id: int
    ping_interval: float
    id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Bridge -> platform, after Welcome: every reader and card right now."""

    readers: tuple[ReaderState, ...]
    id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class ReaderAdded:
    """Bridge -> platform: a reader was plugged in."""

    reader: str
    id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class ReaderRemoved:
    """Bridge -> platform: a reader was unplugged."""

    reader: str
    id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class CardInserted:
    """Bridge -> platform: a card was inserted; `epoch` grows with every insertion."""

    reader: str
    atr: bytes
    epoch: int
    id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class CardRemoved:
    """Bridge -> platform: the card of `epoch` left the reader."""

    reader: str
    epoch: int
    id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class BatchCommand:
    """Platform -> bridge: run these steps on the card of `epoch` (None = current)."""

    steps: tuple[Step, ...]
    reader: str | None = None
    epoch: int | None = None
    id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class VerifyCommand:
    """Platform -> bridge: unseal the PIN, guard, VERIFY once, then run `then`.

    The PIN was sealed (bridge.seal) to this bridge's key for the context (bridge id,
    this frame's id), so the platform must send it under the id the browser sealed for.
    """

    sealed: Mapping[str, str | int]
    confirmed: bool = False
    then: tuple[Step, ...] = ()
    reader: str | None = None
    epoch: int | None = None
    id: str = field(default_factory=new_id)

    def __repr__(self) -> str:
        return f"VerifyCommand(id={self.id!r}, reader={self.reader!r}, epoch={self.epoch})"


@dataclass(frozen=True, slots=True)
class TypeCommand:
    """Platform -> bridge: type `text` then `suffix` into the focused window."""

    text: str
    suffix: str = "enter"
    allowed: str = "0123456789"
    id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class Sip2ConfigureCommand:
    """Platform -> bridge: use these SIP2 settings (replacing any), connect and log in.

    The answer is a Sip2Result with the 98 ACS Status projection, or an Error whose code
    is a bridge.sip2_wire.Sip2Code; the settings are kept either way (a system that is
    down now is tried again at the next exchange).
    """

    config: Sip2Config
    id: str = field(default_factory=new_id)

    def __repr__(self) -> str:
        return f"Sip2ConfigureCommand(id={self.id!r}, {self.config!r})"


@dataclass(frozen=True, slots=True)
class Sip2Command:
    """Platform -> bridge: one SIP2 exchange through the bridge's SIP2 firewall.

    `frame`: the request as SIP2 text (99, 63, 35, or 23); `sealed`: the patron's
    password (AD), sealed by the browser for (bridge id, "sip2-patron", this frame's id).
    """

    frame: str
    sealed: Mapping[str, str | int] | None = None
    id: str = field(default_factory=new_id)

    def __repr__(self) -> str:
        return f"Sip2Command(id={self.id!r}, command={self.frame[:2]!r})"


@dataclass(frozen=True, slots=True)
class Sip2Result:
    """Bridge -> platform: what the library system answered, projected (never the reply)."""

    projection: Projection
    id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class Result:
    """Bridge -> platform: a command succeeded; responses in order.

    `tries_left`: for a verify, the tries read before the VERIFY; for a batch, what its
    tries read answered (absent when it read none, or the PIN is verified).
    `last_try_armed`: set when the command left the card at one try left: True when the
    bridge would now send the last try (the card was re-tapped since one try left was
    first seen, and that try is not used yet), False when the card must first be taken
    off the reader and put back.
    """

    responses: tuple[Response, ...] = ()
    reader: str | None = None
    epoch: int | None = None
    tries_left: int | None = None
    last_try_armed: bool | None = None
    id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class Error:
    """Either way: a command (or the session) failed; `code` is a bridge.errors.Code value."""

    code: str
    message: str = ""
    tries_left: int | None = None
    id: str = field(default_factory=new_id)


# `error` codes the platform sends on /ws/bridge just before it closes a socket for load
# or abuse. They say "come back later", not "pair again": the bridge waits the upper
# half of its back-off range before its next connection (bridge/client.py).
BUSY = "busy"  # too many sockets waiting to authenticate (from this address, or at all)
AUTH_TIMEOUT = "auth_timeout"  # the challenge was not answered in time
RATE_LIMITED = "rate_limited"  # an authenticated bridge sent frames too fast


@dataclass(frozen=True, slots=True)
class Ping:
    """Bridge -> platform keep-alive (also refreshes last-seen)."""

    id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class Pong:
    """Platform -> bridge: the answer to Ping `id`."""

    id: str = field(default_factory=new_id)


Frame = (
    Challenge
    | Auth
    | Welcome
    | Snapshot
    | ReaderAdded
    | ReaderRemoved
    | CardInserted
    | CardRemoved
    | BatchCommand
    | VerifyCommand
    | TypeCommand
    | Sip2ConfigureCommand
    | Sip2Command
    | Result
    | Sip2Result
    | Error
    | Ping
    | Pong
)
COMMANDS = (BatchCommand, VerifyCommand, TypeCommand, Sip2ConfigureCommand, Sip2Command)
ANSWERS = (Result, Sip2Result, Error)
EVENTS = (ReaderAdded, ReaderRemoved, CardInserted, CardRemoved)


def encode(frame: Frame) -> str:
    """The frame as JSON text; LocalProtocolError if it breaks a bound."""
    try:
        text = json.dumps(_to_json(frame), separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, MalformedAPDU) as exc:
        raise LocalProtocolError(f"cannot encode {type(frame).__name__}: {exc}") from exc
    if len(text) > MAX_FRAME_BYTES:
        raise LocalProtocolError(f"frame of {len(text)} bytes exceeds {MAX_FRAME_BYTES}")
    return text


def decode(text: str | bytes) -> Frame:
    """Parse and validate one frame; RemoteProtocolError on anything out of bounds."""
    if len(text) > MAX_FRAME_BYTES:
        raise RemoteProtocolError(f"frame of {len(text)} bytes exceeds {MAX_FRAME_BYTES}")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError("frame is not UTF-8") from exc
    if _depth(text) > MAX_DEPTH:
        raise RemoteProtocolError(f"frame nests deeper than {MAX_DEPTH}")
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise RemoteProtocolError("frame is not JSON") from exc
    return _from_json(obj)


def _depth(text: str) -> int:
    """How deeply a JSON text's arrays and objects nest (brackets in strings do not count)."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        found = match.group()
        if found in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif found in ("]", "}"):
            depth -= 1
    return deepest


# -- pieces shared with the platform's bus messages ----------------------------------


def step_to_json(step: Step) -> dict[str, Any]:
    """One batch step as JSON: the APDU and the status words that let the batch go on."""
    raw = step.command.encode()
    if len(raw) > MAX_APDU_BYTES:
        raise LocalProtocolError(f"APDU of {len(raw)} bytes exceeds {MAX_APDU_BYTES}")
    out: dict[str, Any] = {"apdu": b64u(raw)}
    if step.proceed_on != OK_ONLY:
        out["ok"] = sorted(step.proceed_on)
    return out


def steps_to_json(steps: Sequence[Step]) -> list[dict[str, Any]]:
    """A batch as JSON; LocalProtocolError beyond MAX_BATCH_STEPS."""
    if len(steps) > MAX_BATCH_STEPS:
        raise LocalProtocolError(f"batch of {len(steps)} steps exceeds {MAX_BATCH_STEPS}")
    return [step_to_json(s) for s in steps]


def steps_from_json(value: Any) -> tuple[Step, ...]:
    """A batch from JSON; RemoteProtocolError on anything malformed or out of bounds."""
    if not isinstance(value, list) or len(value) > MAX_BATCH_STEPS:
        raise RemoteProtocolError(f"steps must be a list of at most {MAX_BATCH_STEPS}")
    steps = []
    for item in value:
        if not isinstance(item, dict) or not set(item) <= {"apdu", "ok"}:
            raise RemoteProtocolError("bad step")
        raw = _bytes_field(item, "apdu", MAX_APDU_BYTES, minimum=4)
        try:
            command = parse_command(raw)
        except MalformedAPDU as exc:
            raise RemoteProtocolError(f"bad APDU: {exc}") from exc
        proceed = item.get("ok")
        if proceed is None:
            steps.append(Step(command))
            continue
        if not isinstance(proceed, list) or not 1 <= len(proceed) <= MAX_PROCEED_ON:
            raise RemoteProtocolError("bad proceed-on list")
        if not all(_is_int(sw) and 0 <= sw <= 0xFFFF for sw in proceed):
            raise RemoteProtocolError("bad status word")
        steps.append(Step(command, frozenset(proceed)))
    return tuple(steps)


def responses_to_json(responses: Sequence[Response]) -> list[dict[str, Any]]:
    """Responses as JSON."""
    if len(responses) > MAX_BATCH_STEPS:
        raise LocalProtocolError("too many responses")
    out = []
    for r in responses:
        if len(r.data) + 2 > MAX_RESPONSE_BYTES:
            raise LocalProtocolError(f"response of {len(r.data)} bytes too long")
        out.append({"data": b64u(r.data), "sw": r.sw})
    return out


def responses_from_json(value: Any) -> tuple[Response, ...]:
    """Responses from JSON; RemoteProtocolError on anything malformed."""
    if not isinstance(value, list) or len(value) > MAX_BATCH_STEPS:
        raise RemoteProtocolError("responses must be a short list")
    out = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"data", "sw"}:
            raise RemoteProtocolError("bad response")
        data = _bytes_field(item, "data", MAX_RESPONSE_BYTES - 2)
        sw = item["sw"]
        if not _is_int(sw) or not 0 <= sw <= 0xFFFF:
            raise RemoteProtocolError("bad status word")
        out.append(Response(data, sw))
    return tuple(out)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bytes_field(obj: Mapping[str, Any], key: str, maximum: int, *, minimum: int = 0) -> bytes:
    try:
        raw = unb64u(obj[key])
    except (KeyError, ValueError) as exc:
        raise RemoteProtocolError(f"{key}: expected base64url") from exc
    if not minimum <= len(raw) <= maximum:
        raise RemoteProtocolError(f"{key}: {len(raw)} bytes out of bounds")
    return raw


def check_id(value: Any, what: str = "id") -> str:
    """Validate an identifier (frame id, bridge id): 1-64 safe characters."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise RemoteProtocolError(f"bad {what}")
    return value


# -- the codec: one table says each frame's type name and each field's kind ----------

_TYPES: dict[type, str] = {
    Challenge: "challenge",
    Auth: "auth",
    Welcome: "welcome",
    Snapshot: "snapshot",
    ReaderAdded: "reader_added",
    ReaderRemoved: "reader_removed",
    CardInserted: "card_inserted",
    CardRemoved: "card_removed",
    BatchCommand: "batch",
    VerifyCommand: "verify",
    TypeCommand: "type",
    Sip2ConfigureCommand: "sip2_configure",
    Sip2Command: "sip2",
    Sip2Result: "sip2_result",
    Result: "result",
    Error: "error",
    Ping: "ping",
    Pong: "pong",
}
_BY_NAME: dict[str, type] = {name: cls for cls, name in _TYPES.items()}

# Field kinds; a kind starting with "?" may be null.
_FIELDS: dict[type, dict[str, str]] = {
    Challenge: {"nonce": "nonce"},
    Auth: {"bridge_id": "id", "signature": "signature", "agent": "short"},
    Welcome: {"bridge_id": "id", "terminal_id": "count", "ping_interval": "interval"},
    Snapshot: {"readers": "readers"},
    ReaderAdded: {"reader": "name"},
    ReaderRemoved: {"reader": "name"},
    CardInserted: {"reader": "name", "atr": "atr", "epoch": "count"},
    CardRemoved: {"reader": "name", "epoch": "count"},
    BatchCommand: {"steps": "steps", "reader": "?name", "epoch": "?count"},
    VerifyCommand: {
        "sealed": "envelope",
        "confirmed": "bool",
        "then": "steps",
        "reader": "?name",
        "epoch": "?count",
    },
    TypeCommand: {"text": "text", "suffix": "suffix", "allowed": "text"},
    Sip2ConfigureCommand: {"config": "sip2_config"},
    Sip2Command: {"frame": "sip2_frame", "sealed": "?envelope"},
    Sip2Result: {"projection": "projection"},
    Result: {
        "responses": "responses",
        "reader": "?name",
        "epoch": "?count",
        "tries_left": "?tries",
        "last_try_armed": "?bool",
    },
    Error: {"code": "code", "message": "message", "tries_left": "?tries"},
    Ping: {},
    Pong: {},
}
_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # sip2_... codes have a digit


def _to_json(frame: Frame) -> dict[str, Any]:
    cls = type(frame)
    out: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": _TYPES[cls], "id": frame.id}
    for name, kind in _FIELDS[cls].items():
        value = getattr(frame, name)
        if value is None and kind.startswith("?"):
            continue
        out[name] = _put(kind.lstrip("?"), value)
    # Validate what we send by the same rules as what we receive.
    try:
        _from_json(out)
    except RemoteProtocolError as exc:
        raise ValueError(str(exc)) from exc
    return out


def _put(kind: str, value: Any) -> Any:
    if kind in ("nonce", "signature"):
        return b64u(value)
    if kind == "atr":
        return bytes(value).hex().upper()
    if kind == "steps":
        return steps_to_json(value)
    if kind == "responses":
        return responses_to_json(value)
    if kind == "readers":
        return [
            {"name": r.name}
            if r.card is None
            else {"name": r.name, "atr": r.card.atr.hex().upper(), "epoch": r.card.epoch}
            for r in value
        ]
    if kind == "envelope":
        return dict(value)
    if kind == "sip2_config":
        return config_to_json(value)
    if kind == "projection":
        return projection_to_json(value)
    return value


def _from_json(obj: Any) -> Frame:
    if not isinstance(obj, dict):
        raise RemoteProtocolError("frame is not a JSON object")
    if type(obj.get("v")) is not int or obj["v"] != PROTOCOL_VERSION:
        raise RemoteProtocolError(f"unsupported protocol version {obj.get('v')!r}")
    cls = _BY_NAME.get(obj.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise RemoteProtocolError(f"unknown frame type {str(obj.get('type'))[:32]!r}")
    fields = _FIELDS[cls]
    extra = set(obj) - set(fields) - {"v", "type", "id"}
    if extra:
        raise RemoteProtocolError(f"unknown fields in {_TYPES[cls]}: {sorted(extra)[:4]}")
    kwargs: dict[str, Any] = {"id": check_id(obj.get("id"))}
    for name, kind in fields.items():
        if name not in obj or (obj[name] is None and kind.startswith("?")):
            if not kind.startswith("?") and name not in _DEFAULTED.get(cls, ()):
                raise RemoteProtocolError(f"{_TYPES[cls]}: missing {name}")
            continue
        kwargs[name] = _get(kind.lstrip("?"), obj[name], name)
    return cls(**kwargs)  # type: ignore[no-any-return]


# Fields that may be left out and take the dataclass default.
_DEFAULTED: dict[type, tuple[str, ...]] = {
    Auth: ("agent",),
    VerifyCommand: ("confirmed", "then"),
    TypeCommand: ("suffix", "allowed"),
    Result: ("responses",),
    Error: ("message",),
}


def _get(kind: str, value: Any, name: str) -> Any:
    if kind == "id":
        return check_id(value, name)
    if kind == "nonce":
        return _bytes_field({name: value}, name, NONCE_BYTES, minimum=NONCE_BYTES)
    if kind == "signature":
        return _bytes_field({name: value}, name, 132, minimum=32)
    if kind == "count":
        if not _is_int(value) or not 0 <= value < 2**53:
            raise RemoteProtocolError(f"{name}: expected a non-negative integer")
        return value
    if kind == "tries":
        if not _is_int(value) or not 0 <= value <= 15:
            raise RemoteProtocolError(f"{name}: expected 0-15")
        return value
    if kind == "interval":
        if not isinstance(value, int | float) or isinstance(value, bool) or not 1 <= value <= 3600:
            raise RemoteProtocolError(f"{name}: expected 1-3600 seconds")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise RemoteProtocolError(f"{name}: expected a boolean")
        return value
    if kind in ("name", "short", "text", "message"):
        limit = {"name": MAX_NAME, "short": MAX_NAME, "text": MAX_TEXT}.get(kind, MAX_MESSAGE)
        if not isinstance(value, str) or len(value) > limit:
            raise RemoteProtocolError(f"{name}: expected a string of at most {limit}")
        if kind == "name" and (not value or not value.isprintable()):
            raise RemoteProtocolError(f"{name}: expected a printable name")
        return value
    if kind == "code":
        if not isinstance(value, str) or not _CODE_RE.match(value):
            raise RemoteProtocolError(f"{name}: bad error code")
        return value
    if kind == "suffix":
        if value not in SUFFIXES:
            raise RemoteProtocolError(f"{name}: expected one of {SUFFIXES}")
        return value
    if kind == "atr":
        return _atr(value)
    if kind == "steps":
        return steps_from_json(value)
    if kind == "responses":
        return responses_from_json(value)
    if kind == "readers":
        return _readers(value)
    if kind == "envelope":
        return _envelope(value)
    if kind in ("sip2_config", "sip2_frame", "projection"):
        try:
            if kind == "sip2_config":
                return config_from_json(value, envelope=lambda v, _name: _envelope(v))
            if kind == "sip2_frame":
                return check_frame_text(value)
            return projection_from_json(value)
        except RemoteProtocolError:
            raise
        except ValueError as exc:
            raise RemoteProtocolError(f"{name}: {exc}") from None
    raise AssertionError(kind)  # pragma: no cover


def _atr(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) > 2 * MAX_ATR_BYTES:
        raise RemoteProtocolError("atr: expected hex")
    try:
        atr = bytes.fromhex(value)
    except ValueError as exc:
        raise RemoteProtocolError("atr: expected hex") from exc
    if len(atr) < 2:
        raise RemoteProtocolError("atr: too short")
    return atr


def _readers(value: Any) -> tuple[ReaderState, ...]:
    if not isinstance(value, list) or len(value) > MAX_READERS:
        raise RemoteProtocolError(f"readers: at most {MAX_READERS}")
    out = []
    for item in value:
        if not isinstance(item, dict) or not set(item) <= {"name", "atr", "epoch"}:
            raise RemoteProtocolError("readers: bad entry")
        name = _get("name", item.get("name"), "name")
        if ("atr" in item) != ("epoch" in item):
            raise RemoteProtocolError("readers: atr and epoch go together")
        card = None
        if "atr" in item:
            card = CardState(_atr(item["atr"]), _get("count", item["epoch"], "epoch"))
        out.append(ReaderState(name, card))
    if len({r.name for r in out}) != len(out):
        raise RemoteProtocolError("readers: duplicate name")
    return tuple(out)


def _envelope(value: Any) -> dict[str, str | int]:
    if not isinstance(value, dict) or not 1 <= len(value) <= MAX_ENVELOPE_FIELDS:
        raise RemoteProtocolError("sealed: expected a small object")
    for k, v in value.items():
        if not isinstance(v, str | int) or isinstance(v, bool) or len(k) > 16:
            raise RemoteProtocolError("sealed: bad field")
        if isinstance(v, str) and len(v) > MAX_ENVELOPE_VALUE:
            raise RemoteProtocolError("sealed: field too long")
    return dict(value)
