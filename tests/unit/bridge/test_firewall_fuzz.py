"""Property: whatever APDU sequences reach the firewall, the card gives nothing away.

Random bytes, structured commands, mutations of the driver's real commands and of
known-dangerous ones go through the firewall to the virtual card (which has every
quirk of the real one). No response may carry the fake My Number (ASCII or BCD), the
signing certificate or the signing CA certificate, the token info, or anything of the
other applets, nor a signature made with the signing key; no PIN counter may move; and
no command may reach any applet but JPKI-AP (or the ISD, which is only ever told to
SELECT JPKI-AP).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.apdu import Command, MalformedAPDU, Response, parse_command, parse_response
from bridge.errors import CommandRefused
from bridge.firewall import Firewall, filter_batch, run_sealed_verify
from bridge.jpki import sha256_digest_info
from bridge.transport import Step
from bridge.vcard.applets import build_applets
from bridge.vcard.card import VirtualCard
from tests.fixtures.cards import DemoCard

AIDS = [
    bytes.fromhex(a)
    for a in (
        "D392F000260100000001",
        "D3921000310001010408",
        "D3921000310001010402",
        "D3921000310001010401",
        "D3921000310001010100",
        "A0000001510000",
    )
]
AID_VARIANTS = [aid[:n] for aid in AIDS for n in range(5, len(aid) + 1)] + [
    AIDS[0] + b"\x00",
    AIDS[0][:-1] + b"\x02",
]
FIDS = [
    bytes.fromhex(f)
    for f in ("000A", "000B", "0017", "0018", "0001", "0002", "0006", "0008", "001A", "001B")
] + [bytes.fromhex("0011"), bytes.fromhex("3F00")]
DIGEST_INFO = sha256_digest_info(b"nonce")

REAL = [
    "00A4040C0AD392F000260100000001",
    "00A4020C02000A",
    "00A4020C02000B",
    "00A4020C020017",
    "00A4020C020018",
    "00B0000000",
    "00B0010000",
    "00B0000004",
    "00B0000000FFFF",
    "00200080",
    "802A008033" + DIGEST_INFO.hex() + "00",
]
DANGEROUS = [
    "00A4040C05D392100031",
    "00A4040C0AD3921000310001010408",
    "00A4040C0AD3921000310001010100",
    "00A4040C0AD392F00026010000000100",
    "00A4040C00000AD392F000260100000001",
    "00A40000",
    "00A4000C023F00",
    "00A4020C020001",
    "00A4020C020006",
    "00A4020C020011",
    "00A4020C023F00",
    "00B0810000",
    "00B0860000",
    "00B0820000",
    "0020008004" + b"1234".hex(),
    "0020009104" + b"1234".hex(),
    "0020009B06" + b"ABC123".hex(),
    "0020009B",
    "802A009A33" + DIGEST_INFO.hex() + "00",
    "00CA006600",
    "80CA9F7F00",
    "0024018004" + b"0000".hex(),
    "0084000008",
    "0088000020" + "00" * 32 + "00",
    "01A4040C0AD3921000310001010408",
    "0CB0810000",
]


def _structured() -> st.SearchStrategy[bytes]:
    byte = st.integers(0, 255)
    cla = st.sampled_from([0x00, 0x80, 0x01, 0x03, 0x04, 0x08, 0x0C, 0x10, 0x40, 0x84]) | byte
    ins = st.sampled_from([0xA4, 0xB0, 0x20, 0x2A, 0xCA, 0x88, 0x84, 0x24, 0xA2, 0xAE, 0xD6]) | byte
    p = st.sampled_from([0x00, 0x01, 0x02, 0x04, 0x0C, 0x80, 0x81, 0x86, 0x91, 0x9A, 0x9B]) | byte
    data = st.sampled_from([b"", *AID_VARIANTS, *FIDS, b"1234", b"ABC123", DIGEST_INFO]) | (
        st.binary(max_size=80)
    )
    le = st.none() | st.sampled_from([1, 4, 8, 255, 256, 257, 65536]) | st.integers(1, 65536)
    return st.builds(lambda *a: Command(*a).encode(), cla, ins, p, p, data, le, st.booleans())


Mutation = Callable[[bytes], bytes]


def _mutation() -> st.SearchStrategy[Mutation]:
    i, v = st.integers(0, 300), st.integers(0, 255)

    def extended(raw: bytes) -> bytes:
        try:
            c = parse_command(raw)
        except MalformedAPDU:
            return raw
        return Command(c.cla, c.ins, c.p1, c.p2, c.data, c.le, extended=True).encode()

    def at(n: int, raw: bytes) -> int:
        return n % (len(raw) + 1)

    return st.one_of(
        st.builds(lambda n, b: lambda r: r[: at(n, r)] + bytes([b]) + r[at(n, r) + 1 :], i, v),
        st.builds(lambda n, b: lambda r: r[: at(n, r)] + bytes([b]) + r[at(n, r) :], i, v),
        st.builds(lambda n: lambda r: r[: n % (len(r) + 1)], i),
        st.builds(lambda tail: lambda r: r + tail, st.binary(min_size=1, max_size=4)),
        st.builds(lambda b: lambda r: bytes([b]) + r[1:], v),
        st.just(extended),
        st.just(lambda r: r + b"\x00"),  # case-4 trick: an Le on a case-3 command
    )


def _mutated() -> st.SearchStrategy[bytes]:
    base = st.sampled_from([bytes.fromhex(h) for h in REAL + DANGEROUS])

    def apply(raw: bytes, mutations: list[Mutation]) -> bytes:
        for m in mutations:
            raw = m(raw)
        return raw

    return st.builds(apply, base, st.lists(_mutation(), min_size=1, max_size=3))


real = st.sampled_from([bytes.fromhex(h) for h in REAL])
apdu = st.one_of(
    real,
    real,
    real,
    st.sampled_from([bytes.fromhex(h) for h in DANGEROUS]),
    _mutated(),
    _mutated(),
    _structured(),
    st.binary(max_size=300),
)


@dataclass
class Secrets:
    """Byte strings that must never come out of the card through the firewall."""

    needles: dict[str, bytes]
    sign_key: rsa.RSAPublicNumbers

    @classmethod
    def of(cls, card: VirtualCard) -> Secrets:
        d = card.data
        sign_cert = x509.load_der_x509_certificate(d.sign_cert_der)
        sign_ca = x509.load_der_x509_certificate(d.sign_ca_der)
        needles = {
            "My Number (ASCII)": d.my_number.encode(),
            "My Number (BCD)": bytes.fromhex(d.my_number),
            "name": d.holder["name"].encode("utf-8"),
            "address": d.holder["address"].encode("utf-8"),
            "token info": d.token_info,
            "token label": b"JPKIAPICCTOKEN2",
            "card serial": d.card_serial.encode(),
        }
        for what, cert in (("signing cert", sign_cert), ("signing CA cert", sign_ca)):
            key = cert.public_key()
            assert isinstance(key, rsa.RSAPublicKey)
            needles[f"{what} modulus"] = key.public_numbers().n.to_bytes(256, "big")[:24]
            needles[f"{what} signature"] = cert.signature[:24]
            needles[f"{what} serial"] = cert.serial_number.to_bytes(8, "big")
        # Every EF of every applet but JPKI-AP's user-authentication side.
        for applet in build_applets(d):
            for fid, ef in applet.efs.items():
                # The tail of each EF's content (filler and padding stripped): random
                # signature bytes for certificates, the data itself for the others.
                content = getattr(ef, "content", b"").rstrip(b"\xff ")
                ours = applet.name == "JPKI-AP" and fid in (0x000A, 0x000B)
                if not ours and len(content) >= 12:
                    needles[f"{applet.name} EF {fid:04X}"] = content[-12:]
            for tag, obj in applet.data_objects.items():
                needles[f"{applet.name} data object {tag:04X}"] = obj
        sign_pub = sign_cert.public_key()
        assert isinstance(sign_pub, rsa.RSAPublicKey)
        return cls(needles, sign_pub.public_numbers())

    def check(self, response: Response) -> None:
        for what, needle in self.needles.items():
            assert needle not in response.data, f"{what} left the card"
        if len(response.data) == 256:  # a signature: never one by the signing key
            em = pow(int.from_bytes(response.data, "big"), self.sign_key.e, self.sign_key.n)
            assert not em.to_bytes(256, "big").startswith(b"\x00\x01\xff\xff")


def counters(card: VirtualCard) -> tuple[int, int, int]:
    d = card.data
    return d.auth_pin.tries_left, d.sign_password.tries_left, d.text_pin.tries_left


class Harness:
    """One card behind one firewall; every APDU the card gets is checked on the way."""

    def __init__(self, card_file: DemoCard) -> None:
        self.card = card_file.load()
        self.pin = card_file.pin
        self.secrets = Secrets.of(self.card)
        self.start = counters(self.card)

    def new_session(self, verified: bool) -> Firewall:
        self.card.power_on()
        fw = Firewall()
        if verified:  # the one VERIFY: sealed, right PIN, counter stays full
            _, answer = run_sealed_verify(fw, self.pin, confirmed=False, send=self.send)
            assert answer.sw == 0x9000
        return fw

    def send(self, command: Command) -> Response:
        raw = command.encode()
        before = self.card.selected_applet
        if before == "GlobalPlatform ISD":
            assert raw == bytes.fromhex(REAL[0]), "only SELECT JPKI-AP may reach the ISD"
        response = parse_response(self.card.transmit(raw))
        assert self.card.selected_applet in {"JPKI-AP", "GlobalPlatform ISD"}
        self.secrets.check(response)
        return response


@pytest.fixture
def harness(card_file: DemoCard) -> Harness:
    return Harness(card_file)


FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(apdus=st.lists(apdu, max_size=30), verified=st.booleans())
def test_random_apdus_one_by_one(harness: Harness, apdus: list[bytes], verified: bool) -> None:
    fw = harness.new_session(verified)
    for raw in apdus:
        if not fw.check(raw).allowed:
            continue  # refused: never sent; keep going to explore the states after it
        command = parse_command(raw)
        assert command.encode() == raw  # the card gets exactly the bytes that were checked
        fw.observe(command, harness.send(command))
    assert counters(harness.card) == harness.start


@FUZZ
@given(
    batches=st.lists(
        st.lists(st.tuples(apdu, st.sampled_from(["ok", "any"])), max_size=10), max_size=5
    ),
    verified=st.booleans(),
)
def test_random_batches(
    harness: Harness, batches: list[list[tuple[bytes, str]]], verified: bool
) -> None:
    fw = harness.new_session(verified)
    every_sw = frozenset(range(0x10000))
    for batch in batches:
        steps = []
        for raw, proceed in batch:
            try:
                command = parse_command(raw)
            except MalformedAPDU:
                continue
            steps.append(Step(command, every_sw) if proceed == "any" else Step(command))
        with contextlib.suppress(CommandRefused):
            filter_batch(fw, steps, harness.send)
    assert counters(harness.card) == harness.start
