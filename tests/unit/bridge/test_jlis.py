"""The fake J-LIS: certificate and CRL shapes like the real ones, state on disk."""

from __future__ import annotations

import json
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID

from bridge.vcard.jlis import (
    DEFAULT_CRL_URL,
    DemoJLIS,
    IssuedCard,
    fake_my_number,
    fifth_birthday_after,
    is_valid_my_number,
    jpki_birth_date,
    my_number_check_digit,
)
from tests.fixtures.jlis import auth_key, cert_of

JPKI_PD = "1.2.392.200149.8.5.5."


def _utf8(value: bytes) -> str:
    """Decode a DER UTF8String (tag 0C, short or long length)."""
    assert value[0] == 0x0C
    if value[1] < 0x80:
        return value[2:].decode("utf-8")
    n = value[1] & 0x7F
    return value[2 + n :].decode("utf-8")


# --- helpers of the module ----------------------------------------------------------


def test_my_number_check_digit_known_vector() -> None:
    # Worked by hand: sum Pn*Qn for 12345678901 is 212, 212 mod 11 = 3, 11 - 3 = 8.
    assert my_number_check_digit("12345678901") == 8
    assert is_valid_my_number("123456789018")
    assert not is_valid_my_number("123456789017")
    assert not is_valid_my_number("12345678901")
    assert not is_valid_my_number("１２３４５６７８９０１８")  # full-width digits


def test_check_digit_zero_when_remainder_is_0_or_1() -> None:
    # 00000000000 sums to 0 (remainder 0); 00000000005 -> P1 = 5, Q1 = 2: 10 mod 11 = 10
    assert my_number_check_digit("00000000000") == 0
    assert my_number_check_digit("00000000005") == 1
    # P2 = 4 with Q2 = 3 gives 12, remainder 1 -> check digit 0
    assert my_number_check_digit("00000000040") == 0


def test_fake_my_numbers_are_valid_and_random() -> None:
    numbers = {fake_my_number() for _ in range(50)}
    assert len(numbers) == 50
    assert all(is_valid_my_number(n) for n in numbers)


@pytest.mark.parametrize(
    ("issued", "birth", "end"),
    [
        (date(2026, 11, 27), date(1990, 6, 15), date(2031, 6, 15)),
        (date(2026, 11, 27), date(1990, 12, 1), date(2030, 12, 1)),  # 1st is in 4 days
        (date(2026, 11, 27), date(1990, 11, 27), date(2031, 11, 27)),  # issued on birthday
        (date(2026, 11, 26), date(1990, 11, 27), date(2030, 11, 27)),
        (date(2026, 1, 10), date(2000, 2, 29), date(2030, 2, 28)),  # leap day, common year
        (date(2027, 3, 1), date(2000, 2, 29), date(2032, 2, 29)),  # leap day, leap year
    ],
)
def test_fifth_birthday_after_issue(issued: date, birth: date, end: date) -> None:
    assert fifth_birthday_after(issued, birth) == end


@pytest.mark.parametrize(
    ("birth", "coded"),
    [
        (date(1980, 2, 17), "319800217"),
        (date(1989, 1, 7), "319890107"),
        (date(1989, 1, 8), "419890108"),
        (date(2019, 5, 1), "520190501"),
        (date(1920, 5, 5), "219200505"),
    ],
)
def test_jpki_birth_date_has_era_digit_and_gregorian_date(birth: date, coded: str) -> None:
    assert jpki_birth_date(birth) == coded


# --- the directory ------------------------------------------------------------------


def test_init_writes_private_directory(tmp_path: Path) -> None:
    jlis = DemoJLIS.init(tmp_path / "j")
    d = jlis.directory
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for key in ("auth_ca_key.pem", "sign_ca_key.pem"):
        assert stat.S_IMODE((d / key).stat().st_mode) == 0o600
    state = json.loads((d / "state.json").read_text("utf-8"))
    assert state["crl_urls"]["auth"] == DEFAULT_CRL_URL
    assert state["crl_urls"]["sign"].endswith("/demo-jlis/sign.crl")
    for side, ca in (("auth", jlis.auth_ca_cert), ("sign", jlis.sign_ca_cert)):
        crl = x509.load_der_x509_crl((d / f"{side}.crl").read_bytes())
        assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
        assert len(crl) == 0
        assert crl.issuer == ca.subject
    with pytest.raises(FileExistsError):
        DemoJLIS.init(d)


def test_load_round_trips(tmp_path: Path) -> None:
    jlis = DemoJLIS.init(tmp_path / "j", crl_url="http://demo.example/crl/")
    card = jlis.issue()
    jlis.revoke(card.auth_cert_der)
    again = DemoJLIS.load(jlis.directory)
    assert again.auth_ca_der == jlis.auth_ca_der
    assert again.sign_ca_der == jlis.sign_ca_der
    assert again.crl_url("auth") == "http://demo.example/crl/auth.crl"
    assert again.crl_url("sign") == "http://demo.example/crl/sign.crl"
    assert cert_of(card.auth_cert_der).serial_number in again.revoked_serials("auth")
    # a card issued after loading chains to the same CA
    cert_of(again.issue().auth_cert_der).verify_directly_issued_by(jlis.auth_ca_cert)


def test_load_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a demo J-LIS"):
        DemoJLIS.load(tmp_path)


# --- CA certificates ----------------------------------------------------------------


def _assert_rsa2048_sha256(cert: x509.Certificate) -> None:
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 2048
    assert key.public_numbers().e == 65537
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256


@pytest.mark.parametrize(
    ("side", "unit"),
    [
        ("auth", "JPKI for user authentication (DEMO)"),
        ("sign", "JPKI for digital signature (DEMO)"),
    ],
)
def test_ca_certificates_are_shaped_like_jlis_but_say_demo(
    demo_jlis: DemoJLIS, side: str, unit: str
) -> None:
    ca = demo_jlis.auth_ca_cert if side == "auth" else demo_jlis.sign_ca_cert
    _assert_rsa2048_sha256(ca)
    assert ca.subject == ca.issuer
    assert ca.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "JP"
    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "JPKI"
    units = [a.value for a in ca.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert units == [unit, "Ichimai demo J-LIS - not for production"]
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    ca.verify_directly_issued_by(ca)


# --- issued cards -------------------------------------------------------------------


def test_auth_certificate_shape(demo_card: IssuedCard, demo_jlis: DemoJLIS) -> None:
    cert = cert_of(demo_card.auth_cert_der)
    _assert_rsa2048_sha256(cert)
    cert.verify_directly_issued_by(demo_jlis.auth_ca_cert)
    assert demo_card.auth_ca_der == demo_jlis.auth_ca_der
    # Only an opaque CN: no name, no locality, nothing of the holder.
    attrs = list(cert.subject)
    assert [a.oid for a in attrs] == [NameOID.COMMON_NAME]
    cn = str(attrs[0].value)
    assert len(cn) >= 16 and cn.isalnum() and cn.isascii()
    assert demo_card.holder["name"] not in cn and demo_card.my_number not in cn
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert not ku.value.key_cert_sign and not ku.value.content_commitment
    dps = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in dps[0].full_name or []] == [DEFAULT_CRL_URL]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert 0 < cert.serial_number < 2**63  # positive, 8 bytes as DER INTEGER content


def test_signing_certificate_carries_fake_personal_data(
    demo_card: IssuedCard, demo_jlis: DemoJLIS
) -> None:
    cert = cert_of(demo_card.sign_cert_der)
    _assert_rsa2048_sha256(cert)
    cert.verify_directly_issued_by(demo_jlis.sign_ca_cert)
    assert [a.oid for a in cert.subject] == [NameOID.COMMON_NAME]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    values = {
        n.type_id.dotted_string: _utf8(n.value) for n in san.get_values_for_type(x509.OtherName)
    }
    assert sorted(values) == [JPKI_PD + str(i) for i in range(1, 7)]
    holder = demo_card.holder
    assert values[JPKI_PD + "1"] == holder["name"]
    assert values[JPKI_PD + "3"] == holder["sex"] in ("1", "2")
    assert values[JPKI_PD + "4"] == jpki_birth_date(date.fromisoformat(holder["birth_date"]))
    assert values[JPKI_PD + "5"] == holder["address"]
    dps = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in dps[0].full_name or []] == [DEFAULT_CRL_URL.replace("auth", "sign")]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment


def test_issued_card_fields(demo_card: IssuedCard) -> None:
    assert is_valid_my_number(demo_card.my_number)
    assert set(demo_card.holder) == {"name", "address", "birth_date", "sex"}
    assert "デモ" in demo_card.holder["address"]  # visibly fake
    for cert_der, key_pem in (
        (demo_card.auth_cert_der, demo_card.auth_key_pem),
        (demo_card.sign_cert_der, demo_card.sign_key_pem),
    ):
        key = serialization.load_pem_private_key(key_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.public_key() == cert_of(cert_der).public_key()
    assert demo_card.auth_key_pem != demo_card.sign_key_pem


def test_validity_runs_to_the_fifth_birthday(demo_jlis: DemoJLIS) -> None:
    issued_at = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 12:00 JST
    card = demo_jlis.issue(birth_date=date(1990, 6, 15), not_before=issued_at)
    for der in (card.auth_cert_der, card.sign_cert_der):
        cert = cert_of(der)
        assert cert.not_valid_before_utc == issued_at
        # 2031-06-15 23:59:59 JST
        assert cert.not_valid_after_utc == datetime(2031, 6, 15, 14, 59, 59, tzinfo=UTC)
    assert card.holder["birth_date"] == "1990-06-15"


def test_explicit_validity_and_distinct_serials(demo_jlis: DemoJLIS) -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    end = datetime(2021, 1, 1, tzinfo=UTC)
    a = demo_jlis.issue(not_before=start, not_after=end)
    b = demo_jlis.issue(not_before=start, not_after=end)
    ca, cb = cert_of(a.auth_cert_der), cert_of(b.auth_cert_der)
    assert (ca.not_valid_before_utc, ca.not_valid_after_utc) == (start, end)
    assert len({ca.serial_number, cb.serial_number}) == 2
    assert ca.subject != cb.subject


def test_auth_key_signs_like_the_card(demo_card: IssuedCard) -> None:
    data = b"challenge"
    signature = auth_key(demo_card).sign(data, padding.PKCS1v15(), hashes.SHA256())
    assert len(signature) == 256
    cert_of(demo_card.auth_cert_der).public_key().verify(  # type: ignore[call-arg]
        signature,
        data,
        padding.PKCS1v15(),  # type: ignore[arg-type]
        hashes.SHA256(),  # type: ignore[arg-type]
    )


# --- revocation and CRLs ------------------------------------------------------------


def test_revoke_republishes_both_crls(private_jlis: DemoJLIS) -> None:
    card = private_jlis.issue()
    before = x509.load_der_x509_crl(private_jlis.auth_crl_der())
    private_jlis.revoke(card.auth_cert_der, card.sign_cert_der)
    for side, der, ca in (
        ("auth", card.auth_cert_der, private_jlis.auth_ca_cert),
        ("sign", card.sign_cert_der, private_jlis.sign_ca_cert),
    ):
        crl = x509.load_der_x509_crl((private_jlis.directory / f"{side}.crl").read_bytes())
        assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
        serial = cert_of(der).serial_number
        assert [r.serial_number for r in crl] == [serial]
        assert crl.get_revoked_certificate_by_serial_number(serial) is not None
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        old = before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        assert number > old


def test_revoke_refuses_a_certificate_of_another_ca(
    private_jlis: DemoJLIS, demo_card: IssuedCard
) -> None:
    with pytest.raises(ValueError, match="not a certificate of this demo auth CA"):
        private_jlis.revoke(demo_card.auth_cert_der)
    card = private_jlis.issue()
    with pytest.raises(ValueError, match="sign CA"):
        private_jlis.revoke(card.auth_cert_der, card.auth_cert_der)  # auth cert as signing


def test_crl_dates_are_configurable(tmp_path: Path) -> None:
    jlis = DemoJLIS.init(tmp_path / "j", crl_validity=timedelta(hours=6))
    crl = x509.load_der_x509_crl(jlis.auth_crl_der())
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == timedelta(hours=6)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    jlis.publish_crls(this_update=start, next_update=start + timedelta(minutes=5))
    crl = x509.load_der_x509_crl(jlis.auth_crl_der())
    assert (crl.last_update_utc, crl.next_update_utc) == (start, start + timedelta(minutes=5))


def test_crl_der_matches_cryptography_reading(demo_jlis: DemoJLIS) -> None:
    extra = [1, 127, 128, 255, 256, 2**63 - 1, 2**64, 2**159 - 1]
    der = demo_jlis.crl_der("auth", extra_serials=extra, crl_number=42)
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(demo_jlis.auth_ca_cert.public_key())  # type: ignore[arg-type]
    assert {r.serial_number for r in crl} >= set(extra)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = demo_jlis.auth_ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == ski.value.digest
