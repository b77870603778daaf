"""Ended sessions are deleted: by `flask sessions cleanup` in batches, and a few at a time
whenever a new session is made, so the table stays bounded without the cron job."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from tests.unit.webapp.sessions.conftest import Site, ended_keys, sign_in
from webapp.sessions import services
from webapp.sessions.models import SessionKind, WebSession
from webapp.sessions.store import SWEEP_ON_CREATE


def add_sessions(site: Site, count: int, *, ends_at: datetime, prefix: str) -> list[str]:
    """`count` anonymous rows ending at `ends_at`, straight into the table."""
    keys = [f"{prefix}{i:060x}" for i in range(count)]
    with site.db() as s:
        for key in keys:
            s.add(
                WebSession(
                    key=key,
                    kind=SessionKind.ANONYMOUS,
                    data="{}",
                    created_at=ends_at - timedelta(hours=2),
                    last_seen_at=ends_at - timedelta(hours=2),
                    expires_at=ends_at + timedelta(hours=22),
                    idle_seconds=7200,
                    ends_at=ends_at,
                )
            )
        s.commit()
    return keys


def count(site: Site) -> int:
    with site.db() as s:
        return int(s.scalar(select(func.count()).select_from(WebSession)) or 0)


def test_cleanup_deletes_ended_sessions_in_batches(site: Site) -> None:
    now = site.clock.now
    ended = add_sessions(site, 7, ends_at=now - timedelta(seconds=1), prefix="dead")
    live = add_sessions(site, 3, ends_at=now + timedelta(minutes=1), prefix="live")
    result = site.app.test_cli_runner().invoke(
        args=["sessions", "cleanup", "--batch", "2", "--now", now.isoformat()]
    )
    assert result.exit_code == 0, result.output
    assert "deleted 7 ended session(s)" in result.output
    with site.db() as s:
        assert set(s.scalars(select(WebSession.key))) == set(live)
    assert set(ended_keys(site, 7)) == set(ended)
    assert max(len(m["keys"]) for m in site.ended) == 2  # one announcement per batch
    later = site.app.test_cli_runner().invoke(
        args=["sessions", "cleanup", "--now", (now + timedelta(minutes=2)).isoformat()]
    )
    assert "deleted 3 ended session(s)" in later.output and count(site) == 0


def test_cleanup_refuses_a_time_without_a_zone(site: Site) -> None:
    result = site.app.test_cli_runner().invoke(
        args=["sessions", "cleanup", "--now", "2026-12-01T00:00:00"]
    )
    assert result.exit_code != 0 and "time zone" in result.output


def test_cleanup_uses_the_apps_clock_by_default(site: Site) -> None:
    add_sessions(site, 2, ends_at=site.clock.now - timedelta(hours=1), prefix="dead")
    result = site.app.test_cli_runner().invoke(args=["sessions", "cleanup"])
    assert "deleted 2 ended session(s)" in result.output


def test_every_new_session_sweeps_a_few_ended_ones(site: Site) -> None:
    add_sessions(site, SWEEP_ON_CREATE + 5, ends_at=site.clock.now, prefix="dead")
    browser = site.browser()
    sign_in(browser, "clerk")  # two new sessions: the form's, then the signed-in one
    assert count(site) == 1
    with site.db() as s:
        assert s.scalar(select(WebSession.kind)) == SessionKind.STAFF


def test_delete_expired_leaves_live_sessions(site: Site) -> None:
    now = site.clock.now
    add_sessions(site, 3, ends_at=now, prefix="dead")
    live = add_sessions(site, 2, ends_at=now + timedelta(seconds=1), prefix="live")
    with site.db() as s:
        done = services.delete_expired(s, site.app.extensions["bus"], now, limit=10)
        assert len(done) == 3 and done.terminal_ids == ()
        assert set(s.scalars(select(WebSession.key))) == set(live)
