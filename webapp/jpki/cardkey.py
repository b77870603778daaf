"""The keyed hash that stands for a card at rest (rule 3: no card identifiers in clear).

`card_key = HMAC-SHA256(secret, issuer Name DER || serial INTEGER content)`. The issuer
Name TLV is self-delimiting, so the concatenation is unambiguous; both parts are the raw
bytes as signed in the certificate, so the key does not depend on a library's
re-encoding. Certificate serials are legally sensitive (jpki-card.md): only this keyed
hash is ever stored. A renewed certificate has a new serial and so a new card_key;
re-linking uses J-LIS's old-to-new linkage data (out of scope here).
"""

from __future__ import annotations

import hmac

MIN_SECRET_BYTES = 32


def check_secret(secret: bytes) -> bytes:
    """Return `secret` if it is bytes of at least 32; raise ValueError otherwise."""
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the card key secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def card_key(secret: bytes, issuer_der: bytes, serial_bytes: bytes) -> bytes:
    """HMAC-SHA256(secret, issuer DER || serial bytes): 32 bytes, stable per card."""
    # hmac.digest is the one-shot C path (no HMAC object).
    return hmac.digest(check_secret(secret), issuer_der + serial_bytes, "sha256")
