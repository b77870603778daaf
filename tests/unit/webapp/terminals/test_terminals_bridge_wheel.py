"""The bridge wheel's cache: what it is built from, and a failed build not retried at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from webapp.terminals import bridge_wheel
from webapp.terminals.bridge_wheel import WheelUnavailable, ensure_wheel, shipped_files


def test_it_ships_the_bridge_without_the_virtual_card() -> None:
    names = {p.as_posix() for p in shipped_files()}
    assert {"pyproject.toml", "__main__.py", "status.py", "sip2/connector.py"} <= names
    assert "transports/pcsc.py" in names
    assert not any(n.startswith("vcard/") for n in names)


def test_a_failed_build_is_not_retried_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def broken(cache_dir: Path, path: Path) -> None:
        calls.append(path)
        raise WheelUnavailable("building the bridge wheel failed: no setuptools")

    monkeypatch.setattr(bridge_wheel, "_build", broken)
    monkeypatch.setattr(bridge_wheel, "_failed", {})
    for _ in range(3):
        with pytest.raises(WheelUnavailable, match="no setuptools"):
            ensure_wheel(tmp_path)
    assert len(calls) == 1
    monkeypatch.setattr(bridge_wheel, "RETRY_AFTER_FAILURE", 0.0)
    with pytest.raises(WheelUnavailable):
        ensure_wheel(tmp_path)
    assert len(calls) == 2


def test_a_built_wheel_is_found_in_the_cache(tmp_path: Path) -> None:
    path = bridge_wheel.wheel_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK")
    assert ensure_wheel(tmp_path) == path
