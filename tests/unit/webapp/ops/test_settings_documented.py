"""Every setting the platform reads from the environment is in docs/operations.md, with
its default: an operator must never have to read the code to find one (issue 17: the
admin token and password were in no table, nor the card key secret's minimum length)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
DOC = ROOT / "docs" / "operations.md"
# Read by tests, benches and the demo's own launcher, never by a deployment.
NOT_SETTINGS = {
    "ICHIMAI_SETTINGS",
    "ICHIMAI_GIVEN_SETTINGS",
    "ICHIMAI_TEST_PG_URL",
    "ICHIMAI_TEST_REDIS_URL",
    "ICHIMAI_E2E_DEPLOYMENT",
    "ICHIMAI_DEMO_PORT",
    "ICHIMAI_BRIDGE_HOME",  # the bridge's own (README: "Pairing a real reader")
    "ICHIMAI_BRIDGE_PING_INTERVAL",  # webapp/terminals/testing.py's bridge
    "ICHIMAI_BRIDGE_FLUSH_INTERVAL",
}
# Settings read as ICHIMAI_<name> by a helper: setting(config, "NAME"), _number(config, "NAME").
HELPER = re.compile(r"(?:setting|_number)\((?:app\.)?config, \"([A-Z0-9_]+)\"")


def read_settings() -> set[str]:
    found: set[str] = set()
    for path in [*(ROOT / "webapp").rglob("*.py"), ROOT / "gunicorn.conf.py"]:
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r"ICHIMAI_[A-Z0-9_]*[A-Z0-9]", text))
        found |= {f"ICHIMAI_{name}" for name in HELPER.findall(text)}
    return found - NOT_SETTINGS


def test_every_setting_is_documented_with_a_default() -> None:
    doc = DOC.read_text(encoding="utf-8")
    rows = [line for line in doc.splitlines() if line.startswith("| `ICHIMAI_")]
    documented = {re.match(r"\| `(ICHIMAI_[A-Z0-9_]+)`", row).group(1) for row in rows}  # type: ignore[union-attr]
    settings = read_settings()
    assert len(settings) > 30  # the scan works
    assert settings - documented == set(), "settings missing from docs/operations.md"
    assert documented - settings == set(), "documented settings nobody reads"
    for row in rows:
        assert row.count("|") >= 3, f"no default in: {row}"
