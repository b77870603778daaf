"""An independent JPKI client, Debian's OpenSC, uses the virtual card through pcscd.

OpenSC's own JPKI driver (card-jpki.c, pkcs15-jpki.c) lists the certificates and signs
with the user-authentication key exactly as it would with a real My Number Card.
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge import jpki
from bridge.transport import drive
from bridge.transports.pcsc import PcscTransport
from tests.fixtures.cards import DemoCard
from tests.fixtures.pcsc import unavailable

pytestmark = pytest.mark.pcsc

AUTH_TOKEN = "JPKI (User Authentication PIN)"
MODULE_GLOBS = (
    "/usr/lib/*/opensc-pkcs11.so",
    "/usr/lib64/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
    "/usr/lib/*/pkcs11/opensc-pkcs11.so",
)


@pytest.fixture(scope="module")
def opensc_module() -> str:
    """Path of OpenSC's PKCS#11 module; skip (fail under CI) when OpenSC is missing."""
    modules = [m for pattern in MODULE_GLOBS for m in sorted(glob.glob(pattern))]
    if not modules or not shutil.which("pkcs15-tool") or not shutil.which("pkcs11-tool"):
        unavailable("OpenSC is not installed (sudo apt-get install opensc)")
    return modules[0]


@pytest.fixture
def opensc_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A neutral OpenSC configuration: no site settings, no file cache, no debug log."""
    conf = tmp_path / "opensc.conf"
    conf.write_text("app default {\n  debug = 0;\n}\n")
    monkeypatch.setenv("OPENSC_CONF", str(conf))


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run an OpenSC tool; its output goes into the assertion message on failure."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def auth_slot(module: str, reader: str) -> str:
    """The PKCS#11 slot id of the user-authentication token in `reader`."""
    listing = run("pkcs11-tool", "--module", module, "--list-slots")
    assert listing.returncode == 0, listing.stderr
    for block in re.split(r"\n(?=Slot )", listing.stdout):
        found = re.match(r"Slot \d+ \((0x[0-9a-f]+)\): (.*)", block)
        if found and found.group(2).strip() == reader and AUTH_TOKEN in block:
            return found.group(1)
    raise AssertionError(f"no {AUTH_TOKEN!r} token in {reader!r}:\n{listing.stdout}")


@pytest.mark.usefixtures("opensc_env")
def test_pkcs15_tool_lists_the_certificates(
    opensc_module: str, pcsc_reader: str, card_file: DemoCard
) -> None:
    listed = run("pkcs15-tool", "--reader", pcsc_reader, "--list-certificates")
    assert listed.returncode == 0, listed.stderr
    assert "User Authentication Certificate" in listed.stdout
    assert "User Authentication Certificate CA" in listed.stdout
    read = run("pkcs15-tool", "--reader", pcsc_reader, "--read-certificate", "01")
    assert read.returncode == 0, read.stderr
    cert = x509.load_pem_x509_certificate(read.stdout.encode())
    assert cert.public_bytes(serialization.Encoding.DER) == card_file.issued.auth_cert_der


@pytest.mark.usefixtures("opensc_env")
def test_pkcs11_tool_signs_with_the_auth_key(
    opensc_module: str, pcsc_reader: str, card_file: DemoCard, tmp_path: Path
) -> None:
    message = tmp_path / "message.bin"
    message.write_bytes(b"ichimai: signed by OpenSC through pcscd and vpcd")
    signature = tmp_path / "signature.bin"
    slot = auth_slot(opensc_module, pcsc_reader)
    signed = run(
        "pkcs11-tool",
        "--module",
        opensc_module,
        "--slot",
        slot,
        "--login",
        "--pin",
        card_file.pin,
        "--sign",
        "--mechanism",
        "SHA256-RSA-PKCS",
        "--id",
        "01",
        "--input-file",
        str(message),
        "--output-file",
        str(signature),
    )
    assert signed.returncode == 0, signed.stderr
    key = x509.load_der_x509_certificate(card_file.issued.auth_cert_der).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature.read_bytes(), message.read_bytes(), padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.usefixtures("opensc_env")
def test_pkcs11_tool_wrong_pin_spends_a_try(opensc_module: str, pcsc_reader: str) -> None:
    slot = auth_slot(opensc_module, pcsc_reader)
    login = run(
        "pkcs11-tool", "--module", opensc_module, "--slot", slot, "--login", "--pin", "9999", "-O"
    )
    assert login.returncode != 0
    assert "CKR_PIN_INCORRECT" in login.stdout + login.stderr
    with PcscTransport(pcsc_reader) as transport:
        assert drive(jpki.read_pin_tries(), transport) == 2
