"""The bridge's identity on disk, and the platform URLs it accepts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from bridge import seal, wire
from bridge.pairing import (
    BridgeIdentity,
    BridgeStateError,
    load,
    platform_base,
    save,
    websocket_url,
)


def make_identity() -> BridgeIdentity:
    return BridgeIdentity(
        "https://ichimai.example.jp",
        "brg_test",
        4,
        ed25519.Ed25519PrivateKey.generate(),
        seal.generate_device_key(),
    )


def test_keys_are_readable_by_this_user_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    identity = make_identity()
    save(identity, home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("bridge.json", "auth_key.pem", "seal_key.pem"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
    loaded = load(home)
    assert loaded.bridge_id == "brg_test" and loaded.terminal_id == 4
    nonce = os.urandom(32)
    signature = loaded.sign_challenge("https://ichimai.example.jp", nonce)
    identity.auth_key.public_key().verify(
        signature, wire.auth_transcript("https://ichimai.example.jp", "brg_test", nonce)
    )
    assert seal.public_key_b64u(loaded.seal_key.public_key()) == seal.public_key_b64u(
        identity.seal_key.public_key()
    )
    assert "PRIVATE" not in repr(loaded)


def test_load_refuses_keys_others_can_read(tmp_path: Path) -> None:
    save(make_identity(), tmp_path)
    os.chmod(tmp_path / "auth_key.pem", 0o640)
    with pytest.raises(BridgeStateError, match="readable by others"):
        load(tmp_path)


def test_load_says_to_pair_first(tmp_path: Path) -> None:
    with pytest.raises(BridgeStateError, match="pair this bridge first"):
        load(tmp_path)


def test_load_refuses_damaged_state(tmp_path: Path) -> None:
    save(make_identity(), tmp_path)
    (tmp_path / "bridge.json").write_text("{}")
    with pytest.raises(BridgeStateError, match="damaged"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("url", "base", "ws"),
    [
        (
            "https://ichimai.example.jp",
            "https://ichimai.example.jp",
            "wss://ichimai.example.jp/ws/bridge",
        ),
        (
            "https://ichimai.example.jp:8443/x?y",
            "https://ichimai.example.jp:8443",
            "wss://ichimai.example.jp:8443/ws/bridge",
        ),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000", "ws://127.0.0.1:5000/ws/bridge"),
        ("http://localhost:5000/", "http://localhost:5000", "ws://localhost:5000/ws/bridge"),
        ("http://[::1]:5000", "http://[::1]:5000", "ws://[::1]:5000/ws/bridge"),
    ],
)
def test_platform_urls(url: str, base: str, ws: str) -> None:
    assert platform_base(url) == base
    assert websocket_url(url) == ws


@pytest.mark.parametrize(
    "url",
    ["http://ichimai.example.jp", "http://192.168.1.10:5000", "ftp://x", "ichimai.example.jp"],
)
def test_plain_http_only_on_loopback(url: str) -> None:
    with pytest.raises(ValueError):
        platform_base(url)
