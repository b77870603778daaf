"""The virtual card's file: everything one virtual My Number Card holds, as JSON.

One file per card. It carries the certificates (DER, base64), the private keys (PEM),
the PINs and their retry counters, the fake My Number and personal data of the text
input helper AP, the common-card data, the token info and the card's pace. The retry
counters live here so that they survive across card sessions and processes, as on a
real card: every change is written atomically (temporary file in the same directory,
fsync, `os.replace`) before the card answers, and the file is only ever readable by
its owner (mode 0600).

Layout (``format`` = ``ichimai-vcard``, ``version`` = 1)::

    {
      "format": "ichimai-vcard", "version": 1,
      "jpki": {
        "auth": {"certificate": b64, "ca_certificate": b64, "private_key": PEM,
                 "pin": {"value": "1234", "max_tries": 3, "tries_left": 3}},
        "sign": {"certificate": b64, "ca_certificate": b64, "private_key": PEM,
                 "password": {"value": "ABC123", "max_tries": 5, "tries_left": 5}},
        "token_info": b64
      },
      "text_helper": {"my_number": "123456789012", "holder": {...},
                      "pin": {"value": "1234", "max_tries": 3, "tries_left": 3}},
      "common": {"card_serial": "...", "municipality_code": "...", "card_expiry": "..."},
      "pace": {"apdu_delay_s": 0.0, "signature_time_s": 0.0}
    }
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

FORMAT = "ichimai-vcard"
VERSION = 1

AUTH_PIN_TRIES = 3  # 利用者証明用暗証番号: 4 digits, 3 tries
SIGN_PASSWORD_TRIES = 5  # 署名用電子証明書暗証番号: 6-16 of [A-Z0-9], 5 tries
TEXT_PIN_TRIES = 3  # 券面事項入力補助用暗証番号: 4 digits, 3 tries

AUTH_PIN_RE = re.compile(r"[0-9]{4}")
SIGN_PASSWORD_RE = re.compile(r"[A-Z0-9]{6,16}")
MY_NUMBER_RE = re.compile(r"[0-9]{12}")

TOKEN_LABEL = "JPKIAPICCTOKEN2"  # noqa: S105 - the PKCS#11 token label
TOKEN_INFO_LENGTH = 160


class CardFileError(ValueError):
    """The card file is missing, unreadable, or not a valid virtual card."""


@dataclass
class PinState:
    """One PIN EF: its reference data and retry counter (残り試行回数)."""

    value: str
    max_tries: int
    tries_left: int

    def __repr__(self) -> str:
        # Never print the PIN itself.
        return f"PinState(max_tries={self.max_tries}, tries_left={self.tries_left})"


@dataclass
class CardData:
    """Everything one virtual My Number Card holds."""

    auth_cert_der: bytes
    auth_ca_der: bytes
    auth_key_pem: bytes
    auth_pin: PinState
    sign_cert_der: bytes
    sign_ca_der: bytes
    sign_key_pem: bytes
    sign_password: PinState
    token_info: bytes
    my_number: str
    holder: dict[str, str]
    text_pin: PinState
    card_serial: str
    municipality_code: str
    card_expiry: str
    apdu_delay_s: float = 0.0
    signature_time_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"CardData(serial={self.card_serial!r}, auth_pin={self.auth_pin!r})"


class IssuedCardLike(Protocol):
    """What the fake J-LIS hands over when it issues a card (`jlis.IssuedCard`)."""

    @property
    def auth_cert_der(self) -> bytes: ...
    @property
    def auth_key_pem(self) -> bytes: ...
    @property
    def auth_ca_der(self) -> bytes: ...
    @property
    def sign_cert_der(self) -> bytes: ...
    @property
    def sign_key_pem(self) -> bytes: ...
    @property
    def sign_ca_der(self) -> bytes: ...
    @property
    def my_number(self) -> str: ...
    @property
    def holder(self) -> dict[str, str]: ...


def token_info(serial: str, label: str = TOKEN_LABEL) -> bytes:
    """A 160-byte PKCS#11 CK_TOKEN_INFO as EF 0006 holds it (4-byte big-endian ulongs)."""

    def text(value: str, size: int) -> bytes:
        return value.encode("ascii")[:size].ljust(size, b" ")

    def ulong(value: int) -> bytes:
        return value.to_bytes(4, "big")

    # CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_LOGIN_REQUIRED | CKF_WRITE_PROTECTED
    flags = 0x400 | 0x8 | 0x4 | 0x2
    out = (
        text(label, 32)  # label
        + text("JPKI", 32)  # manufacturerID
        + text("JPKIAPICC", 16)  # model
        + text(serial, 16)  # serialNumber
        + ulong(flags)
        + ulong(0)  # ulMaxSessionCount
        + ulong(0)  # ulSessionCount
        + ulong(0)  # ulMaxRwSessionCount
        + ulong(0)  # ulRwSessionCount
        + ulong(16)  # ulMaxPinLen
        + ulong(4)  # ulMinPinLen
        + ulong(0xFFFFFFFF) * 4  # memory sizes: CK_UNAVAILABLE_INFORMATION
        + bytes((1, 0, 1, 0))  # hardwareVersion, firmwareVersion
        + b" " * 16  # utcTime: no clock on the card
    )
    return out


def check_secrets(*, pin: str, sign_password: str, text_pin: str | None = None) -> None:
    """Raise CardFileError unless the PINs have the card's formats (never echoes them)."""
    for value, pattern, what in (
        (pin, AUTH_PIN_RE, "PIN must be 4 digits"),
        (pin if text_pin is None else text_pin, AUTH_PIN_RE, "text helper PIN must be 4 digits"),
        (sign_password, SIGN_PASSWORD_RE, "signing password must be 6-16 of [A-Z0-9]"),
    ):
        if not pattern.fullmatch(value):
            raise CardFileError(what)


def card_data_from_issued(
    issued: IssuedCardLike,
    *,
    pin: str,
    sign_password: str,
    text_pin: str | None = None,
    locked: bool = False,
    apdu_delay_s: float = 0.0,
    signature_time_s: float = 0.0,
) -> CardData:
    """Build a new card's data from what the fake J-LIS issued (counters full)."""
    text_pin = pin if text_pin is None else text_pin
    check_secrets(pin=pin, sign_password=sign_password, text_pin=text_pin)
    if not MY_NUMBER_RE.fullmatch(issued.my_number):
        raise CardFileError("My Number must be 12 digits")
    from cryptography import x509  # the card file itself needs no X.509 parsing

    cert = x509.load_der_x509_certificate(issued.auth_cert_der)
    digest = hashlib.sha256(issued.auth_cert_der).hexdigest().upper()
    serial = "IC" + digest[:14]
    return CardData(
        auth_cert_der=issued.auth_cert_der,
        auth_ca_der=issued.auth_ca_der,
        auth_key_pem=issued.auth_key_pem,
        auth_pin=PinState(pin, AUTH_PIN_TRIES, 0 if locked else AUTH_PIN_TRIES),
        sign_cert_der=issued.sign_cert_der,
        sign_ca_der=issued.sign_ca_der,
        sign_key_pem=issued.sign_key_pem,
        sign_password=PinState(sign_password, SIGN_PASSWORD_TRIES, SIGN_PASSWORD_TRIES),
        token_info=token_info(serial),
        my_number=issued.my_number,
        holder=dict(issued.holder),
        text_pin=PinState(text_pin, TEXT_PIN_TRIES, TEXT_PIN_TRIES),
        card_serial=serial,
        # A fake 6-digit local government code (5 digits + check digit), from the serial.
        municipality_code=f"{int(digest[14:20], 16) % 100000:05d}0",
        card_expiry=cert.not_valid_after_utc.date().isoformat(),
        apdu_delay_s=apdu_delay_s,
        signature_time_s=signature_time_s,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _pin_json(pin: PinState) -> dict[str, Any]:
    return {"value": pin.value, "max_tries": pin.max_tries, "tries_left": pin.tries_left}


def to_json(data: CardData) -> dict[str, Any]:
    """The card data as the JSON document stored in a card file."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "jpki": {
            "auth": {
                "certificate": _b64(data.auth_cert_der),
                "ca_certificate": _b64(data.auth_ca_der),
                "private_key": data.auth_key_pem.decode("ascii"),
                "pin": _pin_json(data.auth_pin),
            },
            "sign": {
                "certificate": _b64(data.sign_cert_der),
                "ca_certificate": _b64(data.sign_ca_der),
                "private_key": data.sign_key_pem.decode("ascii"),
                "password": _pin_json(data.sign_password),
            },
            "token_info": _b64(data.token_info),
        },
        "text_helper": {
            "my_number": data.my_number,
            "holder": dict(data.holder),
            "pin": _pin_json(data.text_pin),
        },
        "common": {
            "card_serial": data.card_serial,
            "municipality_code": data.municipality_code,
            "card_expiry": data.card_expiry,
        },
        "pace": {"apdu_delay_s": data.apdu_delay_s, "signature_time_s": data.signature_time_s},
    }
    doc.update(data.extra)
    return doc


def _get(doc: dict[str, Any], *keys: str, kind: type | tuple[type, ...] = str) -> Any:
    value: Any = doc
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise CardFileError(f"missing {'.'.join(keys)}")
        value = value[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise CardFileError(f"{'.'.join(keys)} has the wrong type")
    return value


def _get_b64(doc: dict[str, Any], *keys: str) -> bytes:
    try:
        return base64.b64decode(_get(doc, *keys), validate=True)
    except binascii.Error:
        raise CardFileError(f"{'.'.join(keys)} is not base64") from None


def _get_pin(doc: dict[str, Any], *keys: str, pattern: re.Pattern[str]) -> PinState:
    value = _get(doc, *keys, "value")
    max_tries = _get(doc, *keys, "max_tries", kind=int)
    tries_left = _get(doc, *keys, "tries_left", kind=int)
    if not pattern.fullmatch(value):
        raise CardFileError(f"{'.'.join(keys)}.value has the wrong format")
    # The tries nibble of 63Cx holds 0-15.
    if not 1 <= max_tries <= 15 or not 0 <= tries_left <= max_tries:
        raise CardFileError(f"{'.'.join(keys)} has impossible counters")
    return PinState(value, max_tries, tries_left)


def from_json(doc: Any) -> CardData:
    """Parse and check a card file's JSON document."""
    if not isinstance(doc, dict):
        raise CardFileError("card file is not a JSON object")
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise CardFileError(f"not a {FORMAT} version {VERSION} file")
    holder = _get(doc, "text_helper", "holder", kind=dict)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in holder.items()):
        raise CardFileError("text_helper.holder must map strings to strings")
    my_number = _get(doc, "text_helper", "my_number")
    if not MY_NUMBER_RE.fullmatch(my_number):
        raise CardFileError("text_helper.my_number must be 12 digits")
    token = _get_b64(doc, "jpki", "token_info")
    if len(token) != TOKEN_INFO_LENGTH:
        raise CardFileError(f"jpki.token_info must be {TOKEN_INFO_LENGTH} bytes")
    pace = (int, float)
    known = {"format", "version", "jpki", "text_helper", "common", "pace"}
    return CardData(
        auth_cert_der=_get_b64(doc, "jpki", "auth", "certificate"),
        auth_ca_der=_get_b64(doc, "jpki", "auth", "ca_certificate"),
        auth_key_pem=_get(doc, "jpki", "auth", "private_key").encode("ascii"),
        auth_pin=_get_pin(doc, "jpki", "auth", "pin", pattern=AUTH_PIN_RE),
        sign_cert_der=_get_b64(doc, "jpki", "sign", "certificate"),
        sign_ca_der=_get_b64(doc, "jpki", "sign", "ca_certificate"),
        sign_key_pem=_get(doc, "jpki", "sign", "private_key").encode("ascii"),
        sign_password=_get_pin(doc, "jpki", "sign", "password", pattern=SIGN_PASSWORD_RE),
        token_info=token,
        my_number=my_number,
        holder=dict(holder),
        text_pin=_get_pin(doc, "text_helper", "pin", pattern=AUTH_PIN_RE),
        card_serial=_get(doc, "common", "card_serial"),
        municipality_code=_get(doc, "common", "municipality_code"),
        card_expiry=_get(doc, "common", "card_expiry"),
        apdu_delay_s=float(_get(doc, "pace", "apdu_delay_s", kind=pace)),
        signature_time_s=float(_get(doc, "pace", "signature_time_s", kind=pace)),
        extra={k: v for k, v in doc.items() if k not in known},
    )


def write_atomic(path: Path, payload: bytes) -> None:
    """Replace `path` with `payload` atomically: temp file in the same dir, fsync, rename."""
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:  # mkstemp creates the file with mode 0600
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class CardFile:
    """A card file on disk and the card data loaded from it."""

    def __init__(self, path: Path, data: CardData) -> None:
        self.path = Path(path)
        self.data = data

    @classmethod
    def load(cls, path: Path | str) -> CardFile:
        """Read and check a card file."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CardFileError(f"cannot read card file {path}: {exc.strerror}") from None
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise CardFileError(f"card file {path} is not JSON") from None
        return cls(path, from_json(doc))

    @classmethod
    def create(cls, path: Path | str, data: CardData) -> CardFile:
        """Write a new card file (replacing any file at `path`) with mode 0600."""
        card_file = cls(Path(path), data)
        card_file.save()
        return card_file

    def save(self) -> None:
        """Write the card data back, atomically (called on every counter change)."""
        payload = json.dumps(to_json(self.data), indent=2, ensure_ascii=False).encode("utf-8")
        write_atomic(self.path, payload + b"\n")
