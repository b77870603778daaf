"""Why a card was refused: one typed error per reason, each with an enum code.

A caller switches on `error.reason` (e.g. to pick the message the citizen sees) and may
look at `retryable`: CRL_UNAVAILABLE and NONCE_STORE_UNAVAILABLE are our side's trouble
(retry later); every other reason is about what the client presented and will not change
on a retry.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """What went wrong, in terms a caller can act on."""

    MALFORMED_CERTIFICATE = "malformed_certificate"
    WRONG_KEY_TYPE = "wrong_key_type"
    UNTRUSTED_CHAIN = "untrusted_chain"
    NOT_END_ENTITY = "not_end_entity"
    ANCHOR_NOT_VALID = "anchor_not_valid"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"
    CRL_UNAVAILABLE = "crl_unavailable"
    BAD_SIGNATURE = "bad_signature"
    NONCE_UNKNOWN_OR_USED = "nonce_unknown_or_used"
    NONCE_EXPIRED = "nonce_expired"
    PURPOSE_MISMATCH = "purpose_mismatch"
    TERMINAL_MISMATCH = "terminal_mismatch"
    NONCE_STORE_UNAVAILABLE = "nonce_store_unavailable"


class VerificationError(Exception):
    """Base class: the card (certificate, signature or nonce) was not accepted."""

    reason: Reason = Reason.UNTRUSTED_CHAIN
    retryable: bool = False

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{self.reason.value}: {detail}" if detail else self.reason.value)
        self.detail = detail


class MalformedCertificate(VerificationError):
    """The bytes are not a parseable X.509 certificate (or far too large to be one)."""

    reason = Reason.MALFORMED_CERTIFICATE


class WrongKeyType(VerificationError):
    """The certificate's key is not RSA of at least 2048 bits (the current card's key)."""

    reason = Reason.WRONG_KEY_TYPE


class UntrustedChain(VerificationError):
    """No configured trust anchor issued this certificate (or an algorithm is refused)."""

    reason = Reason.UNTRUSTED_CHAIN


class NotEndEntity(VerificationError):
    """A CA certificate or one without digitalSignature was presented as a card's."""

    reason = Reason.NOT_END_ENTITY


class AnchorNotValid(VerificationError):
    """The trust anchor that issued the certificate is outside its own validity now."""

    reason = Reason.ANCHOR_NOT_VALID


class CertificateExpired(VerificationError):
    """The certificate's notAfter has passed (the holder must renew at the municipality)."""

    reason = Reason.EXPIRED


class CertificateNotYetValid(VerificationError):
    """The certificate's notBefore is still in the future."""

    reason = Reason.NOT_YET_VALID


class CertificateRevoked(VerificationError):
    """The certificate is on the issuer's current CRL (e.g. a card reported lost).

    `crl_reason`: the entry's CRLReason (RFC 5280 5.3.1; 1 key compromise, 4
    superseded), None when the entry carries none.
    """

    reason = Reason.REVOKED

    def __init__(self, detail: str = "", *, crl_reason: int | None = None) -> None:
        super().__init__(detail)
        self.crl_reason = crl_reason


class CrlUnavailable(VerificationError):
    """No fresh, correctly signed CRL could be had: we fail closed (retry later)."""

    reason = Reason.CRL_UNAVAILABLE
    retryable = True


class BadSignature(VerificationError):
    """The signature does not verify over the data the server rebuilt."""

    reason = Reason.BAD_SIGNATURE


class NonceUnknownOrUsed(VerificationError):
    """The nonce was never issued here, or was already used (single use)."""

    reason = Reason.NONCE_UNKNOWN_OR_USED


class NonceExpired(VerificationError):
    """The nonce was issued here but its short life is over (now burnt)."""

    reason = Reason.NONCE_EXPIRED


class PurposeMismatch(VerificationError):
    """The nonce was issued for another purpose than the one this flow completes."""

    reason = Reason.PURPOSE_MISMATCH


class TerminalMismatch(VerificationError):
    """The nonce was issued for another terminal than the one completing the flow."""

    reason = Reason.TERMINAL_MISMATCH


class NonceStoreUnavailable(VerificationError):
    """The nonce store (Redis) did not answer: no challenge issued, none accepted (retry).

    Raised by `put` (nothing was stored, so no nonce goes out) and by `take` (the nonce
    is not accepted; if Redis did burn it before the link failed, it stays burnt).
    """

    reason = Reason.NONCE_STORE_UNAVAILABLE
    retryable = True


class NonceStoreFull(Exception):
    """The nonce store is at its bound: no new challenge until old ones expire."""
