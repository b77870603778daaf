"""Revocation by CRL: revoked cards refused, and no fresh verified CRL means no entry."""

from __future__ import annotations

import http.server
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

from bridge.vcard.jlis import DemoJLIS, IssuedCard, build_crl_der
from tests.fixtures.jlis import JpkiHarness, ca_key, cert_of, make_harness
from webapp.jpki import (
    CrlError,
    DistributionPointCrlSource,
    Reason,
    RevocationChecker,
    TrustAnchor,
    TrustStore,
    VerificationError,
    load_crl,
)
from webapp.jpki.crl import CrlReason
from webapp.jpki.crl_sources import (
    CrlFetchError,
    FileCrlSource,
    UrlCrlSource,
    crl_source_from_spec,
    fetch_url,
)
from webapp.jpki.errors import CertificateRevoked


def refused(harness: JpkiHarness, der: bytes) -> Reason:
    """The reason `identify` refuses `der` (fails the test if it is accepted)."""
    with pytest.raises(VerificationError) as info:
        harness.verifier.identify(der)
    return info.value.reason


def now_of(harness: JpkiHarness) -> datetime:
    return datetime.fromtimestamp(harness.clock.now, UTC).replace(microsecond=0)


def build_crl(
    jlis: DemoJLIS,
    *,
    this_update: datetime,
    next_update: datetime,
    revoked: list[tuple[int, list[tuple[x509.ExtensionType, bool]]]] = (),  # type: ignore[assignment]
    extensions: list[tuple[x509.ExtensionType, bool]] = (),  # type: ignore[assignment]
    pem: bool = False,
) -> bytes:
    """A CRL made by cryptography's builder (independent of the fake J-LIS's encoder)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(jlis.auth_ca_cert.subject)
        .last_update(this_update)
        .next_update(next_update)
    )
    for serial, entry_extensions in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(this_update)
        for ext, critical in entry_extensions:
            entry = entry.add_extension(ext, critical=critical)
        builder = builder.add_revoked_certificate(entry.build())
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    crl = builder.sign(ca_key(jlis), hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM if pem else serialization.Encoding.DER)


@pytest.fixture
def own(private_jlis: DemoJLIS, tmp_path: Path) -> JpkiHarness:
    """A harness around a J-LIS of this test's own (revocations stay here)."""
    return make_harness(private_jlis, tmp_path)


# --- revoked and good cards ---------------------------------------------------------


def test_revoked_card_is_refused_others_pass(own: JpkiHarness) -> None:
    lost, kept = own.jlis.issue(), own.jlis.issue()
    assert own.verifier.identify(lost.auth_cert_der)
    own.jlis.revoke(lost.auth_cert_der)
    own.publish_crl()
    assert refused(own, lost.auth_cert_der) is Reason.REVOKED
    assert own.verifier.identify(kept.auth_cert_der).signed is False


def test_revocation_applies_to_signed_authentication_too(own: JpkiHarness) -> None:
    lost = own.jlis.issue()
    own.jlis.revoke(lost.auth_cert_der)
    own.publish_crl()
    challenge = own.challenge()
    with pytest.raises(VerificationError) as info:
        own.verifier.verify_authentication(
            lost.auth_cert_der, own.sign(lost, challenge), challenge.nonce
        )
    assert info.value.reason is Reason.REVOKED


def test_revocation_shows_at_the_next_crl_refresh(own: JpkiHarness) -> None:
    card = own.jlis.issue()
    assert own.verifier.identify(card.auth_cert_der)
    own.jlis.revoke(card.auth_cert_der)
    own.crl_path.write_bytes(own.jlis.crl_der("auth", this_update=now_of(own)))
    assert own.verifier.identify(card.auth_cert_der)  # current CRL still fresh
    own.clock.advance(86400 - 299)  # within refresh_margin_s of nextUpdate
    assert refused(own, card.auth_cert_der) is Reason.REVOKED


# --- fail closed --------------------------------------------------------------------


def test_stale_crl_fails_closed(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    now = now_of(jpki)
    jpki.publish_crl(this_update=now - timedelta(days=2), next_update=now - timedelta(seconds=1))
    assert refused(jpki, demo_card.auth_cert_der) is Reason.CRL_UNAVAILABLE


def test_crl_past_next_update_with_nothing_newer_fails_closed(
    jpki: JpkiHarness, demo_card: IssuedCard
) -> None:
    assert jpki.verifier.identify(demo_card.auth_cert_der)
    jpki.clock.advance(86400 + 1)  # the file still holds yesterday's CRL
    assert refused(jpki, demo_card.auth_cert_der) is Reason.CRL_UNAVAILABLE


def test_missing_crl_fails_closed_then_recovers_after_retry_delay(
    jpki: JpkiHarness, demo_card: IssuedCard
) -> None:
    jpki.verifier.revocation.retry_after_s = 30
    good = jpki.crl_path.read_bytes()
    jpki.crl_path.unlink()
    assert refused(jpki, demo_card.auth_cert_der) is Reason.CRL_UNAVAILABLE
    jpki.crl_path.write_bytes(good)
    # Within the retry delay nothing is fetched again: still unavailable.
    assert refused(jpki, demo_card.auth_cert_der) is Reason.CRL_UNAVAILABLE
    jpki.clock.advance(31)
    assert jpki.verifier.identify(demo_card.auth_cert_der)


def test_failed_refresh_keeps_the_current_crl_while_fresh(
    jpki: JpkiHarness, demo_card: IssuedCard
) -> None:
    assert jpki.verifier.identify(demo_card.auth_cert_der)
    jpki.crl_path.write_bytes(b"garbage")
    jpki.clock.advance(86400 - 100)  # refresh due, refresh fails, current still fresh
    assert jpki.verifier.identify(demo_card.auth_cert_der)
    jpki.clock.advance(101)  # past nextUpdate: nothing fresh left
    assert refused(jpki, demo_card.auth_cert_der) is Reason.CRL_UNAVAILABLE


@pytest.mark.parametrize("how", ["other-ca-same-dn", "flipped-signature-bit", "garbage"])
def test_badly_signed_or_broken_crl_fails_closed(
    jpki: JpkiHarness, demo_card: IssuedCard, private_jlis: DemoJLIS, how: str
) -> None:
    if how == "other-ca-same-dn":
        der = private_jlis.crl_der("auth", this_update=now_of(jpki))
    elif how == "flipped-signature-bit":
        good = bytearray(jpki.jlis.crl_der("auth", this_update=now_of(jpki)))
        good[-1] ^= 0x01
        der = bytes(good)
    else:
        der = b"\x30\x03\x02\x01\x00"
    jpki.publish_crl(der)
    assert refused(jpki, demo_card.auth_cert_der) is Reason.CRL_UNAVAILABLE


def test_older_crl_never_replaces_a_newer_one(own: JpkiHarness) -> None:
    card = own.jlis.issue()
    old_crl = own.jlis.crl_der("auth", this_update=now_of(own) - timedelta(hours=1))
    own.jlis.revoke(card.auth_cert_der)
    own.publish_crl()
    assert refused(own, card.auth_cert_der) is Reason.REVOKED
    own.publish_crl(old_crl)  # a replayed, still unexpired CRL without the revocation
    assert refused(own, card.auth_cert_der) is Reason.REVOKED


def test_crl_from_the_future_is_refused(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    jpki.publish_crl(this_update=now_of(jpki) + timedelta(hours=2))
    assert refused(jpki, demo_card.auth_cert_der) is Reason.CRL_UNAVAILABLE


def test_unreachable_distribution_point_fails_closed(tmp_path: Path) -> None:
    jlis = DemoJLIS.init(tmp_path / "j", crl_url="http://127.0.0.1:9/auth.crl")  # refused
    harness = make_harness(jlis, tmp_path)
    harness.verifier.replace_revocation(
        RevocationChecker(
            default_source=DistributionPointCrlSource(timeout_s=2), clock=harness.clock
        )
    )
    assert refused(harness, jlis.issue().auth_cert_der) is Reason.CRL_UNAVAILABLE


def test_certificate_without_http_distribution_point_fails_closed(jpki: JpkiHarness) -> None:
    # The real J-LIS certificates name their CRL by a directory name, not a URL.
    now = now_of(jpki)
    dir_name = x509.DirectoryName(jpki.jlis.auth_ca_cert.subject)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "LDAPONLY")]))
        .issuer_name(jpki.jlis.auth_ca_cert.subject)
        .public_key(rsa.generate_private_key(65537, 2048).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.CRLDistributionPoints([x509.DistributionPoint([dir_name], None, None, None)]),
            critical=False,
        )
        .sign(ca_key(jpki.jlis), hashes.SHA256())
    )
    jpki.verifier.replace_revocation(
        RevocationChecker(default_source=DistributionPointCrlSource(), clock=jpki.clock)
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    assert refused(jpki, der) is Reason.CRL_UNAVAILABLE


def test_warm_up_loads_fixed_location_crls_before_any_check(
    jpki: JpkiHarness, demo_card: IssuedCard
) -> None:
    checker = RevocationChecker(default_source=FileCrlSource(jpki.crl_path), clock=jpki.clock)
    errors = checker.warm_up(jpki.verifier.trust.anchors)
    # The file holds the demo CA's CRL: the J-LIS anchors cannot use it, and say so.
    assert sorted(errors) == sorted(a.label for a in jpki.verifier.trust.anchors if not a.demo)
    demo_slots = [s for s in checker.slots() if s.anchor.demo]
    assert len(demo_slots) == 1 and demo_slots[0].current is not None
    jpki.verifier.replace_revocation(checker)
    jpki.crl_path.unlink()  # already loaded: the check does not need the file
    assert jpki.verifier.identify(demo_card.auth_cert_der)
    assert not RevocationChecker(default_source=DistributionPointCrlSource()).warm_up(
        jpki.verifier.trust.anchors
    )


# --- over HTTP ----------------------------------------------------------------------


class _Files(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/pkix-crl")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def crl_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A local HTTP server: (base URL, mutable path -> body map)."""
    files: dict[str, bytes] = {}
    handler = type("Handler", (_Files,), {"files": files})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()
    server.server_close()


def test_crl_fetched_from_the_distribution_point(
    crl_server: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    base, files = crl_server
    jlis = DemoJLIS.init(tmp_path / "j", crl_url=f"{base}/demo-jlis/auth.crl")
    harness = make_harness(jlis, tmp_path)
    harness.verifier.replace_revocation(
        RevocationChecker(
            default_source=DistributionPointCrlSource(timeout_s=5), clock=harness.clock
        )
    )
    lost, kept = jlis.issue(), jlis.issue()
    assert refused(harness, kept.auth_cert_der) is Reason.CRL_UNAVAILABLE  # 404 so far
    jlis.revoke(lost.auth_cert_der)
    files["/demo-jlis/auth.crl"] = jlis.auth_crl_der()
    harness.clock.advance(31)  # past the retry delay
    assert harness.verifier.identify(kept.auth_cert_der)
    assert refused(harness, lost.auth_cert_der) is Reason.REVOKED


def test_fetch_url_limits(crl_server: tuple[str, dict[str, bytes]]) -> None:
    base, files = crl_server
    files["/big.crl"] = b"x" * 5000
    assert fetch_url(f"{base}/big.crl") == b"x" * 5000
    with pytest.raises(CrlFetchError, match="larger than"):
        fetch_url(f"{base}/big.crl", max_bytes=4999)
    with pytest.raises(CrlFetchError):
        fetch_url(f"{base}/missing.crl")
    with pytest.raises(CrlFetchError, match="not an http"):
        fetch_url("file:///etc/passwd")
    with pytest.raises(CrlFetchError):
        fetch_url("http://127.0.0.1:9/none.crl", timeout_s=2)  # discard port: refused


def test_crl_source_specs(tmp_path: Path) -> None:
    assert isinstance(crl_source_from_spec("dp"), DistributionPointCrlSource)
    url = crl_source_from_spec("https://crl.example/auth.crl")
    assert isinstance(url, UrlCrlSource) and url.locate(()) == "https://crl.example/auth.crl"
    path = crl_source_from_spec(str(tmp_path / "a.crl"))
    assert isinstance(path, FileCrlSource) and path.locate(()) == str(tmp_path / "a.crl")
    assert isinstance(crl_source_from_spec("file:///var/crl/a.crl"), FileCrlSource)
    with pytest.raises(ValueError):
        crl_source_from_spec("ldap://jpki.example/cn=crl")
    dp = DistributionPointCrlSource()
    assert dp.locate(("ldap://x/y", "http://a/b.crl", "https://c/d.crl")) == "http://a/b.crl"
    assert dp.locate(("ldap://x/y",)) is None


# --- what a CRL may be --------------------------------------------------------------


def _anchor(jlis: DemoJLIS) -> TrustAnchor:
    return TrustAnchor.from_certificate(jlis.auth_ca_cert, demo=True)


def test_entries_with_extensions_read_like_cryptography_reads_them(demo_jlis: DemoJLIS) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    reason = x509.CRLReason(x509.ReasonFlags.key_compromise)
    hold = x509.CRLReason(x509.ReasonFlags.certificate_hold)  # a suspension: still refused
    invalid = x509.InvalidityDate(now - timedelta(days=3))
    revoked = [
        (1, []),
        (2**64 + 7, [(reason, False)]),
        (300, [(hold, False), (invalid, False)]),
        (2**150, [(invalid, False)]),
    ]
    der = build_crl(
        demo_jlis, this_update=now, next_update=now + timedelta(days=1), revoked=revoked
    )
    crl = load_crl(der, _anchor(demo_jlis))
    assert crl.serials.keys() == {r.serial_number for r in x509.load_der_x509_crl(der)}
    assert crl.serials.keys() == {1, 2**64 + 7, 300, 2**150}
    assert 300 in crl and 301 not in crl
    # Each entry's CRLReason, as cryptography reads it (None where the entry has none).
    assert crl.serials == {1: None, 2**64 + 7: 1, 300: 6, 2**150: None}
    assert crl.reason(2**64 + 7) == CrlReason.KEY_COMPROMISE and crl.reason(301) is None


def test_a_superseded_certificate_is_accepted_only_when_asked(own: JpkiHarness) -> None:
    """The two-card renewal step's old card: superseded yes, a lost card never."""
    renewed, lost, plain, kept = (own.jlis.issue() for _ in range(4))
    own.jlis.revoke(renewed.auth_cert_der, reason=CrlReason.SUPERSEDED, publish=False)
    own.jlis.revoke(lost.auth_cert_der, reason=CrlReason.KEY_COMPROMISE, publish=False)
    own.jlis.revoke(plain.auth_cert_der, publish=False)
    own.publish_crl()
    for card in (renewed, lost, plain):
        assert refused(own, card.auth_cert_der) is Reason.REVOKED  # every ordinary check
    accepted = own.verifier.identify_superseded(renewed.auth_cert_der)
    assert accepted.superseded and not accepted.signed
    assert not own.verifier.identify_superseded(kept.auth_cert_der).superseded
    for card, crl_reason in ((lost, CrlReason.KEY_COMPROMISE), (plain, None)):
        with pytest.raises(CertificateRevoked) as info:
            own.verifier.identify_superseded(card.auth_cert_der)
        assert info.value.crl_reason == crl_reason
    challenge = own.challenge()
    signed = own.verifier.verify_authentication(
        renewed.auth_cert_der,
        own.sign(renewed, challenge),
        challenge.nonce,
        allow_superseded=True,
    )
    assert signed.superseded and signed.signed
    challenge = own.challenge()
    with pytest.raises(CertificateRevoked):
        own.verifier.verify_authentication(
            renewed.auth_cert_der, own.sign(renewed, challenge), challenge.nonce
        )


@pytest.mark.parametrize(
    ("entry_ext", "critical"),
    [
        (x509.CertificateIssuer([x509.DNSName("other.example")]), False),
        (x509.CRLReason(x509.ReasonFlags.key_compromise), True),
    ],
    ids=["indirect-entry", "critical-entry-extension"],
)
def test_unsupported_entries_make_the_crl_unusable(
    demo_jlis: DemoJLIS, entry_ext: x509.ExtensionType, critical: bool
) -> None:
    now = datetime.now(UTC)
    der = build_crl(
        demo_jlis,
        this_update=now,
        next_update=now + timedelta(days=1),
        revoked=[(5, []), (6, [(entry_ext, critical)])],
    )
    with pytest.raises(CrlError, match="revokedCertificates"):
        load_crl(der, _anchor(demo_jlis))


@pytest.mark.parametrize(
    ("extension", "critical", "match"),
    [
        (x509.DeltaCRLIndicator(3), True, "delta"),
        (
            x509.IssuingDistributionPoint(None, None, False, False, None, True, False),
            True,
            "scope",
        ),
        (
            x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.7"), b"\x05\x00"),
            True,
            "critical",
        ),
    ],
    ids=["delta", "indirect", "unknown-critical"],
)
def test_crl_kinds_we_refuse(
    demo_jlis: DemoJLIS, extension: x509.ExtensionType, critical: bool, match: str
) -> None:
    now = datetime.now(UTC)
    der = build_crl(
        demo_jlis,
        this_update=now,
        next_update=now + timedelta(days=1),
        extensions=[(extension, critical)],
    )
    with pytest.raises(CrlError, match=match):
        load_crl(der, _anchor(demo_jlis))


def test_pem_crl_and_missing_next_update(demo_jlis: DemoJLIS) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    pem = build_crl(demo_jlis, this_update=now, next_update=now + timedelta(hours=1), pem=True)
    assert load_crl(pem, _anchor(demo_jlis)).next_update == (now + timedelta(hours=1)).timestamp()
    open_ended = build_crl_der(
        ca_key(demo_jlis),
        demo_jlis.auth_ca_cert,
        [],
        this_update=now,
        next_update=None,
        crl_number=1,
    )
    with pytest.raises(CrlError, match="nextUpdate"):
        load_crl(open_ended, _anchor(demo_jlis))
    crl = load_crl(open_ended, _anchor(demo_jlis), max_age_s=600)
    assert crl.next_update == now.timestamp() + 600


def test_crl_of_another_issuer_is_refused(demo_jlis: DemoJLIS) -> None:
    jlis_2023 = TrustStore.production().anchors[-1]
    with pytest.raises(CrlError, match="issuer"):
        load_crl(demo_jlis.auth_crl_der(), jlis_2023)


def test_anchor_without_crl_sign_cannot_vouch_for_a_crl(tmp_path: Path) -> None:
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no cRLSign (DEMO)")])
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(True, None), critical=True)
        .add_extension(x509.KeyUsage(*[False] * 5, True, False, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(now)
        .next_update(now + timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(CrlError, match="cRLSign"):
        load_crl(crl.public_bytes(serialization.Encoding.DER), TrustAnchor.from_certificate(ca))


# --- a national-size CRL ------------------------------------------------------------

MILLION = 1_000_000


@pytest.fixture(scope="module")
def million_crl(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[DemoJLIS, Path, list[int], IssuedCard]:
    """A demo J-LIS, a CRL file with 1,000,000 random revoked serials plus one lost
    card's (~27 MB, ~2 s to build), the serials, and the lost card."""
    jlis = DemoJLIS.init(tmp_path_factory.mktemp("million") / "jlis")
    lost = jlis.issue()
    jlis.revoke(lost.auth_cert_der)
    serials = [secrets.randbits(63) | (1 << 56) for _ in range(MILLION)]
    path = jlis.directory / "million.crl"
    path.write_bytes(jlis.crl_der("auth", extra_serials=serials))
    return jlis, path, serials, lost


def test_million_serial_crl_lookup(
    million_crl: tuple[DemoJLIS, Path, list[int], IssuedCard],
) -> None:
    jlis, path, serials, lost = million_crl
    started = time.perf_counter()
    crl = load_crl(path.read_bytes(), _anchor(jlis))
    took = time.perf_counter() - started
    expected = set(serials) | {cert_of(lost.auth_cert_der).serial_number}
    assert len(crl) == len(expected) > MILLION - 10
    assert all(s in crl for s in serials[:: MILLION // 1000])
    outsiders = [secrets.randbits(63) | (1 << 56) for _ in range(1000)]
    assert [s in crl for s in outsiders] == [s in expected for s in outsiders]
    assert took < 20, f"loading took {took:.1f} s"


def test_million_serial_crl_through_the_verifier(
    million_crl: tuple[DemoJLIS, Path, list[int], IssuedCard], tmp_path: Path
) -> None:
    jlis, path, _, lost = million_crl
    harness = make_harness(jlis, tmp_path)
    harness.verifier.replace_revocation(
        RevocationChecker(default_source=FileCrlSource(path), clock=harness.clock)
    )
    assert refused(harness, lost.auth_cert_der) is Reason.REVOKED
    assert harness.verifier.identify(jlis.issue().auth_cert_der).signed is False
