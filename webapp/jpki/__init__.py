"""JPKI verification on the platform side (layer 3): trust anchors, chain, CRL, nonces.

Domain layer: no Flask, no I/O beyond fetching CRLs (and Redis for shared nonces). The
web layer builds a `Verifier` (see `factory.build_verifier`), asks its `challenges` for a
`Challenge`, has the card sign `verifier.digest_info_to_sign(challenge)`, then calls
`verifier.verify_authentication(cert_der, signature, challenge.nonce)` or, for PIN-less
identification, `verifier.identify(cert_der)`. Every refusal is a `VerificationError`
with a `Reason`. Challenges live in an `InMemoryNonceStore` (one process) or, when the
bus is Redis, a `redis_nonces.RedisNonceStore` shared by every worker.
"""

from __future__ import annotations

from .cardkey import card_key
from .challenge import (
    Challenge,
    ChallengeRecord,
    ChallengeService,
    InMemoryNonceStore,
    NonceStore,
    signed_data,
)
from .crl import CrlError, RevocationList, load_crl
from .crl_sources import (
    CrlFetchError,
    CrlSource,
    DistributionPointCrlSource,
    FileCrlSource,
    UrlCrlSource,
    crl_source_from_spec,
)
from .errors import NonceStoreFull, NonceStoreUnavailable, Reason, VerificationError
from .factory import build_verifier, nonce_store_from_settings
from .revocation import RevocationChecker
from .trust import TrustAnchor, TrustStore
from .verifier import VerifiedCard, Verifier

__all__ = [
    "Challenge",
    "ChallengeRecord",
    "ChallengeService",
    "CrlError",
    "CrlFetchError",
    "CrlSource",
    "DistributionPointCrlSource",
    "FileCrlSource",
    "InMemoryNonceStore",
    "NonceStore",
    "NonceStoreFull",
    "NonceStoreUnavailable",
    "Reason",
    "RevocationChecker",
    "RevocationList",
    "TrustAnchor",
    "TrustStore",
    "UrlCrlSource",
    "VerificationError",
    "VerifiedCard",
    "Verifier",
    "build_verifier",
    "card_key",
    "crl_source_from_spec",
    "load_crl",
    "nonce_store_from_settings",
    "signed_data",
]
