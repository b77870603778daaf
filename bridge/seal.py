"""The sealed PIN: the browser encrypts the PIN to the bridge; the platform sees ciphertext.

Scheme (version 1), mirrored by static/js/seal.js with WebCrypto only:

- the bridge holds a P-256 key pair (its sealing key); its public key travels as the
  raw uncompressed point (65 bytes, `04 || X || Y`) in base64url without padding;
- the sealer makes an ephemeral P-256 key, ECDH with the bridge's public key (the
  shared secret is the 32-byte X coordinate, as in WebCrypto `deriveBits`);
- key = HKDF-SHA256(secret, salt = 16 random bytes, info = LABEL || context), 32 bytes;
- AES-256-GCM, 12-byte random IV, AAD = LABEL || context, plaintext = the 4 ASCII digits;
- context = len16(bridge id) || bridge id || len16(command id) || command id (UTF-8),
  so a sealed PIN opens only for the one bridge and the one command it was sealed for;
- envelope = JSON `{"v": 1, "epk": ..., "salt": ..., "iv": ..., "ct": ...}` (base64url).

`open_sealed_pin` raises `SealError` on anything that is not exactly such an envelope
for this key and context; it never says which check failed beyond a short reason.

Sealed secrets (the library's passwords for SIP2), the same scheme and envelope with:

- their own label, `SECRET_LABEL` (b"ichimai-secret-seal-v1"), so a sealed PIN never
  opens as a secret nor a secret as a PIN;
- context = len16(bridge id) || bridge id || len16(purpose) || purpose || len16(binding)
  || binding (`SecretContext`): the purpose says what the secret is for
  (`sip2-login`, `sip2-terminal`: the connection's passwords, bound to the connection
  target `tls://host:port` or `tcp://host:port`, so a stored envelope cannot be sent to
  another host or down to plain TCP; `sip2-patron`: a patron's password for one
  exchange, bound to that command id), so one kind never opens as another;
- plaintext = one length byte, the secret (1-63 bytes of UTF-8), zero padding to
  `SECRET_PADDED` (64) bytes: every ciphertext is 80 bytes, whatever the secret's length.

Uses `cryptography` (the bridge may; the pure card modules may not).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 1
LABEL = b"ichimai-pin-seal-v1"
SECRET_LABEL = b"ichimai-secret-seal-v1"
SECRET_MAX_BYTES = 63
SECRET_PADDED = 1 + SECRET_MAX_BYTES
SECRET_PURPOSES = frozenset({"sip2-login", "sip2-terminal", "sip2-patron"})
SALT_BYTES = 16
IV_BYTES = 12
TAG_BYTES = 16
PIN_LENGTH = 4
POINT_BYTES = 65
MAX_ID_BYTES = 255
# An envelope is ~250 bytes; anything much larger is not ours (bounded before parsing).
MAX_ENVELOPE_BYTES = 1024
ENVELOPE_KEYS = frozenset({"v", "epk", "salt", "iv", "ct"})
_B64U = re.compile(r"[A-Za-z0-9_-]*")


class SealError(ValueError):
    """A sealed PIN could not be opened: tampered, wrong key, wrong context or malformed."""


@dataclass(frozen=True, slots=True)
class SealContext:
    """What a sealed PIN is bound to: the bridge that opens it and the one command."""

    bridge_id: str
    command_id: str

    def encode(self) -> bytes:
        """Length-prefixed UTF-8 of both ids (unambiguous, same bytes as seal.js)."""
        out = bytearray()
        for part in (self.bridge_id, self.command_id):
            raw = part.encode("utf-8")
            if not 1 <= len(raw) <= MAX_ID_BYTES:
                raise SealError("context ids must be 1-255 bytes of UTF-8")
            out += len(raw).to_bytes(2, "big") + raw
        return bytes(out)


@dataclass(frozen=True, slots=True)
class SecretContext:
    """What a sealed secret is bound to: the bridge, the purpose, and the purpose's
    binding (the connection target for the SIP2 passwords, the command id for a
    patron's password)."""

    bridge_id: str
    purpose: str
    binding: str

    def encode(self) -> bytes:
        """Length-prefixed UTF-8 of the three parts (same bytes as seal.js)."""
        if self.purpose not in SECRET_PURPOSES:
            raise SealError("unknown purpose")
        out = bytearray()
        for part in (self.bridge_id, self.purpose, self.binding):
            raw = part.encode("utf-8")
            if not 1 <= len(raw) <= MAX_ID_BYTES:
                raise SealError("context parts must be 1-255 bytes of UTF-8")
            out += len(raw).to_bytes(2, "big") + raw
        return bytes(out)


def sip2_target(host: str, port: int, tls: bool) -> str:
    """The binding of a SIP2 connection's sealed passwords: `tls://host:port` or
    `tcp://host:port` (the host as configured, lower case)."""
    return f"{'tls' if tls else 'tcp'}://{host.lower()}:{port}"


def b64u_encode(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Strict base64url without padding; raise SealError otherwise."""
    if not isinstance(text, str) or not _B64U.fullmatch(text) or len(text) % 4 == 1:
        raise SealError("bad base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64u_encode(data) != text:  # non-canonical trailing bits
        raise SealError("bad base64url")
    return data


def generate_device_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 sealing key for a bridge."""
    return ec.generate_private_key(ec.SECP256R1())


def public_key_b64u(public_key: ec.EllipticCurvePublicKey) -> str:
    """The raw uncompressed point of a P-256 public key, base64url (what seal.js takes)."""
    raw = public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64u_encode(raw)


def public_key_spki(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The public key as DER SubjectPublicKeyInfo."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key_b64u(text: str) -> ec.EllipticCurvePublicKey:
    """Parse a raw uncompressed P-256 point in base64url; the point is validated."""
    raw = b64u_decode(text)
    if len(raw) != POINT_BYTES or raw[0] != 0x04:
        raise SealError("not an uncompressed P-256 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise SealError("point not on P-256") from None


def _aes_key(secret: bytes, salt: bytes, info: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(secret)
    return AESGCM(key)


def seal_pin(
    public_key: ec.EllipticCurvePublicKey | str, pin: str, context: SealContext
) -> dict[str, Any]:
    """Seal a PIN to a bridge's public key for one context (the Python twin of sealPin)."""
    if isinstance(public_key, str):
        public_key = load_public_key_b64u(public_key)
    if len(pin) != PIN_LENGTH or not all("0" <= ch <= "9" for ch in pin):
        raise SealError("PIN must be 4 ASCII digits")
    return _seal(public_key, pin.encode("ascii"), LABEL + context.encode())


def _seal(public_key: ec.EllipticCurvePublicKey, plain: bytes, info: bytes) -> dict[str, Any]:
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    secret = ephemeral.exchange(ec.ECDH(), public_key)
    salt, iv = os.urandom(SALT_BYTES), os.urandom(IV_BYTES)
    ct = _aes_key(secret, salt, info).encrypt(iv, plain, info)
    return {
        "v": VERSION,
        "epk": public_key_b64u(ephemeral.public_key()),
        "salt": b64u_encode(salt),
        "iv": b64u_encode(iv),
        "ct": b64u_encode(ct),
    }


def _envelope_fields(envelope: Mapping[str, Any] | str | bytes) -> Mapping[str, Any]:
    if isinstance(envelope, str | bytes):
        if len(envelope) > MAX_ENVELOPE_BYTES:
            raise SealError("envelope too large")
        try:
            envelope = json.loads(envelope)
        except (ValueError, UnicodeDecodeError):
            raise SealError("envelope is not JSON") from None
    if not isinstance(envelope, Mapping) or set(envelope) != ENVELOPE_KEYS:
        raise SealError("envelope must have exactly v, epk, salt, iv, ct")
    v = envelope["v"]
    if type(v) is not int or v != VERSION:
        raise SealError("unknown envelope version")
    return envelope


def open_sealed_pin(
    private_key: ec.EllipticCurvePrivateKey,
    envelope: Mapping[str, Any] | str | bytes,
    context: SealContext,
) -> str:
    """Open a sealed PIN for this bridge key and context; raise SealError on any tampering."""
    plain = _open(private_key, envelope, LABEL + context.encode(), PIN_LENGTH, "PIN")
    if len(plain) != PIN_LENGTH or not all(0x30 <= b <= 0x39 for b in plain):
        raise SealError("sealed content is not 4 ASCII digits")
    return plain.decode("ascii")


def _open(
    private_key: ec.EllipticCurvePrivateKey,
    envelope: Mapping[str, Any] | str | bytes,
    info: bytes,
    plain_length: int,
    what: str,
) -> bytes:
    fields = _envelope_fields(envelope)
    epk = load_public_key_b64u(fields["epk"])
    salt, iv, ct = (b64u_decode(fields[k]) for k in ("salt", "iv", "ct"))
    if len(salt) != SALT_BYTES or len(iv) != IV_BYTES or len(ct) != plain_length + TAG_BYTES:
        raise SealError("envelope field has the wrong length")
    secret = private_key.exchange(ec.ECDH(), epk)
    try:
        return _aes_key(secret, salt, info).decrypt(iv, ct, info)
    except InvalidTag:
        raise SealError(
            f"sealed {what} does not open (tampered, or wrong key or context)"
        ) from None


def seal_secret(
    public_key: ec.EllipticCurvePublicKey | str, secret: str, context: SecretContext
) -> dict[str, Any]:
    """Seal a short secret (1-63 bytes of UTF-8) for one context (the twin of sealSecret)."""
    if isinstance(public_key, str):
        public_key = load_public_key_b64u(public_key)
    if not isinstance(secret, str):
        raise SealError("the secret must be a string")
    raw = secret.encode("utf-8")
    if not 1 <= len(raw) <= SECRET_MAX_BYTES:
        raise SealError(f"the secret must be 1-{SECRET_MAX_BYTES} bytes of UTF-8")
    padded = bytes([len(raw)]) + raw + bytes(SECRET_PADDED - 1 - len(raw))
    return _seal(public_key, padded, SECRET_LABEL + context.encode())


def open_sealed_secret(
    private_key: ec.EllipticCurvePrivateKey,
    envelope: Mapping[str, Any] | str | bytes,
    context: SecretContext,
) -> str:
    """Open a sealed secret for this bridge key and context; SealError on any tampering."""
    plain = _open(private_key, envelope, SECRET_LABEL + context.encode(), SECRET_PADDED, "secret")
    size = plain[0]
    if not 1 <= size <= SECRET_MAX_BYTES or any(plain[1 + size :]):
        raise SealError("sealed content is not a padded secret")
    try:
        return plain[1 : 1 + size].decode("utf-8")
    except UnicodeDecodeError:
        raise SealError("sealed content is not UTF-8") from None


def check_secret_envelope(envelope: Mapping[str, Any] | str | bytes) -> None:
    """Check that this is a sealed secret's envelope (shape, lengths, a point on the curve)
    without opening it: what the platform can check of what it stores and relays."""
    fields = _envelope_fields(envelope)
    load_public_key_b64u(fields["epk"])
    salt, iv, ct = (b64u_decode(fields[k]) for k in ("salt", "iv", "ct"))
    if len(salt) != SALT_BYTES or len(iv) != IV_BYTES or len(ct) != SECRET_PADDED + TAG_BYTES:
        raise SealError("envelope field has the wrong length")
