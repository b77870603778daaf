"""The JPKI applet (公的個人認証AP), user-authentication side only, as sans-IO steps.

Every operation here is a generator: it yields a batch of `Step`s, receives the
responses, and returns a result or raises a typed `bridge.errors.CardError`. Run one
with `bridge.transport.drive(op, transport)`. No I/O, standard library only.

Only the commands of the user-authentication allowlist are ever built here (rule 1 of
docs/design.md): SELECT of the exact JPKI AID, SELECT of EFs 000A/000B/0017/0018,
READ BINARY with a 15-bit offset (never the short-EF form), VERIFY on the current EF
(P2 = 80), and COMPUTE DIGITAL SIGNATURE with P1 = 00. Byte values: see
shared/docs/jpki-card.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from .apdu import SW, Command, Response, is_wrong_pin
from .errors import (
    CardStatusError,
    Code,
    NotMyNumberCard,
    PINFormatError,
    PINGuardRefused,
    PINLocked,
    WrongPIN,
)
from .transport import Batch, Operation, Step

SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
READ_CHUNK = 256


@dataclass(frozen=True, slots=True)
class CardProfile:
    """Byte values of one generation of the card; swap it for the next-generation card."""

    name: str
    jpki_aid: bytes
    ef_auth_cert: int
    ef_auth_ca_cert: int
    ef_auth_key: int
    ef_auth_pin: int
    pin_length: int
    pin_tries: int
    signature_length: int
    # How much of EF 000A the first batch reads. A user-authentication certificate is
    # about 1.3-1.9 KB, so 8 chunks of 256 read it in the one round trip; a longer one
    # costs a second batch for the rest.
    cert_read_bytes: int = 2048


MYNUMBER_2015 = CardProfile(
    name="My Number Card (RSA-2048, 2015-)",
    jpki_aid=bytes.fromhex("D392F000260100000001"),
    ef_auth_cert=0x000A,
    ef_auth_ca_cert=0x000B,
    ef_auth_key=0x0017,
    ef_auth_pin=0x0018,
    pin_length=4,
    pin_tries=3,
    signature_length=256,
)


def select_jpki(profile: CardProfile = MYNUMBER_2015) -> Command:
    """SELECT the JPKI applet by its exact 10-byte AID (no FCI: P2 = 0C)."""
    return Command(0x00, 0xA4, 0x04, 0x0C, profile.jpki_aid)


def select_ef(fid: int) -> Command:
    """SELECT an EF inside the current DF by its 2-byte file id."""
    return Command(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big"))


def read_binary(offset: int, length: int) -> Command:
    """READ BINARY of the current EF; offset is 15 bits (P1 bit 8 clear = no short EF)."""
    if not 0 <= offset <= 0x7FFF:
        raise ValueError(f"offset out of range: {offset}")
    return Command(0x00, 0xB0, offset >> 8, offset & 0xFF, le=length)


def tries_left_command() -> Command:
    """VERIFY without data: answers 63Cx with x tries left and spends none."""
    return Command(0x00, 0x20, 0x00, 0x80)


def verify_command(pin: str, profile: CardProfile = MYNUMBER_2015) -> Command:
    """VERIFY the user-authentication PIN (4 ASCII digits, no padding)."""
    check_pin_format(pin, profile)
    return Command(0x00, 0x20, 0x00, 0x80, pin.encode("ascii"))


def sign_command(digest_info: bytes) -> Command:
    """COMPUTE DIGITAL SIGNATURE (80 2A 00 80) over a DigestInfo with the selected key."""
    return Command(0x80, 0x2A, 0x00, 0x80, digest_info, le=256)


def check_pin_format(pin: str, profile: CardProfile = MYNUMBER_2015) -> None:
    """Raise PINFormatError unless `pin` is exactly the profile's number of ASCII digits."""
    if len(pin) != profile.pin_length or not all("0" <= c <= "9" for c in pin):
        raise PINFormatError(f"PIN must be {profile.pin_length} digits")


def sha256_digest_info(data: bytes) -> bytes:
    """The DER DigestInfo for SHA-256 of `data`, as the card expects to sign it."""
    return SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(data).digest()


def _check_select(responses: list[Response], index: int) -> None:
    """Raise the right error if the SELECT at `index` did not answer 9000."""
    if len(responses) <= index:
        raise CardStatusError("batch stopped early", sw=responses[-1].sw)
    sw = responses[index].sw
    if sw != SW.OK:
        if index == 0:
            raise NotMyNumberCard(sw)
        raise CardStatusError("SELECT EF failed", sw=sw, code=Code.NOT_MY_NUMBER_CARD)


def der_total_length(head: bytes) -> int:
    """Total length of the DER element starting `head` (tag + length + content).

    Raises ValueError if `head` does not start a definite-length SEQUENCE.
    """
    if len(head) < 2 or head[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    first = head[1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    if n == 0 or n > 3 or len(head) < 2 + n:
        raise ValueError("unsupported DER length")
    return 2 + n + int.from_bytes(head[2 : 2 + n], "big")


def _read_ef_batch(offset: int, end: int) -> list[Step]:
    """READ BINARY steps covering [offset, end).

    Each step proceeds on 9000 only: a read past the end of the EF answers 6B00, which
    stops the batch there (the 6B00 response still comes back and ends the read).
    """
    return [
        Step(read_binary(pos, min(READ_CHUNK, end - pos))) for pos in range(offset, end, READ_CHUNK)
    ]


def read_certificate(
    profile: CardProfile = MYNUMBER_2015, *, ef: int | None = None
) -> Operation[bytes]:
    """Read the user-authentication certificate (利用者証明用電子証明書) as DER.

    One batch in the usual case: SELECT AP, SELECT EF, then READ BINARY chunks up to
    `profile.cert_read_bytes`. The DER length in the first bytes says how much is the
    certificate; filler after it is dropped.
    """
    fid = profile.ef_auth_cert if ef is None else ef
    if fid not in (profile.ef_auth_cert, profile.ef_auth_ca_cert):
        raise ValueError("only the user-authentication certificates are readable")
    batch: list[Step] = [Step(select_jpki(profile)), Step(select_ef(fid))]
    batch += _read_ef_batch(0, profile.cert_read_bytes)
    responses = yield batch
    _check_select(responses, 0)
    _check_select(responses, 1)
    data = bytearray()
    for r in responses[2:]:
        if r.sw == SW.WRONG_P1P2:
            break
        if r.sw != SW.OK:
            raise CardStatusError("READ BINARY failed", sw=r.sw, code=Code.CERTIFICATE_UNREADABLE)
        data += r.data
    try:
        total = der_total_length(bytes(data[:5]))
    except ValueError:
        raise CardStatusError(
            "EF holds no certificate", sw=SW.OK, code=Code.CERTIFICATE_UNREADABLE
        ) from None
    if total > 0x8000:
        raise CardStatusError("certificate too long", sw=SW.OK, code=Code.CERTIFICATE_UNREADABLE)
    if len(data) < total:
        # Only when the certificate is longer than the first batch read (rare).
        rest = _read_ef_batch(len(data), total)
        more = yield [Step(select_jpki(profile)), Step(select_ef(fid)), *rest]
        _check_select(more, 0)
        _check_select(more, 1)
        for r in more[2:]:
            if r.sw != SW.OK:
                raise CardStatusError(
                    "READ BINARY failed", sw=r.sw, code=Code.CERTIFICATE_UNREADABLE
                )
            data += r.data
        if len(data) < total:
            raise CardStatusError(
                "certificate truncated", sw=SW.WRONG_P1P2, code=Code.CERTIFICATE_UNREADABLE
            )
    return bytes(data[:total])


def _tries_from(response: Response) -> int | None:
    """Tries left from the answer to a data-less VERIFY; None when already verified."""
    if response.sw == SW.OK:
        return None
    if is_wrong_pin(response.sw):
        return response.sw & 0x0F
    if response.sw == SW.AUTH_METHOD_BLOCKED:
        return 0
    raise CardStatusError("reading PIN tries failed", sw=response.sw)


def _pin_steps(profile: CardProfile) -> list[Step]:
    return [Step(select_jpki(profile)), Step(select_ef(profile.ef_auth_pin))]


def read_pin_tries(profile: CardProfile = MYNUMBER_2015) -> Operation[int | None]:
    """Tries left on the user-authentication PIN, spending none.

    Returns None when the PIN is already verified in this card session.
    """
    tries_sws = frozenset({SW.OK, SW.AUTH_METHOD_BLOCKED} | {0x63C0 | i for i in range(16)})
    responses = yield [*_pin_steps(profile), Step(tries_left_command(), tries_sws)]
    _check_select(responses, 0)
    _check_select(responses, 1)
    if len(responses) < 3:
        raise CardStatusError("batch stopped early", sw=responses[-1].sw)
    return _tries_from(responses[2])


def guard_pin_attempt(tries_left: int | None, *, confirm_last_try: bool) -> None:
    """The PIN guard (rule 5, never lock a card): may a VERIFY be sent now?

    Refuses when the card is locked, and with one try left unless the citizen has
    explicitly confirmed. `None` (already verified) and two or more tries pass.
    """
    if tries_left is None:
        return
    if tries_left == 0:
        raise PINGuardRefused("PIN locked", code=Code.PIN_LOCKED, tries_left=0)
    if tries_left == 1 and not confirm_last_try:
        raise PINGuardRefused(
            "one try left: the citizen must confirm", code=Code.PIN_LAST_TRY, tries_left=1
        )


def _verify_result(response: Response) -> None:
    """Raise the right error for the answer to a VERIFY with data."""
    if response.sw == SW.OK:
        return
    if is_wrong_pin(response.sw):
        raise WrongPIN(response.sw & 0x0F)
    if response.sw == SW.AUTH_METHOD_BLOCKED:
        raise PINLocked(response.sw)
    raise CardStatusError("VERIFY failed", sw=response.sw)


def verify_pin(
    pin: str, *, confirm_last_try: bool = False, profile: CardProfile = MYNUMBER_2015
) -> Operation[None]:
    """Verify the user-authentication PIN behind the PIN guard; never retries.

    Two batches: read the tries left, then (if the guard allows) VERIFY.
    """
    check_pin_format(pin, profile)
    tries = yield from read_pin_tries(profile)
    guard_pin_attempt(tries, confirm_last_try=confirm_last_try)
    responses = yield [*_pin_steps(profile), Step(verify_command(pin, profile))]
    _check_select(responses, 0)
    _check_select(responses, 1)
    _verify_result(responses[2])


def sign_steps(digest_info: bytes, profile: CardProfile = MYNUMBER_2015) -> list[Step]:
    """The steps that sign a DigestInfo with the user-authentication key."""
    return [
        Step(select_jpki(profile)),
        Step(select_ef(profile.ef_auth_key)),
        Step(sign_command(digest_info)),
    ]


def _signature_from(response: Response, profile: CardProfile) -> bytes:
    if response.sw == SW.SECURITY_STATUS_NOT_SATISFIED:
        raise CardStatusError("PIN not verified", sw=response.sw, code=Code.PIN_NOT_VERIFIED)
    if response.sw != SW.OK:
        raise CardStatusError("COMPUTE DIGITAL SIGNATURE failed", sw=response.sw)
    if len(response.data) != profile.signature_length:
        raise CardStatusError("signature has the wrong length", sw=response.sw)
    return response.data


def sign_digest_info(digest_info: bytes, profile: CardProfile = MYNUMBER_2015) -> Operation[bytes]:
    """Sign a DigestInfo with the user-authentication key (PIN must be verified)."""
    if not digest_info.startswith(SHA256_DIGEST_INFO_PREFIX) or len(digest_info) != 51:
        raise ValueError("expected a SHA-256 DigestInfo of 51 bytes")
    responses = yield sign_steps(digest_info, profile)
    _check_select(responses, 0)
    _check_select(responses, 1)
    return _signature_from(responses[2], profile)


def verify_and_sign(
    pin: str,
    digest_info: bytes,
    *,
    confirm_last_try: bool = False,
    profile: CardProfile = MYNUMBER_2015,
) -> Operation[bytes]:
    """PIN guard, VERIFY and signature: two round trips (tries, then VERIFY + sign)."""
    check_pin_format(pin, profile)
    if not digest_info.startswith(SHA256_DIGEST_INFO_PREFIX) or len(digest_info) != 51:
        raise ValueError("expected a SHA-256 DigestInfo of 51 bytes")
    tries = yield from read_pin_tries(profile)
    guard_pin_attempt(tries, confirm_last_try=confirm_last_try)
    batch: Batch = [
        *_pin_steps(profile),
        Step(verify_command(pin, profile)),
        Step(select_ef(profile.ef_auth_key)),
        Step(sign_command(digest_info)),
    ]
    responses = yield batch
    _check_select(responses, 0)
    _check_select(responses, 1)
    _verify_result(responses[2])
    if len(responses) < 5:
        raise CardStatusError("batch stopped early", sw=responses[-1].sw)
    _check_select(responses, 3)
    return _signature_from(responses[4], profile)


# -- the PIN sealed in the browser, verified by the bridge ------------------------------
#
# The platform never holds the PIN: the bridge unseals it and builds the VERIFY itself
# (its guard reads the tries first, in the same PC/SC transaction), then runs the steps
# the platform asked to follow it. These two functions are the driver's half of that
# command: what to run after the VERIFY, and what the answers mean.


def sign_after_verify_steps(digest_info: bytes, profile: CardProfile = MYNUMBER_2015) -> list[Step]:
    """The steps the sealed-PIN command runs after its VERIFY: select the key, sign."""
    if not digest_info.startswith(SHA256_DIGEST_INFO_PREFIX) or len(digest_info) != 51:
        raise ValueError("expected a SHA-256 DigestInfo of 51 bytes")
    return [Step(select_ef(profile.ef_auth_key)), Step(sign_command(digest_info))]


def sealed_signature(responses: Sequence[Response], profile: CardProfile = MYNUMBER_2015) -> bytes:
    """The signature from the answers to a sealed VERIFY and `sign_after_verify_steps`.

    Raises WrongPIN (with the tries left), PINLocked, or CardStatusError.
    """
    if not responses:
        raise CardStatusError("no answer to VERIFY", sw=SW.OK)
    _verify_result(responses[0])
    if len(responses) < 3:
        raise CardStatusError("batch stopped early", sw=responses[-1].sw)
    if responses[1].sw != SW.OK:
        raise CardStatusError("signature key not selectable", sw=responses[1].sw)
    return _signature_from(responses[2], profile)
