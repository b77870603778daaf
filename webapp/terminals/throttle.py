"""The pairing throttle: wrong codes per client address, and a backstop for everyone.

Each pairing request takes an attempt from both budgets before its code is looked up
(webapp/throttle.py), so parallel requests cannot try more codes than the budgets allow:

- **address** (`PAIR_LIMIT_PER_IP`, 10 per 10 minutes, IPv6 by /64): a code has 50 bits
  and lives 10 minutes, so ten guesses are nothing, and an admin who mistypes a code
  twice is never stopped.
- **everyone** (`PAIR_LIMIT_OVERALL`, 5000 per 10 minutes): what many addresses together
  may try. A few hundred wrong codes do not trip it (at 500, it once stopped every
  library's and home's pairing for 10 minutes); tripping it takes 500 addresses (or /64s)
  each at its own limit. With as many as 1,000 codes live at once, 5000 guesses every
  10 minutes for a year find one with a chance of about 1 in 4,000.

A wrong code keeps its attempt; a paired bridge, or a request that was no guess (a
malformed body), gives its attempt back: one good code neither buys guesses nor costs
any. docs/security.md says why each number is what it is.
"""

from __future__ import annotations

from limits import parse

from ..throttle import AttemptLimiter, Budget, client_key

PER_IP = "10 per 10 minutes"
OVERALL = "5000 per 10 minutes"


class PairingThrottle:
    """Pairing attempts: `begin` before the code is looked up; a wrong code keeps it."""

    def __init__(
        self, limiter: AttemptLimiter, *, per_ip: str = PER_IP, overall: str = OVERALL
    ) -> None:
        self.limiter = limiter
        self.per_ip = parse(per_ip)
        self.overall = parse(overall)

    def begin(self, address: str | None) -> int:
        """Take an attempt: 0 to go on and look the code up, else seconds to wait (429)."""
        return self.limiter.take(*self._budgets(address))

    def not_a_guess(self, address: str | None) -> None:
        """The request paired, or guessed nothing (malformed): give its attempt back."""
        self.limiter.give_back(*self._budgets(address))

    def retry_after(self, address: str | None) -> int:
        """Seconds before this address may try a code again (0: now); counts nothing."""
        return self.limiter.retry_after(*self._budgets(address))

    def _budgets(self, address: str | None) -> tuple[Budget, Budget]:
        return (
            Budget(self.per_ip, "bridge-pair-ip", client_key(address)),
            Budget(self.overall, "bridge-pair", "all"),
        )
