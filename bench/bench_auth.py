"""Benchmark: server-side card authentication checks per second vs bare RSA verifies.

A check is `Verifier.verify_authentication`: take the nonce, rebuild the signed data,
chain (cached per certificate), validity, revocation against a CRL of 1,000,000 revoked
serials, the PKCS#1 v1.5 SHA-256 signature, keyed hash. Cards: 10,000 distinct demo
certificates drawn Zipf-like (s = 1.0: a few cards come back often, most rarely). The
server first serves a warm-up of 30,000 such authentications, then the timed 30,000,
in which ~6-7% of cards are seen for the first time (cache misses: full parse + chain).

Baseline: bare `cryptography` RSA-2048 `verify()` over the same (data, signature)
pairs with a handful of hot key objects: the literal "verifies per second on one core".
A second baseline verifies with each card's own (pre-loaded) key object, which costs a
little more (10,000 keys do not stay in CPU caches); both are reported. Timed on CPU
time of this thread (time.thread_time: the per-core cost) in 200-check chunks alternating
with the baselines; value and baseline come from the median chunk (robust to bursts of
load from other processes on a shared machine), ratio = value / baseline; ratio_total
uses all chunks, ratio_wall wall-clock time. A cold run (every certificate new) too.

Prints one JSON line. Run: .venv/bin/python -m bench.bench_auth  (~40 s, no network)
"""

from __future__ import annotations

import json
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.vcard.jlis import DemoJLIS
from webapp.jpki import (
    ChallengeService,
    FileCrlSource,
    InMemoryNonceStore,
    RevocationChecker,
    TrustStore,
    Verifier,
)
from webapp.jpki.trust import ROOTS_DIR

DISTINCT_CARDS = 10_000
KEY_POOL = 16  # distinct certificates, few keys: 10,000 RSA key generations would take minutes
CRL_ENTRIES = 1_000_000
ZIPF_S = 1.0
WARMUP_DRAWS = 30_000
ROUNDS = 5
CHECKS_PER_ROUND = 6_000
CHUNK = 200
COLD_CHECKS = 2_000
PKCS1 = padding.PKCS1v15()
SHA256 = hashes.SHA256()


def _zipf_draws(rng: random.Random, n: int, k: int) -> list[int]:
    cumulative = list(accumulate(1.0 / (rank**ZIPF_S) for rank in range(1, n + 1)))
    return rng.choices(range(n), cum_weights=cumulative, k=k)


Work = list[tuple[int, bytes, str, bytes]]  # (card index, signature, nonce, data)


def _sign_work(verifier: Verifier, keys: list[rsa.RSAPrivateKey], draws: list[int]) -> Work:
    """Challenges and the cards' signatures (the card's side: untimed)."""
    work = []
    for index in draws:
        challenge = verifier.challenges.issue("login", "bench-terminal")
        data = verifier.data_to_sign(challenge)
        work.append(
            (index, keys[index % KEY_POOL].sign(data, PKCS1, SHA256), challenge.nonce, data)
        )
    return work


class _Timer:
    """CPU and wall time per side, measured in alternating chunks.

    Each chunk of checks is timed right next to the same chunk on the other sides, so
    a burst of load from other processes falls on both. `rate` is the median over
    chunks (robust to such bursts), `total_rate` the plain total.
    """

    def __init__(self, sides: dict[str, Callable[[Work], None]]) -> None:
        self.sides = sides
        self.cpu: dict[str, list[float]] = {name: [] for name in sides}
        self.wall: dict[str, list[float]] = {name: [] for name in sides}
        self.count = 0

    def run(self, work: Work) -> None:
        names = list(self.sides)
        for n, start in enumerate(range(0, len(work), CHUNK)):
            chunk = work[start : start + CHUNK]
            for name in names if n % 2 else names[::-1]:
                c0, w0 = time.thread_time(), time.perf_counter()
                self.sides[name](chunk)
                self.cpu[name].append((time.thread_time() - c0) / len(chunk))
                self.wall[name].append((time.perf_counter() - w0) / len(chunk))
        self.count += len(work)

    def rate(self, name: str, *, wall: bool = False) -> float:
        """Checks per second (CPU, or wall), from the median chunk."""
        return 1 / statistics.median((self.wall if wall else self.cpu)[name])

    def ratio(self, name: str, baseline: str, *, wall: bool = False) -> float:
        """rate(name) / rate(baseline)."""
        return self.rate(name, wall=wall) / self.rate(baseline, wall=wall)

    def total_rate(self, name: str) -> float:
        """Checks per CPU second over all chunks."""
        return self.count / sum(self.cpu[name])


def main() -> None:
    """Run the benchmark and print one JSON line."""
    rng = random.Random(20260)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ichimai-bench-") as tmp:
        jlis = DemoJLIS.init(Path(tmp) / "jlis")
        keys = [rsa.generate_private_key(65537, 2048) for _ in range(KEY_POOL)]
        now = datetime.now(UTC).replace(microsecond=0)
        t0 = time.perf_counter()
        certs = [
            jlis.issue_auth_certificate(
                keys[i % KEY_POOL].public_key(),
                not_before=now - timedelta(days=1),
                not_after=now + timedelta(days=365 * 5),
            )
            for i in range(DISTINCT_CARDS + COLD_CHECKS)
        ]
        issue_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        revoked = (secrets.randbits(63) | (1 << 56) for _ in range(CRL_ENTRIES))
        crl_der = jlis.crl_der("auth", extra_serials=revoked)
        crl_path = Path(tmp) / "big.crl"
        crl_path.write_bytes(crl_der)
        crl_build_s = time.perf_counter() - t0

        trust = TrustStore.from_directory(ROOTS_DIR, demo_mode=True, demo_ca=[jlis.auth_ca_der])
        verifier = Verifier(
            trust=trust,
            revocation=RevocationChecker(default_source=FileCrlSource(crl_path)),
            challenges=ChallengeService(InMemoryNonceStore(max_entries=1_000_000)),
            origin="https://ichimai.example",
            card_key_secret=secrets.token_bytes(32),
        )
        t0 = time.perf_counter()
        verifier.identify(certs[0])  # the first check loads the 1M-entry CRL inline
        first_check_s = time.perf_counter() - t0
        slot = verifier.revocation.slots()[0]
        assert slot.current is not None
        crl_load_s = slot.current[0].load_seconds
        assert len(slot.current[0]) >= CRL_ENTRIES

        t0 = time.perf_counter()
        for index, signature, nonce, _ in _sign_work(
            verifier, keys, _zipf_draws(rng, DISTINCT_CARDS, WARMUP_DRAWS)
        ):
            verifier.verify_authentication(certs[index], signature, nonce)
        warmup_s = time.perf_counter() - t0

        hot = [key.public_key() for key in keys]
        card_keys = [x509.load_der_x509_certificate(c).public_key() for c in certs]
        warm = [key.sign(b"warm", PKCS1, SHA256) for key in keys]
        for i, public in enumerate(card_keys):  # the first use of a key object costs extra
            public.verify(warm[i % KEY_POOL], b"warm", PKCS1, SHA256)  # type: ignore[call-arg,arg-type]

        def ours(chunk: Work) -> None:
            for index, signature, nonce, _ in chunk:
                verifier.verify_authentication(certs[index], signature, nonce)

        def bare_hot(chunk: Work) -> None:
            for index, signature, _, data in chunk:
                hot[index % KEY_POOL].verify(signature, data, PKCS1, SHA256)

        def bare_card_keys(chunk: Work) -> None:
            for index, signature, _, data in chunk:
                card_keys[index].verify(signature, data, PKCS1, SHA256)  # type: ignore[call-arg,arg-type]

        timer = _Timer({"ours": ours, "hot": bare_hot, "card": bare_card_keys})
        hits0, misses0 = verifier.cache_stats["hits"], verifier.cache_stats["misses"]
        sign_s = 0.0
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            work = _sign_work(verifier, keys, _zipf_draws(rng, DISTINCT_CARDS, CHECKS_PER_ROUND))
            sign_s += time.perf_counter() - t0
            timer.run(work)
        stats = verifier.cache_stats
        hits, misses = stats["hits"] - hits0, stats["misses"] - misses0

        # Cold: every certificate never seen before (parse + chain + first key use).
        cold = _Timer({"ours": ours, "hot": bare_hot})
        cold.run(
            _sign_work(verifier, keys, list(range(DISTINCT_CARDS, DISTINCT_CARDS + COLD_CHECKS)))
        )

        result = {
            "bench": "auth_checks_per_s",
            "value": round(timer.rate("ours"), 1),
            "unit": "checks/s",
            "baseline": round(timer.rate("hot"), 1),
            "ratio": round(timer.rate("ours") / timer.rate("hot"), 3),
            "ratio_total": round(timer.total_rate("ours") / timer.total_rate("hot"), 3),
            "ratio_wall": round(timer.ratio("ours", "hot", wall=True), 3),
            "ratio_vs_card_keys": round(timer.ratio("ours", "card"), 3),
            "cold_ratio": round(cold.ratio("ours", "hot"), 3),
            "cache_hit_rate": round(hits / max(1, hits + misses), 4),
            "checks": timer.count,
            "distinct_cards": DISTINCT_CARDS,
            "crl_entries": len(slot.current[0]),
            "crl_mb": round(len(crl_der) / 1e6, 1),
            "crl_build_s": round(crl_build_s, 2),
            "crl_load_s": round(crl_load_s, 2),
            "first_check_s": round(first_check_s, 2),
            "issue_certs_s": round(issue_s, 2),
            "warmup_s": round(warmup_s, 1),
            "presign_s": round(sign_s, 1),
            "total_s": round(time.perf_counter() - started, 1),
        }
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
