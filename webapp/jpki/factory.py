"""Build the JPKI verification services from settings (a plain mapping, no Flask).

Settings read (see webapp/config.py): PLATFORM_ORIGIN, CARD_KEY_SECRET, DEMO_MODE,
DEMO_JLIS_DIR, JPKI_TRUST_DIR, JPKI_CRL_SOURCES, BUS_URL (a redis:// bus means several
workers: challenges then live in Redis, else in this process's memory), NONCE_MAX_ENTRIES
(the store's bound on live challenges, default 100 000). A CRL source spec is "dp"
(follow the certificate's distribution point), an http(s) URL or a file path, optionally
prefixed with "<anchor sha256 hex>=" to apply to one anchor only (the 2015 and 2023 J-LIS
roots each publish their own CRL). With no spec, distribution points are followed.

In demo mode the demo J-LIS's own CRL (DEMO_JLIS_DIR/auth.crl) applies to the demo
anchor unless a spec names that anchor: ICHIMAI_DEMO=1 and ICHIMAI_DEMO_JLIS_DIR are all a
demo needs (the demo certificates' distribution point is a URL nobody serves).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .challenge import ChallengeService, InMemoryNonceStore, NonceStore
from .crl_sources import CrlSource, crl_source_from_spec
from .revocation import RevocationChecker
from .trust import ROOTS_DIR, TrustStore
from .verifier import Verifier

DEMO_AUTH_CA_FILE = "auth_ca.pem"  # written by bridge.vcard.jlis.DemoJLIS
DEMO_AUTH_CRL_FILE = "auth.crl"  # and its CRL, re-published on every revocation
REDIS_SCHEMES = ("redis", "rediss", "unix")  # the schemes for which make_bus picks RedisBus


def nonce_store_from_settings(settings: Mapping[str, Any]) -> NonceStore:
    """Redis when the bus is Redis (any worker may answer a PIN prompt), else memory."""
    url = str(settings.get("BUS_URL") or "")
    # Live challenges (taken ones leave at once): per process in memory, for all in Redis.
    bound = int(settings.get("NONCE_MAX_ENTRIES") or 100_000)
    if urlsplit(url).scheme in REDIS_SCHEMES:
        from .redis_nonces import RedisNonceStore  # redis only where it is configured

        prefix = settings.get("BUS_PREFIX")  # the deployment's namespace, when set
        if prefix:
            return RedisNonceStore.from_url(url, max_entries=bound, prefix=f"{prefix}nonce:")
        return RedisNonceStore.from_url(url, max_entries=bound)
    return InMemoryNonceStore(max_entries=bound)


def trust_from_settings(settings: Mapping[str, Any]) -> TrustStore:
    """Production roots from JPKI_TRUST_DIR; the demo J-LIS auth CA only in DEMO_MODE."""
    demo_mode = bool(settings.get("DEMO_MODE"))
    demo_ca: list[bytes] = []
    demo_dir = settings.get("DEMO_JLIS_DIR") or ""
    if demo_mode and demo_dir:
        # Only the user-authentication CA: the signing CA must never vouch for a login.
        pem = (Path(demo_dir) / DEMO_AUTH_CA_FILE).read_bytes()
        demo_ca.append(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER))
    roots = Path(settings.get("JPKI_TRUST_DIR") or ROOTS_DIR)
    return TrustStore.from_directory(roots, demo_mode=demo_mode, demo_ca=demo_ca)


def revocation_from_specs(specs: list[str] | tuple[str, ...]) -> RevocationChecker:
    """A RevocationChecker from CRL source specs ("dp", URL, path, "<fp>=<source>")."""
    default: CrlSource | None = None
    by_anchor: dict[str, CrlSource] = {}
    for spec in specs:
        fingerprint, sep, rest = spec.partition("=")
        if sep and len(fingerprint) == 64 and all(c in "0123456789abcdef" for c in fingerprint):
            by_anchor[fingerprint] = crl_source_from_spec(rest)
        elif default is None:
            default = crl_source_from_spec(spec)
        else:
            raise ValueError("only one CRL source may apply to every anchor")
    return RevocationChecker(default_source=default, sources_by_anchor=by_anchor)


def card_key_secret(settings: Mapping[str, Any], trust: TrustStore) -> bytes:
    """CARD_KEY_SECRET as bytes (>= 32); in demo mode without one, derived from the demo
    anchors so that demo bindings survive a restart (never in production)."""
    value = settings.get("CARD_KEY_SECRET") or ""
    secret = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if secret:
        return secret
    demo = sorted(a.fingerprint for a in trust.anchors if a.demo)
    if settings.get("DEMO_MODE") and demo:
        return hashlib.sha256(("ichimai demo card key|" + "|".join(demo)).encode()).digest()
    raise ValueError("CARD_KEY_SECRET must be set (32 bytes or more)")


def crl_specs(settings: Mapping[str, Any], trust: TrustStore) -> list[str]:
    """JPKI_CRL_SOURCES, plus the demo J-LIS's CRL for its anchor in demo mode."""
    specs = list(settings.get("JPKI_CRL_SOURCES") or [])
    demo_dir = settings.get("DEMO_JLIS_DIR") or ""
    if not settings.get("DEMO_MODE") or not demo_dir:
        return specs
    pinned = {s.partition("=")[0] for s in specs}
    for anchor in trust.anchors:
        if anchor.demo and anchor.fingerprint not in pinned:
            specs.append(f"{anchor.fingerprint}={Path(demo_dir) / DEMO_AUTH_CRL_FILE}")
    return specs


def build_verifier(settings: Mapping[str, Any], *, store: NonceStore | None = None) -> Verifier:
    """The Verifier (with its challenge service) a deployment's settings describe."""
    trust = trust_from_settings(settings)
    return Verifier(
        trust=trust,
        revocation=revocation_from_specs(crl_specs(settings, trust)),
        challenges=ChallengeService(
            store if store is not None else nonce_store_from_settings(settings)
        ),
        origin=str(settings.get("PLATFORM_ORIGIN") or ""),
        card_key_secret=card_key_secret(settings, trust),
    )
