"""The applets and files of the virtual My Number Card, built from its card data.

What each applet holds and who may read it, per shared/docs/jpki-card.md. The card
logic (`bridge.vcard.card`) walks these structures; nothing here answers APDUs.

Applets in the fixed order that SELECT by DF-name prefix searches (the first AID that
starts with the given bytes wins): JPKI-AP, then the applets we must never touch (text
input helper, card face, 住基, common card), then the GlobalPlatform ISD.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from .cardfile import AUTH_PIN_RE, SIGN_PASSWORD_RE, CardData

JPKI_AID = bytes.fromhex("D392F000260100000001")  # 公的個人認証AP
TEXT_HELPER_AID = bytes.fromhex("D3921000310001010408")  # 券面事項入力補助AP
CARD_FACE_AID = bytes.fromhex("D3921000310001010402")  # 券面事項確認AP
JUKI_AID = bytes.fromhex("D3921000310001010401")  # 住基AP
COMMON_AID = bytes.fromhex("D3921000310001010100")  # 共通カードAP
ISD_AID = bytes.fromhex("A0000001510000")  # GlobalPlatform Issuer Security Domain

# SELECT by DF name matches any AID starting with the given bytes, but not shorter
# than this (a 1-byte "prefix" selecting some applet would be absurd even for this card).
MIN_AID_PREFIX = 5

# Names of the PINs (keys into VirtualCard's PIN table).
AUTH_PIN = "auth_pin"  # 利用者証明用暗証番号, EF 0018
SIGN_PASSWORD = "sign_password"  # noqa: S105 - a name. 署名用電子証明書暗証番号, EF 001B
TEXT_PIN = "text_pin"  # 券面事項入力補助用暗証番号, EF 0011 of the text input helper AP
# Read access that no PIN of ours can grant (the card face image, 住基 data): on the
# real card these need PINs or keys of the municipal office's terminal.
NEVER = "never"

FILLER = 0xFF


@dataclass(frozen=True, slots=True)
class BinaryEF:
    """A transparent EF; `read_pin` names the PIN that must be verified to read it."""

    fid: int
    content: bytes
    read_pin: str | None = None

    def __repr__(self) -> str:
        return f"BinaryEF({self.fid:04X}, {len(self.content)} bytes, read_pin={self.read_pin})"


@dataclass(frozen=True, slots=True)
class PinEF:
    """A PIN EF: VERIFY and CHANGE REFERENCE DATA address it; `pattern` is its format."""

    fid: int
    pin: str
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class KeyEF:
    """A private-key EF: COMPUTE DIGITAL SIGNATURE uses it once `pin` is verified."""

    fid: int
    key: rsa.RSAPrivateKey = field(repr=False)
    pin: str


EF = BinaryEF | PinEF | KeyEF


@dataclass(frozen=True, slots=True)
class Applet:
    """One applet: its AID, its EFs by file id, and (ISD only) its GET DATA objects."""

    name: str
    aid: bytes
    kind: Literal["files", "isd"]
    efs: Mapping[int, EF] = field(default_factory=dict)
    data_objects: Mapping[int, bytes] = field(default_factory=dict)


def with_filler(content: bytes, block: int) -> bytes:
    """`content` followed by filler up to a multiple of `block`, always some filler.

    The JPKI certificate EFs are larger than the DER they hold; readers take the size
    from the DER header, and reading past the EF answers 6B00.
    """
    size = (len(content) // block + 1) * block
    return content + bytes([FILLER]) * (size - len(content))


def ber_tlv(tag: bytes, value: bytes) -> bytes:
    """A BER-TLV with definite length (short or 81/82 long form)."""
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n <= 0xFF:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82]) + n.to_bytes(2, "big")
    return tag + length + value


@functools.lru_cache(maxsize=64)
def _private_key(pem: bytes) -> rsa.RSAPrivateKey:
    # Loading validates the RSA key (~40 ms); a card file is reloaded often (every
    # session of a test, every bench run), so validated keys are kept per PEM.
    key = load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the card holds RSA keys only")
    return key


def jpki_applet(data: CardData) -> Applet:
    """JPKI-AP (公的個人認証AP): both the user-authentication and the signing side."""
    efs: list[EF] = [
        BinaryEF(0x000A, with_filler(data.auth_cert_der, 256)),  # 利用者証明用電子証明書
        BinaryEF(0x000B, with_filler(data.auth_ca_der, 256)),
        KeyEF(0x0017, _private_key(data.auth_key_pem), AUTH_PIN),
        PinEF(0x0018, AUTH_PIN, AUTH_PIN_RE),
        # 署名用電子証明書: name, address, birth date and sex in its SAN; the signing
        # password guards even reading it.
        BinaryEF(0x0001, with_filler(data.sign_cert_der, 256), read_pin=SIGN_PASSWORD),
        BinaryEF(0x0002, with_filler(data.sign_ca_der, 256)),
        KeyEF(0x001A, _private_key(data.sign_key_pem), SIGN_PASSWORD),
        PinEF(0x001B, SIGN_PASSWORD, SIGN_PASSWORD_RE),
        BinaryEF(0x0006, data.token_info),
        BinaryEF(0x0008, bytes.fromhex("8F8F00")),  # both certificates present
    ]
    return Applet("JPKI-AP", JPKI_AID, "files", {ef.fid: ef for ef in efs})


def _private_tag(number: int) -> bytes:
    # The text input helper AP writes private-class constructed tags in the long form
    # (FF 10 for the My Number, FF 20..FF 25 for the attributes), as the real card does.
    return bytes([0xFF, number])


def text_helper_applet(data: CardData) -> Applet:
    """券面事項入力補助AP: the My Number (EF 0001) and the 4 basic attributes (EF 0002)."""
    my_number = ber_tlv(_private_tag(0x10), data.my_number.encode("ascii"))
    holder = data.holder
    attributes = ber_tlv(
        _private_tag(0x20),
        ber_tlv(_private_tag(0x21), bytes.fromhex("010100"))  # header (fake)
        + ber_tlv(_private_tag(0x22), holder.get("name", "").encode("utf-8"))
        + ber_tlv(_private_tag(0x23), holder.get("address", "").encode("utf-8"))
        + ber_tlv(_private_tag(0x24), holder.get("birth_date", "").replace("-", "").encode())
        + ber_tlv(_private_tag(0x25), holder.get("sex", "9").encode("utf-8")),
    )
    efs: list[EF] = [
        BinaryEF(0x0001, with_filler(my_number, 32), read_pin=TEXT_PIN),
        BinaryEF(0x0002, with_filler(attributes, 32), read_pin=TEXT_PIN),
        PinEF(0x0011, TEXT_PIN, AUTH_PIN_RE),
    ]
    return Applet("text input helper AP", TEXT_HELPER_AID, "files", {ef.fid: ef for ef in efs})


def card_info(data: CardData) -> bytes:
    """Card serial, municipality and expiry as a small proprietary TLV."""
    return ber_tlv(
        b"\x66",
        ber_tlv(b"\xc1", data.card_serial.encode("ascii"))
        + ber_tlv(b"\xc2", data.municipality_code.encode("ascii"))
        + ber_tlv(b"\xc3", data.card_expiry.replace("-", "").encode("ascii")),
    )


def blocked_applets(data: CardData) -> list[Applet]:
    """The card face, 住基 and common-card applets (never ours to touch)."""
    face = BinaryEF(0x0002, with_filler(b"FAKE-CARD-FACE-IMAGE", 256), read_pin=NEVER)
    juki = BinaryEF(0x0001, with_filler(b"FAKE-JUKI-DATA", 32), read_pin=NEVER)
    # The common card AP gives its data without any PIN: exactly why a firewall must
    # keep hosts out of it.
    common = BinaryEF(0x0001, with_filler(card_info(data), 32))
    return [
        Applet("card face AP", CARD_FACE_AID, "files", {face.fid: face}),
        Applet("住基AP", JUKI_AID, "files", {juki.fid: juki}),
        Applet("common card AP", COMMON_AID, "files", {common.fid: common}),
    ]


def isd_applet(data: CardData) -> Applet:
    """The GlobalPlatform ISD, selected at power-up: GET DATA returns card data."""
    serial = data.card_serial.encode("ascii")
    # CPLC (42 bytes): fabricator/type/OS fields, the IC serial number (4 bytes) and
    # batch (2 bytes), here derived from the card serial, then dates and equipment ids.
    ic_serial = hashlib.sha256(serial).digest()[:6]
    cplc = bytes.fromhex("479051670000000000000000") + ic_serial + bytes(24)
    objects = {
        0x9F7F: ber_tlv(b"\x9f\x7f", cplc),  # CPLC
        0x0042: ber_tlv(b"\x42", data.municipality_code.encode("ascii")),  # IIN
        0x0045: ber_tlv(b"\x45", serial),  # CIN: card image number
        0x0066: card_info(data),  # card data: serial, municipality, expiry
    }
    return Applet("GlobalPlatform ISD", ISD_AID, "isd", data_objects=objects)


def build_applets(data: CardData) -> tuple[Applet, ...]:
    """All applets of the card, in the order SELECT by DF-name prefix searches them."""
    return (jpki_applet(data), text_helper_applet(data), *blocked_applets(data), isd_applet(data))


def find_by_prefix(applets: tuple[Applet, ...], prefix: bytes) -> Applet | None:
    """The first applet whose AID starts with `prefix` (the card's prefix quirk)."""
    if len(prefix) < MIN_AID_PREFIX:
        return None
    return next((a for a in applets if a.aid.startswith(prefix)), None)
