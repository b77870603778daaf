"""A FAKE J-LIS (地方公共団体情報システム機構) for demos and tests. NOT FOR PRODUCTION.

It plays the certificate authority side of JPKI (公的個人認証サービス) so that virtual
cards can carry certificates shaped like the real ones: a demo "JPKI for user
authentication" CA that issues 利用者証明用電子証明書 (opaque CN, nothing personal), a
demo "JPKI for digital signature" CA that issues 署名用電子証明書 (fake name, address,
birth date and sex in SAN otherName, OIDs 1.2.392.200149.8.5.5.1-.6), and the CRLs of
both. Every DN says DEMO and "not for production" so that nobody mistakes its output for
a citizen's certificate; the platform refuses these CAs unless demo mode is on.

Everything lives in one directory (mode 0700): the CA keys (0600, unencrypted PEM: it is
a demo), the CA certificates, `auth.crl`/`sign.crl` (DER, re-published on every
revocation) and a small JSON state file. Shapes follow shared/docs/jpki-card.md
(Certificates and revocation): RSA-2048, e = 65537, sha256WithRSAEncryption, validity
to the holder's 5th birthday after issue, random positive 8-byte serials.

Renewal (更新) and replacement of a lost card (再発行) issue new keys and certificates
to the same holder, revoke the old ones with CRLReason superseded or keyCompromise, and
append the pair to `linkage.json` (電子証明書の新旧紐付け: old issuer + serial -> new
issuer + serial, with dates), signed by a linkage key of its own (`linkage_signer.pem`
is what a platform trusts for it). The platform turns each pair into card keys.

CRLs are encoded here directly in DER (the same bytes cryptography's builder would
produce) because the builder copies its list on every added entry, which makes a
1,000,000-entry CRL for a benchmark take minutes; `crl_der` builds one in ~2 s.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

Side = Literal["auth", "sign"]

JST = timezone(timedelta(hours=9), "JST")
DEFAULT_CRL_URL = "http://127.0.0.1:5000/demo-jlis/auth.crl"
DEFAULT_CRL_VALIDITY = timedelta(days=1)
STATE_FORMAT = "ichimai-demo-jlis/1"
DEMO_MARK = "Ichimai demo J-LIS - not for production"
LINKAGE_FORMAT = "ichimai-demo-jlis-linkage/1"
LINKAGE_FILE = "linkage.json"  # every old -> new certificate pair, signed
LINKAGE_KEY_FILE = "linkage_key.pem"
LINKAGE_SIGNER_FILE = "linkage_signer.pem"  # the platform trusts this for linkage only

# JPKI certificate policies (auth class 30, signing class 20), as on the real cards.
OID_POLICY_AUTH = ObjectIdentifier("1.2.392.200149.8.5.1.3.30")
OID_POLICY_SIGN = ObjectIdentifier("1.2.392.200149.8.5.1.1.20")
# SAN otherName OIDs of the signing certificate (J-LIS personal data arc).
OID_NAME = ObjectIdentifier("1.2.392.200149.8.5.5.1")
OID_NAME_SUBSTITUTES = ObjectIdentifier("1.2.392.200149.8.5.5.2")
OID_SEX = ObjectIdentifier("1.2.392.200149.8.5.5.3")
OID_BIRTH_DATE = ObjectIdentifier("1.2.392.200149.8.5.5.4")
OID_ADDRESS = ObjectIdentifier("1.2.392.200149.8.5.5.5")
OID_ADDRESS_SUBSTITUTES = ObjectIdentifier("1.2.392.200149.8.5.5.6")

_FAMILY = ["山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村", "小林", "加藤"]
_GIVEN_M = ["太郎", "一郎", "健太", "大輔", "翔"]
_GIVEN_F = ["花子", "陽子", "美咲", "結衣", "さくら"]
_TOWNS = ["デモ市一枚町", "デモ市図書館通り", "デモ区見本町", "デモ郡試験村"]
_PREFS = ["東京都", "大阪府", "北海道", "福岡県", "愛知県"]


@dataclass(frozen=True)
class IssuedCard:
    """What the fake J-LIS hands a virtual card: both JPKI key pairs and certificates."""

    auth_cert_der: bytes
    auth_key_pem: bytes
    auth_ca_der: bytes
    sign_cert_der: bytes
    sign_key_pem: bytes
    sign_ca_der: bytes
    my_number: str
    holder: dict[str, str]


@dataclass
class _CA:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    crl_url: str

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


# --- small helpers -----------------------------------------------------------------


def my_number_check_digit(first11: str) -> int:
    """The check digit of a 12-digit My Number (個人番号) from its first 11 digits.

    The rule published with the My Number Act's enforcement ordinances: with Pn the n-th
    digit from the right and Qn = n+1 (n <= 6) or n-5 (n >= 7), the check digit is
    11 - (sum Pn*Qn mod 11), or 0 when that remainder is 0 or 1.
    """
    if len(first11) != 11 or not first11.isdigit():
        raise ValueError("expected 11 digits")
    total = sum(int(first11[-n]) * (n + 1 if n <= 6 else n - 5) for n in range(1, 12))
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_valid_my_number(number: str) -> bool:
    """True when `number` is 12 ASCII digits with a correct check digit."""
    return (
        len(number) == 12
        and number.isascii()
        and number.isdigit()
        and my_number_check_digit(number[:11]) == int(number[11])
    )


def fake_my_number() -> str:
    """A random 12-digit My Number with a valid check digit (fake, for demos)."""
    first11 = "".join(str(secrets.randbelow(10)) for _ in range(11))
    return first11 + str(my_number_check_digit(first11))


def _birthday_in(year: int, birth: date) -> date:
    try:
        return birth.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 2, 28)


def fifth_birthday_after(issued: date, birth: date) -> date:
    """The holder's 5th birthday strictly after the issue date (the certificates' end)."""
    first = _birthday_in(issued.year, birth)
    if first <= issued:
        first = _birthday_in(issued.year + 1, birth)
    return _birthday_in(first.year + 4, birth)


def jpki_birth_date(birth: date) -> str:
    """Birth date as the signing certificate writes it: era digit + Gregorian YYYYMMDD."""
    eras = [(date(2019, 5, 1), "5"), (date(1989, 1, 8), "4"), (date(1926, 12, 25), "3")]
    eras += [(date(1912, 7, 30), "2"), (date(1868, 10, 23), "1")]
    era = next((digit for start, digit in eras if birth >= start), "0")
    return era + birth.strftime("%Y%m%d")


def _random_serial() -> int:
    """A random positive 8-byte serial (top bit clear keeps the DER INTEGER at 8 bytes)."""
    return secrets.randbits(63) | (1 << 56)


def _random_birth_date() -> date:
    start = date(1940, 1, 1).toordinal()
    return date.fromordinal(start + secrets.randbelow(date(2008, 12, 31).toordinal() - start))


def _fake_holder(birth: date) -> dict[str, str]:
    sex = secrets.choice(["1", "2"])  # JPKI codes: 1 male, 2 female
    given = secrets.choice(_GIVEN_M if sex == "1" else _GIVEN_F)
    chome, ban, go = 1 + secrets.randbelow(9), 1 + secrets.randbelow(30), 1 + secrets.randbelow(20)
    block = f"{chome}丁目{ban}番{go}号"
    return {
        "name": f"{secrets.choice(_FAMILY)}\u3000{given}",
        "address": f"{secrets.choice(_PREFS)}{secrets.choice(_TOWNS)}{block}",
        "birth_date": birth.isoformat(),
        "sex": sex,
    }


def _ca_name(side: Side) -> x509.Name:
    unit = (
        "JPKI for user authentication (DEMO)"
        if side == "auth"
        else "JPKI for digital signature (DEMO)"
    )
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DEMO_MARK),
        ]
    )


def _opaque_name() -> x509.Name:
    # The real user-authentication subject is an opaque CN only: no name, no locality.
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, secrets.token_hex(12).upper())])


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _sibling_urls(crl_url: str | None) -> tuple[str, str]:
    """(auth, sign) CRL URLs: a URL ending in .crl names the auth CRL, else it is a base."""
    url = crl_url or DEFAULT_CRL_URL
    if url.endswith(".crl"):
        base = url.rsplit("/", 1)[0]
        return url, f"{base}/sign.crl"
    base = url.rstrip("/")
    return f"{base}/auth.crl", f"{base}/sign.crl"


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- DER for CRLs (RFC 5280 section 5.1) --------------------------------------------


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(value)) + value


def _der_int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _der_time(moment: datetime) -> bytes:
    # RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    moment = moment.astimezone(UTC)
    if moment.year < 2050:
        return _tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode())
    return _tlv(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode())


_SHA256_RSA = _tlv(0x30, _tlv(0x06, bytes.fromhex("2a864886f70d01010b")) + b"\x05\x00")


def _extension(oid_der: bytes, value: bytes) -> bytes:
    return _tlv(0x30, _tlv(0x06, oid_der) + _tlv(0x04, value))


# CRLReason (RFC 5280 5.3.1) values the fake J-LIS writes.
REASON_KEY_COMPROMISE = 1  # a lost or stolen card (再発行)
REASON_SUPERSEDED = 4  # a renewed certificate (更新)
REASONS = {"key_compromise": REASON_KEY_COMPROMISE, "superseded": REASON_SUPERSEDED}


def _crl_entry(serial: int, when: datetime, reason: int | None) -> bytes:
    if reason is None:
        return _tlv(0x30, _der_int(serial) + _der_time(when))
    # crlEntryExtensions: reasonCode (2.5.29.21), an ENUMERATED in an OCTET STRING
    code = _extension(bytes.fromhex("551d15"), _tlv(0x0A, bytes([reason])))
    return _tlv(0x30, _der_int(serial) + _der_time(when) + _tlv(0x30, code))


def build_crl_der(
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    entries: Iterable[tuple[int, datetime] | tuple[int, datetime, int | None]],
    *,
    this_update: datetime,
    next_update: datetime | None,
    crl_number: int,
    extra_serials: Iterable[int] = (),
) -> bytes:
    """A v2 CRL signed by `ca_key` (sha256WithRSA) with crlNumber and AKI extensions.

    An entry is (serial, when) or (serial, when, CRLReason or None);
    `extra_serials` are all revoked at `this_update` (bulk entries for benchmarks);
    `next_update=None` leaves nextUpdate out (X.509 allows it, RFC 5280 does not).
    """
    parts = [
        _crl_entry(entry[0], entry[1], entry[2] if len(entry) > 2 else None) for entry in entries
    ]
    bulk_date = _der_time(this_update)
    parts.extend(_tlv(0x30, _der_int(serial) + bulk_date) for serial in extra_serials)
    revoked = _tlv(0x30, b"".join(parts)) if parts else b""
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    extensions = _extension(bytes.fromhex("551d14"), _der_int(crl_number))  # cRLNumber
    extensions += _extension(bytes.fromhex("551d23"), _tlv(0x30, _tlv(0x80, ski)))  # AKI
    tbs = _tlv(
        0x30,
        _der_int(1)  # v2
        + _SHA256_RSA
        + ca_cert.subject.public_bytes()
        + _der_time(this_update)
        + (_der_time(next_update) if next_update is not None else b"")
        + revoked
        + _tlv(0xA0, _tlv(0x30, extensions)),
    )
    signature = ca_key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    return _tlv(0x30, tbs + _SHA256_RSA + _tlv(0x03, b"\x00" + signature))


# --- the fake J-LIS -----------------------------------------------------------------


class DemoJLIS:
    """A fake J-LIS with a user-authentication CA and a signing CA in one directory."""

    def __init__(self, directory: Path, auth: _CA, sign: _CA, state: dict[str, Any]) -> None:
        self.directory = directory
        self._ca: dict[Side, _CA] = {"auth": auth, "sign": sign}
        self._state = state

    # creation and loading

    @classmethod
    def init(
        cls,
        directory: Path,
        *,
        crl_url: str | None = None,
        crl_validity: timedelta = DEFAULT_CRL_VALIDITY,
    ) -> DemoJLIS:
        """Create both demo CAs, empty CRLs and the state file in `directory` (mode 0700).

        `crl_url` is the auth CRL URL (".../auth.crl"; the signing one is its sibling
        "sign.crl") or a base URL to which "/auth.crl" and "/sign.crl" are appended.
        """
        directory = Path(directory)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        if (directory / "state.json").exists():
            raise FileExistsError(f"a demo J-LIS already lives in {directory}")
        auth_url, sign_url = _sibling_urls(crl_url)
        now = datetime.now(UTC).replace(microsecond=0)
        cas: dict[Side, _CA] = {}
        sides: tuple[tuple[Side, str], ...] = (("auth", auth_url), ("sign", sign_url))
        for side, url in sides:
            key = _new_key()
            cas[side] = _CA(key, _self_signed_ca(key, _ca_name(side), now), url)
            _atomic_write(directory / f"{side}_ca_key.pem", _key_pem(key), 0o600)
            _atomic_write(
                directory / f"{side}_ca.pem",
                cas[side].cert.public_bytes(serialization.Encoding.PEM),
            )
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "crl_urls": {"auth": auth_url, "sign": sign_url},
            "crl_validity_s": int(crl_validity.total_seconds()),
            "crl_number": 0,
            "revoked": {"auth": {}, "sign": {}},
        }
        jlis = cls(directory, cas["auth"], cas["sign"], state)
        jlis.publish_crls()
        return jlis

    @classmethod
    def load(cls, directory: Path) -> DemoJLIS:
        """Open a demo J-LIS created by `init`."""
        directory = Path(directory)
        state = json.loads((directory / "state.json").read_text("utf-8"))
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a demo J-LIS state file: {directory / 'state.json'}")
        cas: dict[Side, _CA] = {}
        for side in ("auth", "sign"):
            key = serialization.load_pem_private_key(
                (directory / f"{side}_ca_key.pem").read_bytes(), password=None
            )
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError("demo J-LIS keys are RSA")
            cert = x509.load_pem_x509_certificate((directory / f"{side}_ca.pem").read_bytes())
            cas[side] = _CA(key, cert, state["crl_urls"][side])
        return cls(directory, cas["auth"], cas["sign"], state)

    # public data

    @property
    def auth_ca_der(self) -> bytes:
        """The demo user-authentication CA certificate (DER): the demo trust anchor."""
        return self._ca["auth"].der

    @property
    def sign_ca_der(self) -> bytes:
        """The demo signing CA certificate (DER)."""
        return self._ca["sign"].der

    @property
    def auth_ca_cert(self) -> x509.Certificate:
        """The demo user-authentication CA certificate."""
        return self._ca["auth"].cert

    @property
    def sign_ca_cert(self) -> x509.Certificate:
        """The demo signing CA certificate."""
        return self._ca["sign"].cert

    def crl_url(self, side: Side = "auth") -> str:
        """The CRL distribution point URL written into this side's certificates."""
        return self._ca[side].crl_url

    @property
    def crl_validity(self) -> timedelta:
        """How long a published CRL stays fresh (nextUpdate - thisUpdate)."""
        return timedelta(seconds=self._state["crl_validity_s"])

    # issuing

    def issue(
        self,
        *,
        birth_date: date | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        holder: dict[str, str] | None = None,
        my_number: str | None = None,
    ) -> IssuedCard:
        """Issue a card's two key pairs and certificates to a fake holder (or to `holder`,
        with `my_number`: a renewal or a replacement card for the same person)."""
        if holder is not None:
            birth_date = date.fromisoformat(holder["birth_date"])
        birth = birth_date or _random_birth_date()
        start = (not_before or datetime.now(UTC)).replace(microsecond=0)
        if not_after is None:
            last_day = fifth_birthday_after(start.astimezone(JST).date(), birth)
            end = datetime.combine(last_day, time(23, 59, 59), JST).astimezone(UTC)
        else:
            end = not_after
        holder = dict(holder) if holder is not None else _fake_holder(birth)
        auth_key, sign_key = _new_key(), _new_key()
        auth_cert = self.issue_auth_certificate(
            auth_key.public_key(), not_before=start, not_after=end
        )
        sign_cert = self._issue_sign_certificate(sign_key.public_key(), holder, start, end)
        return IssuedCard(
            auth_cert_der=auth_cert,
            auth_key_pem=_key_pem(auth_key),
            auth_ca_der=self.auth_ca_der,
            sign_cert_der=sign_cert,
            sign_key_pem=_key_pem(sign_key),
            sign_ca_der=self.sign_ca_der,
            my_number=my_number or fake_my_number(),
            holder=holder,
        )

    # renewal and replacement (電子証明書の更新・再発行) and their linkage

    def renew(self, old: PreviousCard, **issue_options: Any) -> IssuedCard:
        """A renewed card for the holder of `old`: new keys and serials; the old
        certificates are revoked as superseded and the pair goes into the linkage file."""
        return self._succeed(old, "renewal", REASON_SUPERSEDED, issue_options)

    def reissue(self, old: PreviousCard, **issue_options: Any) -> IssuedCard:
        """A replacement for a lost card: the old certificates are revoked for key
        compromise (whoever holds the old card must never use it again)."""
        return self._succeed(old, "reissue", REASON_KEY_COMPROMISE, issue_options)

    def _succeed(
        self, old: PreviousCard, kind: str, reason: int, issue_options: dict[str, Any]
    ) -> IssuedCard:
        old_auth = x509.load_der_x509_certificate(old.auth_cert_der)
        try:
            old_auth.verify_directly_issued_by(self._ca["auth"].cert)
        except Exception as exc:
            raise ValueError("the old card was not issued by this demo J-LIS") from exc
        if str(old_auth.serial_number) in self._state["revoked"]["auth"]:
            raise ValueError("the old card's certificate is already revoked")
        issued = self.issue(holder=old.holder, my_number=old.my_number, **issue_options)
        new_auth = x509.load_der_x509_certificate(issued.auth_cert_der)
        self.revoke(old.auth_cert_der, old.sign_cert_der, reason=reason, publish=False)
        entries = self._state.setdefault("linkage", [])
        entries.append(
            {
                "kind": kind,
                "at": datetime.now(UTC).replace(microsecond=0).isoformat(),
                "old": _linkage_side(old_auth),
                "new": _linkage_side(new_auth),
            }
        )
        self.publish_crls()  # also saves the state
        self.publish_linkage()
        return issued

    def linkage_signer(self) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
        """The key that signs the linkage file, and its (self-signed) certificate: a role
        of its own, apart from the CAs (created at the first renewal)."""
        key_path = self.directory / LINKAGE_KEY_FILE
        cert_path = self.directory / LINKAGE_SIGNER_FILE
        if not key_path.exists():
            key = _new_key()
            name = x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI"),
                    x509.NameAttribute(
                        NameOID.ORGANIZATIONAL_UNIT_NAME, "certificate linkage (DEMO)"
                    ),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DEMO_MARK),
                ]
            )
            cert = _self_signed_ca(key, name, datetime.now(UTC).replace(microsecond=0))
            _atomic_write(key_path, _key_pem(key), 0o600)
            _atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError("the demo linkage key is RSA")
        return loaded, x509.load_pem_x509_certificate(cert_path.read_bytes())

    def linkage_document(self) -> dict[str, Any]:
        """Every old -> new pair so far, signed (see `sign_linkage`)."""
        key, _cert = self.linkage_signer()
        body = {
            "format": LINKAGE_FORMAT,
            "notice": DEMO_MARK,
            "published_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "entries": list(self._state.get("linkage", [])),
        }
        return sign_linkage(body, key)

    def publish_linkage(self) -> Path:
        """Write DIR/linkage.json (the whole signed list, re-signed on every change)."""
        path = self.directory / LINKAGE_FILE
        document = self.linkage_document()
        _atomic_write(path, json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8"))
        return path

    def issue_auth_certificate(
        self, public_key: rsa.RSAPublicKey, *, not_before: datetime, not_after: datetime
    ) -> bytes:
        """A user-authentication certificate (DER) for `public_key` (benches reuse keys)."""
        ca = self._ca["auth"]
        builder = self._leaf_builder(ca, public_key, not_before, not_after)
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        ).add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(OID_POLICY_AUTH, None)]),
            critical=True,
        )
        return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def _issue_sign_certificate(
        self,
        public_key: rsa.RSAPublicKey,
        holder: dict[str, str],
        not_before: datetime,
        not_after: datetime,
    ) -> bytes:
        ca = self._ca["sign"]
        birth = jpki_birth_date(date.fromisoformat(holder["birth_date"]))
        values = [
            (OID_NAME, holder["name"]),
            (OID_BIRTH_DATE, birth),
            (OID_SEX, holder["sex"]),
            (OID_ADDRESS, holder["address"]),
            (OID_NAME_SUBSTITUTES, "00000"),
            (OID_ADDRESS_SUBSTITUTES, "0" * 22),
        ]
        san = x509.SubjectAlternativeName(
            [x509.OtherName(oid, _tlv(0x0C, text.encode("utf-8"))) for oid, text in values]
        )
        builder = self._leaf_builder(ca, public_key, not_before, not_after)
        builder = (
            builder.add_extension(
                x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(
                x509.CertificatePolicies([x509.PolicyInformation(OID_POLICY_SIGN, None)]),
                critical=True,
            )
            .add_extension(san, critical=False)
        )
        return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    @staticmethod
    def _leaf_builder(
        ca: _CA, public_key: rsa.RSAPublicKey, not_before: datetime, not_after: datetime
    ) -> x509.CertificateBuilder:
        dp = x509.DistributionPoint([x509.UniformResourceIdentifier(ca.crl_url)], None, None, None)
        return (
            x509.CertificateBuilder()
            .subject_name(_opaque_name())
            .issuer_name(ca.cert.subject)
            .public_key(public_key)
            .serial_number(_random_serial())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.CRLDistributionPoints([dp]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )

    # revocation

    def revoke(
        self,
        auth_cert_der: bytes,
        sign_cert_der: bytes | None = None,
        *,
        reason: int | None = None,
        publish: bool = True,
    ) -> None:
        """Revoke a card's certificates (a lost card) and re-publish both CRLs.

        `reason` is the CRLReason written into the entries (none by default)."""
        now = datetime.now(UTC).replace(microsecond=0)
        pairs: list[tuple[Side, bytes]] = [("auth", auth_cert_der)]
        if sign_cert_der is not None:
            pairs.append(("sign", sign_cert_der))
        for side, der in pairs:
            cert = x509.load_der_x509_certificate(der)
            try:
                cert.verify_directly_issued_by(self._ca[side].cert)
            except Exception as exc:  # wrong issuer name or signature
                raise ValueError(f"not a certificate of this demo {side} CA") from exc
            self._state["revoked"][side][str(cert.serial_number)] = now.isoformat()
            if reason is not None:
                self._state.setdefault("reasons", {}).setdefault(side, {})[
                    str(cert.serial_number)
                ] = reason
        if publish:
            self.publish_crls()

    def revoked_serials(self, side: Side = "auth") -> frozenset[int]:
        """Serial numbers revoked so far on one side."""
        return frozenset(int(s) for s in self._state["revoked"][side])

    def crl_der(
        self,
        side: Side = "auth",
        *,
        this_update: datetime | None = None,
        next_update: datetime | None = None,
        extra_serials: Iterable[int] = (),
        crl_number: int | None = None,
    ) -> bytes:
        """Build (without publishing) a CRL of this side's revocations plus `extra_serials`."""
        ca = self._ca[side]
        start = (this_update or datetime.now(UTC)).replace(microsecond=0)
        end = next_update or start + self.crl_validity
        reasons = self._state.get("reasons", {}).get(side, {})
        entries = [
            (int(serial), datetime.fromisoformat(when), reasons.get(serial))
            for serial, when in self._state["revoked"][side].items()
        ]
        return build_crl_der(
            ca.key,
            ca.cert,
            entries,
            this_update=start,
            next_update=end,
            crl_number=self._state["crl_number"] if crl_number is None else crl_number,
            extra_serials=extra_serials,
        )

    def publish_crls(
        self, *, this_update: datetime | None = None, next_update: datetime | None = None
    ) -> None:
        """Write fresh DIR/auth.crl and DIR/sign.crl and bump the CRL number."""
        self._state["crl_number"] += 1
        for side in ("auth", "sign"):
            der = self.crl_der(side, this_update=this_update, next_update=next_update)
            _atomic_write(self.directory / f"{side}.crl", der)
        _atomic_write(
            self.directory / "state.json",
            json.dumps(self._state, indent=1, ensure_ascii=False).encode("utf-8"),
            0o600,
        )

    def auth_crl_der(self) -> bytes:
        """The published user-authentication CRL (DIR/auth.crl)."""
        return (self.directory / "auth.crl").read_bytes()

    def sign_crl_der(self) -> bytes:
        """The published signing CRL (DIR/sign.crl)."""
        return (self.directory / "sign.crl").read_bytes()


class PreviousCard(Protocol):
    """What a renewal needs of the old card (a CardData has it)."""

    @property
    def auth_cert_der(self) -> bytes: ...
    @property
    def sign_cert_der(self) -> bytes: ...
    @property
    def my_number(self) -> str: ...
    @property
    def holder(self) -> dict[str, str]: ...


def _linkage_side(cert: x509.Certificate) -> dict[str, str]:
    """Issuer Name DER (base64) and serial INTEGER content (hex), as the card key is made
    of them (webapp/jpki/cardkey.py), with the certificate's end of validity."""
    return {
        "issuer": base64.b64encode(cert.issuer.public_bytes()).decode("ascii"),
        "serial": _der_int(cert.serial_number)[2:].hex(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def linkage_payload(body: dict[str, Any]) -> bytes:
    """The bytes a linkage signature covers: the body as canonical JSON."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_linkage(body: dict[str, Any], key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """The body with its signature (RSA PKCS#1 v1.5, SHA-256, over `linkage_payload`)."""
    signature = key.sign(linkage_payload(body), padding.PKCS1v15(), hashes.SHA256())
    return {"body": body, "signature": base64.b64encode(signature).decode("ascii")}


def _self_signed_ca(key: rsa.RSAPrivateKey, name: x509.Name, now: datetime) -> x509.Certificate:
    """A 10-year self-signed CA certificate shaped like the J-LIS roots."""
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(_random_serial())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3652))
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
