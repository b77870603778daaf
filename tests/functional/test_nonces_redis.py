"""Challenge nonces shared by worker processes through Redis, as gunicorn workers would.

One worker issues the challenge (the tab that showed the PIN prompt); the PIN answer
lands on another worker, which must find and burn it; a third finds it burnt.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import uuid
from typing import Any

import pytest

from tests.support.services import REDIS_URL, redis_up

WAIT = 20.0
ctx = mp.get_context("spawn")


@pytest.fixture(scope="module", autouse=True)
def _need_redis() -> None:
    if not redis_up():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis not reachable at {REDIS_URL} on CI")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")


def worker(prefix: str, op: str, arg: str, results: Any) -> None:
    """A worker process: issue a challenge, or take one, on its own Redis store."""
    from webapp.jpki import ChallengeService, VerificationError
    from webapp.jpki.redis_nonces import RedisNonceStore

    store = RedisNonceStore.from_url(REDIS_URL, prefix=prefix)
    service = ChallengeService(store)
    try:
        if op == "issue":
            results.put(("issued", service.issue("login", arg).nonce, os.getpid()))
        else:
            try:
                record = service.take(arg)
                results.put(("taken", record.to_dict(), os.getpid()))
            except VerificationError as exc:
                results.put(("refused", exc.reason.value, os.getpid()))
    finally:
        store.close()


def run(prefix: str, op: str, arg: str) -> tuple[str, Any, int]:
    results: Any = ctx.Queue()
    process = ctx.Process(target=worker, args=(prefix, op, arg, results))
    process.start()
    try:
        result: tuple[str, Any, int] = results.get(timeout=WAIT)
    finally:
        process.join(WAIT)
        if process.is_alive():
            process.kill()
            process.join()
        results.close()
        results.cancel_join_thread()
    return result


def test_a_challenge_issued_by_one_worker_is_burnt_by_another() -> None:
    prefix = f"test:nonce:{uuid.uuid4().hex}:"
    kind, nonce, issuer = run(prefix, "issue", "counter-7")
    assert kind == "issued"
    kind, record, taker = run(prefix, "take", nonce)
    assert kind == "taken" and taker != issuer
    assert (record["purpose"], record["terminal_id"]) == ("login", "counter-7")
    kind, reason, _ = run(prefix, "take", nonce)
    assert (kind, reason) == ("refused", "nonce_unknown_or_used")
