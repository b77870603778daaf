"""Sealed secrets (library passwords), Python side: padding, purposes, bindings, tampering."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bridge.seal import (
    SECRET_LABEL,
    SECRET_PADDED,
    SealContext,
    SealError,
    SecretContext,
    b64u_decode,
    b64u_encode,
    generate_device_key,
    open_sealed_pin,
    open_sealed_secret,
    public_key_b64u,
    seal_pin,
    seal_secret,
    sip2_target,
)

TARGET = sip2_target("ILS.example.jp", 6001, True)
LOGIN = SecretContext("bridge-7f3a", "sip2-login", TARGET)
PATRON = SecretContext("bridge-7f3a", "sip2-patron", "cmd-0001")


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return generate_device_key()


def test_target() -> None:
    assert TARGET == "tls://ils.example.jp:6001"
    assert sip2_target("10.0.0.5", 6001, False) == "tcp://10.0.0.5:6001"


@pytest.mark.parametrize(
    "secret", ["x", "パスワード", "a" * 63, "p|a\\s s\u00e9", "ﾊﾟｽﾜｰﾄﾞ1", "😀" * 15]
)
def test_round_trip(key: ec.EllipticCurvePrivateKey, secret: str) -> None:
    envelope = seal_secret(key.public_key(), secret, LOGIN)
    assert set(envelope) == {"v", "epk", "salt", "iv", "ct"} and envelope["v"] == 1
    assert open_sealed_secret(key, envelope, LOGIN) == secret
    assert open_sealed_secret(key, envelope, LOGIN) == secret  # opening twice is fine


def test_the_length_does_not_show(key: ec.EllipticCurvePrivateKey) -> None:
    sizes = {
        len(b64u_decode(seal_secret(key.public_key(), s, PATRON)["ct"]))
        for s in ("1", "12345678", "a" * 63, "図書館")
    }
    assert sizes == {SECRET_PADDED + 16}


@pytest.mark.parametrize("secret", ["", "a" * 64, "あ" * 22])
def test_bounds(key: ec.EllipticCurvePrivateKey, secret: str) -> None:
    with pytest.raises(SealError):
        seal_secret(key.public_key(), secret, LOGIN)


@pytest.mark.parametrize(
    "other",
    [
        SecretContext("bridge-other", "sip2-login", TARGET),
        SecretContext("bridge-7f3a", "sip2-terminal", TARGET),
        SecretContext("bridge-7f3a", "sip2-patron", TARGET),
        SecretContext("bridge-7f3a", "sip2-login", sip2_target("ils.example.jp", 6001, False)),
        SecretContext("bridge-7f3a", "sip2-login", sip2_target("evil.example.jp", 6001, True)),
        SecretContext("bridge-7f3a", "sip2-login", sip2_target("ils.example.jp", 6002, True)),
    ],
    ids=["other-bridge", "terminal", "patron", "plain-tcp", "other-host", "other-port"],
)
def test_bound_to_its_context(key: ec.EllipticCurvePrivateKey, other: SecretContext) -> None:
    envelope = seal_secret(key.public_key(), "s3cret", LOGIN)
    with pytest.raises(SealError):
        open_sealed_secret(key, envelope, other)


def test_patron_password_bound_to_the_command(key: ec.EllipticCurvePrivateKey) -> None:
    envelope = seal_secret(key.public_key(), "1234", PATRON)
    with pytest.raises(SealError):
        open_sealed_secret(key, envelope, SecretContext("bridge-7f3a", "sip2-patron", "cmd-0002"))
    with pytest.raises(SealError):
        open_sealed_secret(generate_device_key(), envelope, PATRON)


def test_a_pin_and_a_secret_never_open_as_each_other(key: ec.EllipticCurvePrivateKey) -> None:
    pin_ctx = SealContext("bridge-7f3a", "cmd-0001")
    with pytest.raises(SealError):
        open_sealed_secret(key, seal_pin(key.public_key(), "1234", pin_ctx), PATRON)
    with pytest.raises(SealError):
        open_sealed_pin(key, seal_secret(key.public_key(), "1234", PATRON), pin_ctx)


def test_unknown_purpose_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(SealError):
        seal_secret(key.public_key(), "x", SecretContext("b", "pin", "c"))
    with pytest.raises(SealError):
        SecretContext("b", "sip2-login", "").encode()


def test_context_encoding() -> None:
    assert SecretContext("ab", "sip2-patron", "c").encode() == (
        b"\x00\x02ab\x00\x0bsip2-patron\x00\x01c"
    )


def _raw_envelope(key: ec.EllipticCurvePrivateKey, plain: bytes, ctx: SecretContext) -> Any:
    eph = ec.generate_private_key(ec.SECP256R1())
    info = SECRET_LABEL + ctx.encode()
    secret = eph.exchange(ec.ECDH(), key.public_key())
    aes = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"s" * 16, info=info).derive(secret)
    return {
        "v": 1,
        "epk": public_key_b64u(eph.public_key()),
        "salt": b64u_encode(b"s" * 16),
        "iv": b64u_encode(b"i" * 12),
        "ct": b64u_encode(AESGCM(aes).encrypt(b"i" * 12, plain, info)),
    }


@pytest.mark.parametrize(
    "plain",
    [
        bytes(64),  # length 0
        bytes([64]) + b"a" * 63,  # length beyond the maximum
        bytes([3]) + b"abc" + b"\x01" + bytes(59),  # padding not zero
        bytes([2]) + b"\xff\xfe" + bytes(61),  # not UTF-8
        bytes([3]) + b"abc" + bytes(59),  # 63 bytes: wrong size
    ],
    ids=["empty", "too-long", "dirty-padding", "not-utf8", "short"],
)
def test_the_opener_checks_the_padding(key: ec.EllipticCurvePrivateKey, plain: bytes) -> None:
    """Anyone with the bridge's public key can seal anything: the opener checks it all."""
    with pytest.raises(SealError):
        open_sealed_secret(key, _raw_envelope(key, plain, PATRON), PATRON)


def test_tampering_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    envelope = seal_secret(key.public_key(), "s3cret", LOGIN)
    raw = bytearray(b64u_decode(envelope["ct"]))
    raw[5] ^= 1
    with pytest.raises(SealError):
        open_sealed_secret(key, {**envelope, "ct": b64u_encode(bytes(raw))}, LOGIN)
