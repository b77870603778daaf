"""Trust anchors: the real J-LIS roots in production, the demo CA only in demo mode."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bridge.vcard.jlis import DemoJLIS, IssuedCard
from tests.fixtures.jlis import TEST_ORIGIN, TEST_SECRET, make_harness
from webapp.jpki import Reason, TrustAnchor, TrustStore, VerificationError
from webapp.jpki.factory import build_verifier
from webapp.jpki.trust import ROOTS_DIR, load_certificates

# From webapp/data/jpki-roots/README.md (copied from J-LIS's published roots).
JLIS_2015 = "4dcfc4ca0aaf9fb2a3081b3f0c991c320b3acc008667a341eeaec5af1d58ca7d"
JLIS_2023 = "64114f29620c24ed2631d46476a040e7ee740d956089c00b036a6a8118c322b5"
JLIS_DN = (
    "OU=Japan Agency for Local Authority Information Systems,"
    "OU=JPKI for user authentication,O=JPKI,C=JP"
)


def test_production_roots_are_the_jlis_ones() -> None:
    store = TrustStore.production()
    assert store.fingerprints == {JLIS_2015, JLIS_2023}
    assert not store.demo_mode
    for anchor in store.anchors:
        assert anchor.subject.rfc4514_string() == JLIS_DN
        assert not anchor.demo
        assert anchor.key_id is not None
    readme = (ROOTS_DIR / "README.md").read_text("utf-8").replace(":", "").lower()
    assert JLIS_2015 in readme and JLIS_2023 in readme


def test_same_dn_roots_are_told_apart_by_key_id() -> None:
    store = TrustStore.production()
    a2015, a2023 = sorted(store.anchors, key=lambda a: a.not_before)
    assert a2015.subject_der == a2023.subject_der
    assert store.candidates(a2015.subject_der, a2023.key_id)[0] is a2023
    assert store.candidates(a2015.subject_der, a2015.key_id)[0] is a2015
    assert len(store.candidates(a2015.subject_der, None)) == 2
    assert store.candidates(b"\x30\x00", None) == []


def test_demo_anchor_only_in_demo_mode(demo_jlis: DemoJLIS) -> None:
    off = TrustStore.from_directory(ROOTS_DIR, demo_mode=False, demo_ca=[demo_jlis.auth_ca_der])
    on = TrustStore.from_directory(ROOTS_DIR, demo_mode=True, demo_ca=[demo_jlis.auth_ca_der])
    assert off.fingerprints == {JLIS_2015, JLIS_2023}
    assert len(on.anchors) == 3
    assert [a.demo for a in on.anchors].count(True) == 1


def test_demo_ca_among_production_roots_is_refused(demo_jlis: DemoJLIS, tmp_path: Path) -> None:
    roots = tmp_path / "roots"
    shutil.copytree(ROOTS_DIR, roots)
    (roots / "demo.pem").write_bytes(
        demo_jlis.auth_ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    with pytest.raises(ValueError, match="demo CA among the production anchors"):
        TrustStore.from_directory(roots)


def test_load_certificates_reads_pem_der_and_bundles(demo_jlis: DemoJLIS, tmp_path: Path) -> None:
    pem = demo_jlis.auth_ca_cert.public_bytes(serialization.Encoding.PEM)
    pem2 = demo_jlis.sign_ca_cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "a.der").write_bytes(demo_jlis.auth_ca_der)
    (tmp_path / "bundle.crt").write_bytes(pem + pem2)
    (tmp_path / "notes.txt").write_text("not a certificate")
    certs = load_certificates(tmp_path)
    assert [c.subject for c in certs] == [
        demo_jlis.auth_ca_cert.subject,
        demo_jlis.auth_ca_cert.subject,
        demo_jlis.sign_ca_cert.subject,
    ]


def test_an_end_entity_certificate_cannot_be_an_anchor(demo_card: IssuedCard) -> None:
    with pytest.raises(ValueError, match="not a CA certificate"):
        TrustAnchor.from_der(demo_card.auth_cert_der)


def test_demo_card_refused_in_production_mode(
    demo_jlis: DemoJLIS, demo_card: IssuedCard, tmp_path: Path
) -> None:
    production = make_harness(demo_jlis, tmp_path, demo_mode=False)
    with pytest.raises(VerificationError) as refused:
        production.verifier.identify(demo_card.auth_cert_der)
    assert refused.value.reason is Reason.UNTRUSTED_CHAIN
    challenge = production.challenge()
    with pytest.raises(VerificationError) as refused:
        production.verifier.verify_authentication(
            demo_card.auth_cert_der, production.sign(demo_card, challenge), challenge.nonce
        )
    assert refused.value.reason is Reason.UNTRUSTED_CHAIN
    # ...and accepted by the same setup in demo mode.
    demo = make_harness(demo_jlis, tmp_path, demo_mode=True)
    assert demo.verifier.identify(demo_card.auth_cert_der).signed is False


def test_signing_ca_is_never_an_authentication_anchor(
    demo_jlis: DemoJLIS, demo_card: IssuedCard, tmp_path: Path
) -> None:
    harness = make_harness(demo_jlis, tmp_path)
    with pytest.raises(VerificationError) as refused:
        harness.verifier.identify(demo_card.sign_cert_der)
    assert refused.value.reason is Reason.UNTRUSTED_CHAIN


def test_build_verifier_from_settings(demo_jlis: DemoJLIS, demo_card: IssuedCard) -> None:
    settings = {
        "PLATFORM_ORIGIN": TEST_ORIGIN,
        "CARD_KEY_SECRET": TEST_SECRET.decode(),
        "DEMO_MODE": False,
        "DEMO_JLIS_DIR": str(demo_jlis.directory),
        "JPKI_CRL_SOURCES": [str(demo_jlis.directory / "auth.crl")],
    }
    production = build_verifier(settings)
    assert production.trust.fingerprints == {JLIS_2015, JLIS_2023}
    with pytest.raises(VerificationError) as refused:
        production.identify(demo_card.auth_cert_der)
    assert refused.value.reason is Reason.UNTRUSTED_CHAIN

    demo = build_verifier({**settings, "DEMO_MODE": True, "CARD_KEY_SECRET": ""})
    assert demo.identify(demo_card.auth_cert_der).signed is False
    signing_ca = x509.load_der_x509_certificate(demo_jlis.sign_ca_der)
    assert signing_ca.subject not in {a.subject for a in demo.trust.anchors}


def test_build_verifier_needs_a_secret_outside_demo_mode() -> None:
    with pytest.raises(ValueError, match="CARD_KEY_SECRET"):
        build_verifier({"PLATFORM_ORIGIN": TEST_ORIGIN, "DEMO_MODE": False})
