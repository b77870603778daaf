"""Start-up checks: a production set-up that would be silently wrong does not start.

The landed code started with no ICHIMAI_SECRET_KEY (each worker drew its own: half the
requests after sign-in bounced to the sign-in page with two workers), no card key, and a
Redis bus without a namespace (two deployments on one Redis saw each other's bridges).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from webapp import config, create_app
from webapp.deployment import (
    UnsafeDeployment,
    refuse_many_workers_on_memory,
    refuse_unsafe,
    static_findings,
)

ROOT = Path(__file__).resolve().parents[3]
GOOD_SECRET = "s" * 64
GOOD_CARD_KEY = "c" * 64


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A production-like environment with nothing missing (each test removes one)."""
    for name in list(__import__("os").environ):
        if name.startswith("ICHIMAI_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ICHIMAI_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("ICHIMAI_CARD_KEY_SECRET", GOOD_CARD_KEY)
    monkeypatch.setenv("ICHIMAI_DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    return monkeypatch


def settings() -> dict[str, Any]:
    return config.from_environment("instance")


def test_a_complete_environment_starts(env: pytest.MonkeyPatch) -> None:
    refuse_unsafe(settings())
    app = create_app()
    assert app.config["SECRET_KEY"] == GOOD_SECRET


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ICHIMAI_SECRET_KEY", None),
        ("ICHIMAI_SECRET_KEY", "short"),
        ("ICHIMAI_CARD_KEY_SECRET", None),
        ("ICHIMAI_CARD_KEY_SECRET", "x" * 31),
    ],
)
def test_a_missing_or_short_secret_stops_start_up(
    env: pytest.MonkeyPatch, name: str, value: str | None
) -> None:
    if value is None:
        env.delenv(name)
    else:
        env.setenv(name, value)
    with pytest.raises(UnsafeDeployment) as refused:
        create_app()
    assert name in str(refused.value)
    assert "32" in str(refused.value)  # says how long


def test_every_reason_is_given_at_once(env: pytest.MonkeyPatch) -> None:
    env.delenv("ICHIMAI_SECRET_KEY")
    env.delenv("ICHIMAI_CARD_KEY_SECRET")
    env.setenv("ICHIMAI_BUS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(UnsafeDeployment) as refused:
        create_app()
    message = str(refused.value)
    for name in ("ICHIMAI_SECRET_KEY", "ICHIMAI_CARD_KEY_SECRET", "ICHIMAI_NAMESPACE"):
        assert name in message


def test_a_redis_bus_needs_a_namespace(env: pytest.MonkeyPatch) -> None:
    env.setenv("ICHIMAI_BUS_URL", "redis://127.0.0.1:6379/5")
    with pytest.raises(UnsafeDeployment, match="ICHIMAI_NAMESPACE"):
        refuse_unsafe(settings())
    env.setenv("ICHIMAI_NAMESPACE", "city-a")
    given = settings()
    refuse_unsafe(given)
    assert given["BUS_PREFIX"] == "ichimai:city-a:"


def test_demo_mode_starts_without_them(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bridge.vcard.jlis import DemoJLIS

    env.delenv("ICHIMAI_SECRET_KEY")
    env.delenv("ICHIMAI_CARD_KEY_SECRET")
    env.setenv("ICHIMAI_DEMO", "1")
    env.setenv("ICHIMAI_DEMO_JLIS_DIR", str(DemoJLIS.init(tmp_path / "jlis").directory))
    create_app()


@pytest.mark.parametrize("directory", [None, "missing"])
def test_demo_mode_without_its_jlis_stops_start_up_saying_how(
    env: pytest.MonkeyPatch, tmp_path: Path, directory: str | None
) -> None:
    """ICHIMAI_DEMO=1 alone refused every demo card as untrusted, and said so only to the
    browser: it now stops at start-up with the commands that make a demo J-LIS."""
    env.setenv("ICHIMAI_DEMO", "1")
    if directory is not None:
        env.setenv("ICHIMAI_DEMO_JLIS_DIR", str(tmp_path / directory))
    with pytest.raises(UnsafeDeployment) as refused:
        create_app()
    assert "ICHIMAI_DEMO_JLIS_DIR" in str(refused.value)
    assert "python -m bridge.vcard ca init" in str(refused.value)


def test_demo_mode_checks_its_crl_itself(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The demo J-LIS's CRL applies to the demo anchor without ICHIMAI_JPKI_CRL: a demo
    card is identified, a revoked one is refused as revoked."""
    from bridge.vcard.jlis import DemoJLIS
    from webapp.cardflow import verifier_for
    from webapp.jpki import VerificationError

    jlis = DemoJLIS.init(tmp_path / "jlis")
    good, bad = jlis.issue(), jlis.issue()
    jlis.revoke(bad.auth_cert_der)
    env.setenv("ICHIMAI_DEMO", "1")
    env.setenv("ICHIMAI_DEMO_JLIS_DIR", str(jlis.directory))
    verifier = verifier_for(create_app())
    verifier.identify(good.auth_cert_der)
    with pytest.raises(VerificationError) as refused:
        verifier.identify(bad.auth_cert_der)
    assert refused.value.reason.value == "revoked"


def test_several_demo_workers_need_a_shared_secret_key() -> None:
    with pytest.raises(UnsafeDeployment, match="ICHIMAI_SECRET_KEY"):
        refuse_many_workers_on_memory(
            {"BUS_URL": "redis://127.0.0.1:6379/0", "SECRET_KEY_FROM_ENV": False}, 4
        )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ICHIMAI_ADMIN_TOKEN", "short"),
        ("ICHIMAI_METRICS_TOKEN", "x" * 31),
        ("ICHIMAI_METRICS_ALLOW", "10.0.0.0/8,not-an-address"),
    ],
)
def test_a_weak_token_or_a_bad_address_list_stops_start_up(
    env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(UnsafeDeployment) as refused:
        create_app()
    assert name in str(refused.value)


@pytest.mark.parametrize(
    "namespace", ["Prod", "a:b", "-x", "x" * 41, "bus", "flow", "a b", "\x00", "n\ns"]
)
def test_a_bad_namespace_is_refused_with_the_rule(namespace: str) -> None:
    with pytest.raises(ValueError, match="ICHIMAI_NAMESPACE"):
        config.namespace_settings(namespace)


def test_namespaces_make_distinct_prefixes() -> None:
    prefixes = {config.namespace_settings(n)["BUS_PREFIX"] for n in ("a", "a-b", "ab", "b")}
    assert len(prefixes) == 4
    # No namespace's prefix is another's, nor one of the defaults used without one.
    defaults = ("ichimai:bus:", "ichimai:flow:", "ichimai:nonce:", "ichimai:limits:")
    assert not prefixes & set(defaults)


def test_several_workers_need_the_redis_bus() -> None:
    refuse_many_workers_on_memory({"BUS_URL": "memory://"}, 1)
    refuse_many_workers_on_memory({"BUS_URL": "redis://127.0.0.1:6379/0"}, 4)
    with pytest.raises(UnsafeDeployment, match="in-process bus"):
        refuse_many_workers_on_memory({"BUS_URL": "memory://"}, 2)


def test_findings_warn_without_stopping(env: pytest.MonkeyPatch) -> None:
    env.setenv("ICHIMAI_ORIGIN", "http://ichimai.example.jp")
    found = {f.name: f for f in static_findings(settings())}
    assert not found["ICHIMAI_ORIGIN"].ok
    assert not found["ICHIMAI_ORIGIN"].fatal
    refuse_unsafe(settings())  # a warning, not a refusal


def run_doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "--app", "app", "doctor"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_doctor_starts_when_the_platform_would_not_and_says_what_is_missing(
    tmp_path: Path,
) -> None:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("ICHIMAI_")}
    env = {
        **base,
        "ICHIMAI_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        "ICHIMAI_BUS_URL": "redis://127.0.0.1:6379/0",
    }
    done = run_doctor(env)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    for name in ("ICHIMAI_SECRET_KEY", "ICHIMAI_CARD_KEY_SECRET", "ICHIMAI_NAMESPACE"):
        assert any(line.startswith(f"MISSING  {name}") for line in lines), done.stdout
    # The empty database has no migrations applied: the doctor says how to fix it.
    assert any("alembic upgrade head" in line for line in lines), done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_number_names_its_setting(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("ICHIMAI_STAFF_SESSION_IDLE_HOURS", value)
    with pytest.raises(ValueError, match="ICHIMAI_STAFF_SESSION_IDLE_HOURS"):
        create_app()
