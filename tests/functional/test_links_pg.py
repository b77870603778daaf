"""Link verification under parallel requests, on PostgreSQL.

Many citizens claim one library number at once, and several prove it at once: every
claim is accepted alike (a claim says nothing), exactly one verification wins, the
others are refused with number_taken, and the winner's claim is the only link left.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.support.postgres import scratch_app
from webapp import db
from webapp.identity import services as identity
from webapp.identity.errors import IdentityError
from webapp.identity.models import ServiceLink, Verification
from webapp.providers.models import Provider

CITIZENS = 12
NUMBER = "20240099"


@pytest.fixture
def app() -> Iterator[Flask]:
    with scratch_app() as app:
        yield app


def run_at_once(jobs: list[object]) -> list[object]:
    """Run the callables in threads released together; their results or exceptions."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(i: int, job: object) -> None:
        barrier.wait()
        try:
            results[i] = job()  # type: ignore[operator]
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_one_verification_wins_and_every_other_claim_goes(app: Flask) -> None:
    with app.app_context(), db.new_session() as s:
        provider = Provider(code="JP-PAR", kind="library", name_ja="並行図書館")
        s.add(provider)
        s.commit()
        provider_id = provider.id
        mykeys = []
        for n in range(CITIZENS):
            mykey, _ = identity.open_or_create(s, bytes([n]) * 32, datetime(2035, 1, 1, tzinfo=UTC))
            mykeys.append(mykey.id)

    def link(mykey: str, verification: str) -> object:
        def job() -> object:
            with app.app_context(), db.new_session() as s:
                provider = s.get(Provider, provider_id)
                assert provider is not None
                return identity.link(s, mykey, provider, NUMBER, 1, verification).verification

        return job

    # Half claim (unverified), at once: all accepted alike.
    claimers, provers = mykeys[: CITIZENS // 2], mykeys[CITIZENS // 2 :]
    claims = run_at_once([link(m, Verification.UNVERIFIED) for m in claimers])
    assert claims == [Verification.UNVERIFIED] * len(claimers)
    # The other half prove it at once (as if each had the password): exactly one wins.
    proofs = run_at_once([link(m, Verification.LIBRARY) for m in provers])
    won = [p for p in proofs if p == Verification.LIBRARY]
    refused = [p for p in proofs if isinstance(p, IdentityError)]
    assert len(won) == 1, proofs
    assert len(refused) == len(provers) - 1
    assert {e.code for e in refused} == {"number_taken"}  # type: ignore[union-attr]
    with app.app_context(), db.new_session() as s:
        rows = s.execute(
            select(ServiceLink.verification, func.count()).group_by(ServiceLink.verification)
        ).all()
        # The claims went; the refused provers wrote nothing.
        assert dict(rows) == {Verification.LIBRARY: 1}
