"""Pairing and the bridge's own keys: enrol once with a one-time code, keep the keys.

`python -m bridge pair PLATFORM_URL CODE` makes two key pairs, sends the public keys
with the code to the platform, and stores the private keys in files only this user can
read (0600 in a 0700 directory; `load` refuses looser permissions, as ssh does).

Two keys, not one (docs/bridge.md, "Keys"):
- the authentication key (Ed25519) signs the platform's challenge on every connect;
- the sealing key (P-256, bridge.seal) opens PINs that a browser sealed with ECDH.
One key for both would mix a signature scheme and key agreement on the same secret
(no proof that the two uses cannot help an attacker against each other), and it would
tie rotating one to rotating the other. WebCrypto needs P-256 for ECDH; Ed25519 signs
deterministically, with no nonce to get wrong.
"""

from __future__ import annotations

import ipaddress
import json
import os
import stat
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from . import seal
from .wire import b64u

CONFIG_NAME = "bridge.json"
AUTH_KEY_NAME = "auth_key.pem"
SEAL_KEY_NAME = "seal_key.pem"
PAIR_PATH = "/api/v1/bridges/pair"
WS_PATH = "/ws/bridge"


class PairingFailed(Exception):
    """The platform refused the pairing code, or could not be reached."""


class BridgeStateError(Exception):
    """The bridge's state directory is missing, incomplete or too readable."""


def default_home() -> Path:
    """Where the bridge keeps its keys: $ICHIMAI_BRIDGE_HOME or ~/.config/ichimai-bridge."""
    env = os.environ.get("ICHIMAI_BRIDGE_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ichimai-bridge"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (where plain ws/http is allowed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def platform_base(url: str) -> str:
    """Normalise the platform URL: https, or http on loopback only; no path or query."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("platform URL must be https://host[:port]")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("plain http is only allowed for a platform on this machine (loopback)")
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def origin_of(url: str) -> str:
    """The origin (scheme://host[:port]) a bridge binds its signature to."""
    return platform_base(url)


def websocket_url(url: str) -> str:
    """The platform's bridge WebSocket: wss, or ws on loopback only."""
    base = platform_base(url)
    return ("wss" if base.startswith("https") else "ws") + base[base.index(":") :] + WS_PATH


@dataclass(frozen=True)
class BridgeIdentity:
    """What a paired bridge knows: where, who it is, and its two private keys."""

    platform: str
    bridge_id: str
    terminal_id: int
    auth_key: ed25519.Ed25519PrivateKey
    seal_key: ec.EllipticCurvePrivateKey

    def sign_challenge(self, origin: str, nonce: bytes) -> bytes:
        """Sign the auth transcript for this bridge and a fresh server nonce."""
        from .wire import auth_transcript

        return self.auth_key.sign(auth_transcript(origin, self.bridge_id, nonce))

    def __repr__(self) -> str:
        return f"BridgeIdentity({self.bridge_id!r} @ {self.platform})"


def auth_public_b64u(key: ed25519.Ed25519PrivateKey) -> str:
    """The raw 32-byte Ed25519 public key, base64url."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b64u(raw)


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by this user only (0600)."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _pem(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _post_json(url: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - scheme checked by platform_base
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return json.loads(answer.read(65536))  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read(4096)).get("error", {})
            message = detail.get("message") or detail.get("code") or str(exc)
        except ValueError:
            message = str(exc)
        raise PairingFailed(f"the platform refused the pairing: {message}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PairingFailed(f"cannot reach the platform: {exc}") from None


def pair(
    platform_url: str, code: str, home: Path, *, name: str = "", timeout: float = 15.0
) -> BridgeIdentity:
    """Exchange a one-time pairing code for an enrolment and store the keys in `home`."""
    base = platform_base(platform_url)
    auth_key = ed25519.Ed25519PrivateKey.generate()
    seal_key = seal.generate_device_key()
    answer = _post_json(
        base + PAIR_PATH,
        {
            "code": code,
            "auth_public_key": auth_public_b64u(auth_key),
            "seal_public_key": seal.public_key_b64u(seal_key.public_key()),
            "name": name[:100],
        },
        timeout,
    )
    try:
        bridge_id = str(answer["bridge_id"])
        terminal_id = int(answer["terminal"]["id"])
    except (KeyError, TypeError, ValueError):
        raise PairingFailed("the platform answered without a bridge id") from None
    identity = BridgeIdentity(base, bridge_id, terminal_id, auth_key, seal_key)
    save(identity, home)
    return identity


def save(identity: BridgeIdentity, home: Path) -> None:
    """Store an identity: keys and config 0600 in a 0700 directory."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    _write_private(home / AUTH_KEY_NAME, _pem(identity.auth_key))
    _write_private(home / SEAL_KEY_NAME, _pem(identity.seal_key))
    config = {
        "platform": identity.platform,
        "bridge_id": identity.bridge_id,
        "terminal_id": identity.terminal_id,
    }
    _write_private(home / CONFIG_NAME, json.dumps(config, indent=2).encode())


def _read_private(path: Path) -> bytes:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise BridgeStateError(f"{path} is missing: pair this bridge first") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise BridgeStateError(f"{path} is readable by others: chmod 600 it (or pair again)")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise BridgeStateError(f"{path} belongs to another user")
    return path.read_bytes()


def load(home: Path) -> BridgeIdentity:
    """Load a paired bridge's identity; BridgeStateError if missing or too readable."""
    try:
        config = json.loads(_read_private(home / CONFIG_NAME))
        auth = serialization.load_pem_private_key(_read_private(home / AUTH_KEY_NAME), None)
        sealer = serialization.load_pem_private_key(_read_private(home / SEAL_KEY_NAME), None)
        if not isinstance(auth, ed25519.Ed25519PrivateKey):
            raise BridgeStateError("auth key is not Ed25519")
        if not isinstance(sealer, ec.EllipticCurvePrivateKey):
            raise BridgeStateError("seal key is not P-256")
        return BridgeIdentity(
            platform_base(config["platform"]),
            str(config["bridge_id"]),
            int(config["terminal_id"]),
            auth,
            sealer,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BridgeStateError(f"bridge state in {home} is damaged: {exc}") from None
