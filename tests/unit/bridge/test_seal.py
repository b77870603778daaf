"""The sealed PIN, Python side: round trip, binding to the context, tampering refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bridge.seal import (
    LABEL,
    MAX_ENVELOPE_BYTES,
    SealContext,
    SealError,
    b64u_decode,
    b64u_encode,
    generate_device_key,
    load_public_key_b64u,
    open_sealed_pin,
    public_key_b64u,
    public_key_spki,
    seal_pin,
)

CTX = SealContext("bridge-7f3a", "cmd-0001")


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return generate_device_key()


def test_round_trip(key: ec.EllipticCurvePrivateKey) -> None:
    envelope = seal_pin(key.public_key(), "0427", CTX)
    assert set(envelope) == {"v", "epk", "salt", "iv", "ct"}
    assert envelope["v"] == 1
    assert open_sealed_pin(key, envelope, CTX) == "0427"
    assert open_sealed_pin(key, json.dumps(envelope), CTX) == "0427"
    assert open_sealed_pin(key, json.dumps(envelope).encode(), CTX) == "0427"


def test_seal_with_the_b64u_public_key(key: ec.EllipticCurvePrivateKey) -> None:
    envelope = seal_pin(public_key_b64u(key.public_key()), "9999", CTX)
    assert open_sealed_pin(key, envelope, CTX) == "9999"


def test_every_seal_is_fresh(key: ec.EllipticCurvePrivateKey) -> None:
    a, b = seal_pin(key.public_key(), "1234", CTX), seal_pin(key.public_key(), "1234", CTX)
    for field in ("epk", "salt", "iv", "ct"):
        assert a[field] != b[field]


def test_public_key_forms(key: ec.EllipticCurvePrivateKey) -> None:
    raw = b64u_decode(public_key_b64u(key.public_key()))
    assert len(raw) == 65 and raw[0] == 4
    spki = public_key_spki(key.public_key())
    loaded = serialization.load_der_public_key(spki)
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert public_key_b64u(loaded) == public_key_b64u(key.public_key())
    assert public_key_b64u(load_public_key_b64u(public_key_b64u(loaded))) == b64u_encode(raw)


@pytest.mark.parametrize(
    "context",
    [
        SealContext("bridge-other", "cmd-0001"),  # relayed to another bridge
        SealContext("bridge-7f3a", "cmd-0002"),  # replayed in another command
        SealContext("bridge-7f3acmd", "-0001"),  # same concatenation, other split
        SealContext("bridge-7f3", "acmd-0001"),
    ],
)
def test_other_context_is_refused(key: ec.EllipticCurvePrivateKey, context: SealContext) -> None:
    envelope = seal_pin(key.public_key(), "1234", CTX)
    with pytest.raises(SealError):
        open_sealed_pin(key, envelope, context)


def test_other_bridge_key_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    envelope = seal_pin(key.public_key(), "1234", CTX)
    with pytest.raises(SealError):
        open_sealed_pin(generate_device_key(), envelope, CTX)


def flip(text: str, index: int = 0) -> str:
    raw = bytearray(b64u_decode(text))
    raw[index] ^= 0x01
    return b64u_encode(bytes(raw))


TAMPERS: dict[str, Any] = {
    "ct bit": lambda e: {**e, "ct": flip(e["ct"])},
    "tag bit": lambda e: {**e, "ct": flip(e["ct"], -1)},
    "iv bit": lambda e: {**e, "iv": flip(e["iv"])},
    "salt bit": lambda e: {**e, "salt": flip(e["salt"])},
    "epk other point": lambda e: {**e, "epk": public_key_b64u(generate_device_key().public_key())},
    "epk off curve": lambda e: {**e, "epk": flip(e["epk"], 64)},
    "epk compressed": lambda e: {**e, "epk": b64u_encode(b"\x02" + b64u_decode(e["epk"])[1:33])},
    "ct truncated": lambda e: {**e, "ct": b64u_encode(b64u_decode(e["ct"])[:-1])},
    "ct longer": lambda e: {**e, "ct": b64u_encode(b64u_decode(e["ct"]) + b"\x00")},
    "iv short": lambda e: {**e, "iv": b64u_encode(b64u_decode(e["iv"])[:8])},
    "salt short": lambda e: {**e, "salt": b64u_encode(b64u_decode(e["salt"])[:8])},
    "version 2": lambda e: {**e, "v": 2},
    "version true": lambda e: {**e, "v": True},
    "version string": lambda e: {**e, "v": "1"},
    "extra field": lambda e: {**e, "aad": "x"},
    "missing field": lambda e: {k: v for k, v in e.items() if k != "iv"},
    "padded b64": lambda e: {**e, "ct": e["ct"] + "=="},
    "standard b64": lambda e: {**e, "ct": base64.b64encode(b64u_decode(e["ct"])).decode()},
    "non-string field": lambda e: {**e, "ct": 5},
    "not an object": lambda e: [e],
    "not JSON": lambda e: "{not json",
    "too large": lambda e: json.dumps({**e, "pad": "x" * MAX_ENVELOPE_BYTES}),
}


@pytest.mark.parametrize("tamper", list(TAMPERS.values()), ids=list(TAMPERS))
def test_tampering_is_refused(key: ec.EllipticCurvePrivateKey, tamper: Any) -> None:
    envelope = seal_pin(key.public_key(), "1234", CTX)
    with pytest.raises(SealError):
        open_sealed_pin(key, tamper(envelope), CTX)


def test_content_must_be_four_ascii_digits(key: ec.EllipticCurvePrivateKey) -> None:
    """A sealer with the bridge's public key can seal anything: the opener checks it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    for content in (b"12345", b"123", b"12a4", "١٢٣٤".encode()[:4], b"12\x004"):
        eph = ec.generate_private_key(ec.SECP256R1())
        info = LABEL + CTX.encode()
        secret = eph.exchange(ec.ECDH(), key.public_key())
        aes = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"s" * 16, info=info).derive(secret)
        ct = AESGCM(aes).encrypt(b"i" * 12, content, info)
        envelope = {
            "v": 1,
            "epk": public_key_b64u(eph.public_key()),
            "salt": b64u_encode(b"s" * 16),
            "iv": b64u_encode(b"i" * 12),
            "ct": b64u_encode(ct),
        }
        with pytest.raises(SealError):
            open_sealed_pin(key, envelope, CTX)


@pytest.mark.parametrize("pin", ["123", "12345", "12a4", "１２３４", ""])
def test_seal_pin_checks_the_pin(key: ec.EllipticCurvePrivateKey, pin: str) -> None:
    with pytest.raises(SealError):
        seal_pin(key.public_key(), pin, CTX)


@pytest.mark.parametrize(
    "context", [SealContext("", "c"), SealContext("b", ""), SealContext("b" * 256, "c")]
)
def test_context_ids_bounded(key: ec.EllipticCurvePrivateKey, context: SealContext) -> None:
    with pytest.raises(SealError):
        seal_pin(key.public_key(), "1234", context)


def test_context_encoding_is_length_prefixed() -> None:
    assert SealContext("ab", "c").encode() == b"\x00\x02ab\x00\x01c"
    assert SealContext("橋", "c").encode() == b"\x00\x03" + "橋".encode() + b"\x00\x01c"


@pytest.mark.parametrize("text", ["a=", "a", "ab+c", "ab/c", "abc=", "YR", 5])
def test_b64u_is_strict(text: Any) -> None:
    with pytest.raises(SealError):
        b64u_decode(text)
