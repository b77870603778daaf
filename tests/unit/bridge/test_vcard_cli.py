"""`python -m bridge.vcard`: ca init, issue, revoke, info, attach (the contract others use)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import types
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography import x509

from bridge.vcard.__main__ import main
from bridge.vcard.card import ATR, VirtualCard
from bridge.vcard.cardfile import CardFile
from tests.fixtures.cards import SELECT_JPKI


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cli") / "ca"
    assert main(["ca", "init", str(directory), "--crl-url", "http://127.0.0.1:9/crl"]) == 0
    return directory


@pytest.fixture(scope="module")
def issued(ca_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    card = tmp_path_factory.mktemp("cli-card") / "card.json"
    args = ["issue", "--ca", str(ca_dir), "--pin", "1234", "--sign-password", "ABC123"]
    assert main([*args, "--birth-date", "1990-04-01", str(card)]) == 0
    return card


def test_ca_init_creates_the_demo_cas(ca_dir: Path) -> None:
    assert (ca_dir / "auth.crl").exists() and (ca_dir / "sign.crl").exists()


def test_ca_init_twice_fails(ca_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ca", "init", str(ca_dir)]) == 1
    assert "error:" in capsys.readouterr().err


def test_issue_writes_a_card_file(issued: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = CardFile.load(issued).data
    assert data.auth_pin.value == "1234" and data.auth_pin.tries_left == 3
    assert data.sign_password.value == "ABC123"
    assert data.holder["birth_date"] == "1990-04-01"
    assert oct(issued.stat().st_mode & 0o777) == "0o600"
    card = VirtualCard.from_file(issued)
    assert card.power_on() == ATR


def test_issue_options(ca_dir: Path, tmp_path: Path) -> None:
    card = tmp_path / "expired.json"
    args = ["issue", "--ca", str(ca_dir), "--pin", "0000", "--sign-password", "PASS99"]
    options = ["--not-before", "2019-01-01T00:00:00", "--not-after", "2024-01-01T00:00:00+09:00"]
    options += ["--locked", "--text-pin", "9999", "--apdu-delay", "0.01"]
    options += ["--signature-time", "0.3"]
    assert main([*args, *options, str(card)]) == 0
    data = CardFile.load(card).data
    cert = x509.load_der_x509_certificate(data.auth_cert_der)
    assert cert.not_valid_before_utc == datetime(2019, 1, 1, tzinfo=UTC)
    assert cert.not_valid_after_utc == datetime(2023, 12, 31, 15, tzinfo=UTC)
    assert data.auth_pin.tries_left == 0 and data.text_pin.value == "9999"
    assert (data.apdu_delay_s, data.signature_time_s) == (0.01, 0.3)


@pytest.mark.parametrize(
    ("pin", "password"), [("123", "ABC123"), ("1234", "abc123"), ("12345", "ABC123")]
)
def test_issue_refuses_bad_pins(
    ca_dir: Path, tmp_path: Path, pin: str, password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    card = tmp_path / "bad.json"
    args = ["issue", "--ca", str(ca_dir), "--pin", pin, "--sign-password", password, str(card)]
    assert main(args) == 1
    assert not card.exists()
    err = capsys.readouterr().err
    assert pin not in err and password not in err


def test_issue_without_ca(tmp_path: Path) -> None:
    args = ["issue", "--ca", str(tmp_path / "none"), "--pin", "1234"]
    assert main([*args, "--sign-password", "ABC123", str(tmp_path / "c.json")]) == 1


def test_revoke_updates_the_crls(ca_dir: Path, issued: Path) -> None:
    assert main(["revoke", "--ca", str(ca_dir), str(issued)]) == 0
    data = CardFile.load(issued).data
    for crl_name, der in (("auth.crl", data.auth_cert_der), ("sign.crl", data.sign_cert_der)):
        crl = x509.load_der_x509_crl((ca_dir / crl_name).read_bytes())
        serial = x509.load_der_x509_certificate(der).serial_number
        assert crl.get_revoked_certificate_by_serial_number(serial) is not None


def test_info_prints_no_secrets(issued: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(issued)]) == 0
    out = capsys.readouterr().out
    facts = json.loads(out)
    assert facts["auth_pin_tries_left"] == 3
    assert "ABC123" not in out and "PRIVATE" not in out and '"1234"' not in out


def test_info_on_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.json").write_text("{}")
    assert main(["info", str(tmp_path / "x.json")]) == 1
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("vpcd", ["localhost", "host:port", ":35963", "h:0", "h:70000"])
def test_attach_rejects_bad_addresses(issued: Path, vpcd: str) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["attach", "--vpcd", vpcd, str(issued)])
    assert caught.value.code == 2


def test_attach_calls_vpcd_until_sigterm(issued: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, str, int, bool]] = []

    def fake_attach(card: object, host: str, port: int, stop: threading.Event) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # what `kill` or systemd would do
        calls.append((card, host, port, stop.wait(5)))

    fake = types.ModuleType("bridge.vcard.vpcd")
    fake.attach = fake_attach  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bridge.vcard.vpcd", fake)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["attach", "--vpcd", "127.0.0.2:4000", str(issued)]) == 0
    ((card, host, port, stopped),) = calls
    assert isinstance(card, VirtualCard) and (host, port, stopped) == ("127.0.0.2", 4000, True)
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload


def _read_frame(conn: socket.socket) -> bytes:
    head = conn.recv(2, socket.MSG_WAITALL)
    return conn.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL)


def test_attach_speaks_vpcd(issued: Path) -> None:
    """The card answers through the real vpcd client, as pcscd's vpcd driver sees it."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    seen: dict[str, bytes] = {}

    def reader() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            conn.sendall(_frame(b"\x04"))  # send the ATR
            seen["atr"] = _read_frame(conn)
            conn.sendall(_frame(b"\x01"))  # power on
            conn.sendall(_frame(bytes.fromhex(SELECT_JPKI)))
            seen["select"] = _read_frame(conn)
            conn.sendall(_frame(bytes.fromhex("00A4020C02000A")))
            conn.recv(4, socket.MSG_WAITALL)
            conn.sendall(_frame(bytes.fromhex("00B0000004")))
            seen["read"] = _read_frame(conn)
            os.kill(os.getpid(), signal.SIGINT)
            conn.recv(1)  # wait for the card side to hang up

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        assert main(["attach", "--vpcd", f"127.0.0.1:{port}", str(issued)]) == 0
    finally:
        thread.join(5)
        server.close()
    assert seen["atr"] == ATR
    assert seen["select"] == b"\x90\x00"
    assert seen["read"][:2] == b"\x30\x82" and seen["read"][-2:] == b"\x90\x00"


def test_module_runs_as_a_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bridge.vcard", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[3],
        timeout=60,
    )
    assert result.returncode == 0
    for command in ("ca", "issue", "revoke", "attach"):
        assert command in result.stdout


def test_birth_date_parsing(ca_dir: Path, tmp_path: Path) -> None:
    card = tmp_path / "b.json"
    args = ["issue", "--ca", str(ca_dir), "--pin", "1234", "--sign-password", "ABC123"]
    assert main([*args, "--birth-date", date(2001, 2, 3).isoformat(), str(card)]) == 0
    assert CardFile.load(card).data.holder["birth_date"] == "2001-02-03"


def _reason(crl_path: Path, serial: int) -> x509.ReasonFlags | None:
    crl = x509.load_der_x509_crl(crl_path.read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def _auth(card: Path) -> x509.Certificate:
    return x509.load_der_x509_certificate(CardFile.load(card).data.auth_cert_der)


@pytest.mark.parametrize(
    ("command", "reason"),
    [("renew", x509.ReasonFlags.superseded), ("reissue", x509.ReasonFlags.key_compromise)],
)
def test_renew_and_reissue_revoke_with_their_reason_and_sign_the_linkage(
    tmp_path: Path, command: str, reason: x509.ReasonFlags
) -> None:
    from webapp.jpki import linkage

    ca = tmp_path / "ca"
    assert main(["ca", "init", str(ca)]) == 0
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    assert (
        main(["issue", "--ca", str(ca), "--pin", "4321", "--sign-password", "ABC123", str(old)])
        == 0
    )
    assert main([command, "--ca", str(ca), str(old), str(new)]) == 0
    before, after = CardFile.load(old).data, CardFile.load(new).data
    assert after.auth_pin.value == "4321"  # the old card's PIN unless told otherwise
    assert (after.my_number, after.holder) == (before.my_number, before.holder)
    assert _auth(new).serial_number != _auth(old).serial_number
    assert _reason(ca / "auth.crl", _auth(old).serial_number) == reason
    signer = x509.load_pem_x509_certificate((ca / "linkage_signer.pem").read_bytes())
    (pair,) = linkage.parse((ca / "linkage.json").read_bytes(), [signer])
    assert pair.kind == ("renewal" if command == "renew" else "reissue")
    assert pair.old_issuer == _auth(old).issuer.public_bytes()
    assert int.from_bytes(pair.new_serial, "big") == _auth(new).serial_number
    assert pair.new_not_after == _auth(new).not_valid_after_utc
    # the CA keys are not the linkage signer: a CA certificate does not vouch for it
    ca_cert = x509.load_pem_x509_certificate((ca / "auth_ca.pem").read_bytes())
    with pytest.raises(linkage.LinkageError):
        linkage.parse((ca / "linkage.json").read_bytes(), [ca_cert])
    # a revoked card has no successor twice
    assert main([command, "--ca", str(ca), str(old), str(tmp_path / "third.json")]) == 1
