"""cert_read_pcsc: certificate read + verify through pcscd/vpcd vs the same APDUs raw.

Both sides go through the same pcscd, vpcd reader and virtual card process (started
here, isolated from any system pcscd). "Ours" is what a counter does per tap: the JPKI
driver reads EF 000A through PcscTransport (one PC/SC transaction per batch, status
words checked, DER length parsed) and the platform verifies it (webapp's identify():
chain, validity, revocation; or, without webapp, chain + validity + signature with
`cryptography`). The baseline sends the same APDU bytes with pyscard's SCardTransmit
and nothing else. Value and baseline are medians over RUNS interleaved runs, in ms.

    python -m bench.bench_cert_read [RUNS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bench.run import emit
from bridge import jpki
from bridge.apdu import Response
from bridge.transport import Batch, Transport, drive
from bridge.transports.pcsc import PcscTransport
from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from bridge.vcard.pcscd_harness import Pcscd

RUNS = 50
WARMUP = 5
DEMO_PIN = "1234"  # a fake card's demo PIN (never used here: reading needs no PIN)
DEMO_PASSWORD = "ABC123"  # noqa: S105 - the fake card's demo signing password


class Recorder:
    """A transport wrapper that records the bytes of every command actually sent."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.commands: list[bytes] = []

    def transmit(self, batch: Batch) -> list[Response]:
        """Send through the wrapped transport; record the commands that got an answer."""
        responses = self.inner.transmit(batch)
        self.commands += [step.command.encode() for step in batch[: len(responses)]]
        return responses


def make_verifier(ca_dir: Path) -> tuple[str, Callable[[bytes], object]]:
    """The platform's identify() when webapp is importable, else a direct check."""
    try:
        from webapp.jpki.factory import build_verifier
    except ImportError:
        return "cryptography", _direct_verifier(DemoJLIS.load(ca_dir).auth_ca_cert)
    settings = {
        "DEMO_MODE": True,
        "DEMO_JLIS_DIR": str(ca_dir),
        "JPKI_CRL_SOURCES": [str(ca_dir / "auth.crl")],
        "CARD_KEY_SECRET": "bench-" + "0" * 32,
        "PLATFORM_ORIGIN": "http://localhost",
    }
    return "webapp.identify", build_verifier(settings).identify


def _direct_verifier(ca: x509.Certificate) -> Callable[[bytes], object]:
    """Chain (issuer name + signature), validity and key type, with cryptography."""
    ca_key = ca.public_key()
    assert isinstance(ca_key, rsa.RSAPublicKey)

    def verify(cert_der: bytes) -> object:
        cert = x509.load_der_x509_certificate(cert_der)
        now = datetime.now(UTC)
        if cert.issuer != ca.subject or not cert.not_valid_before_utc <= now:
            raise ValueError("not issued by the demo CA, or not yet valid")
        if now > cert.not_valid_after_utc:
            raise ValueError("expired")
        assert cert.signature_hash_algorithm is not None
        ca_key.verify(
            cert.signature,
            cert.tbs_certificate_bytes,
            padding.PKCS1v15(),
            cert.signature_hash_algorithm,
        )
        return cert

    return verify


def raw_sender(reader: str) -> tuple[Callable[[list[list[int]]], None], Callable[[], None]]:
    """Send APDU lists with bare pyscard calls; returns (send_all, close)."""
    from smartcard import scard

    rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert rv == scard.SCARD_S_SUCCESS
    rv, card, _ = scard.SCardConnect(ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1)
    assert rv == scard.SCARD_S_SUCCESS

    def send_all(apdus: list[list[int]]) -> None:
        for apdu in apdus:
            rv, answer = scard.SCardTransmit(card, scard.SCARD_PCI_T1, apdu)
            assert rv == scard.SCARD_S_SUCCESS and len(answer) >= 2

    def close() -> None:
        scard.SCardDisconnect(card, scard.SCARD_RESET_CARD)
        scard.SCardReleaseContext(ctx)

    return send_all, close


def main(runs: int = RUNS) -> None:
    """Measure and print the cert_read_pcsc line."""
    with tempfile.TemporaryDirectory(prefix="ichimai-bench-") as tmp, Pcscd(readers=2) as pcscd:
        ca_dir = Path(tmp) / "ca"
        jlis = DemoJLIS.init(ca_dir)
        card_path = Path(tmp) / "card.json"
        data = card_data_from_issued(jlis.issue(), pin=DEMO_PIN, sign_password=DEMO_PASSWORD)
        CardFile.create(card_path, data)
        card = pcscd.attach(card_path)
        how, verify = make_verifier(ca_dir)
        with PcscTransport(card.reader.name) as transport:
            recorder = Recorder(transport)
            expected = drive(jpki.read_certificate(), recorder)
            verify(expected)
            apdus = [list(c) for c in recorder.commands]
            send_raw, close_raw = raw_sender(card.reader.name)
            ours: list[float] = []
            raw: list[float] = []
            try:
                for i in range(WARMUP + runs):
                    start = time.perf_counter()
                    cert = drive(jpki.read_certificate(), transport)
                    verify(cert)
                    middle = time.perf_counter()
                    send_raw(apdus)
                    end = time.perf_counter()
                    assert cert == expected
                    if i >= WARMUP:
                        ours.append(middle - start)
                        raw.append(end - middle)
            finally:
                close_raw()
        card.remove()
    value, baseline = statistics.median(ours) * 1000, statistics.median(raw) * 1000
    print(
        f"cert_read_pcsc: {len(apdus)} APDUs per read, {runs} runs, verify={how}, "
        f"pcscd isolation={pcscd.isolation}",
        file=sys.stderr,
    )
    emit("cert_read_pcsc", value, "ms", baseline)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else RUNS)
