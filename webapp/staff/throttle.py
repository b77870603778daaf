"""The sign-in throttle: per login and address, per address, and a per-login backstop.

Each sign-in takes an attempt from three budgets before the password is checked
(webapp/throttle.py), so parallel requests cannot check more than the budgets allow:

- **login and address** (`LOGIN_LIMIT_PER_LOGIN_IP`, 5 per 15 minutes): the lock-out.
  It shuts out the address that failed, for that login only: the person the login
  belongs to still signs in from any other address.
- **address** (`LOGIN_LIMIT_PER_IP`, 20 per 15 minutes): one address trying one password
  on many logins. A library's counter PCs often share one address: only failures count.
- **login, from every address** (`LOGIN_LIMIT_PER_LOGIN`, 1000 per hour): the backstop
  against many addresses guessing one login together. A few hundred failures do not trip
  it; tripping it takes 50 addresses each at its own limit for a whole hour, and it
  stops guessing at 24,000 a day per login however many addresses there are.

A wrong password keeps its attempts. A right one gives back its attempts and forgets the
failures of that login from that address; the address's other failures stay, so a
valid account cannot be used to wash out a spray. docs/security.md says why each
number is what it is.
"""

from __future__ import annotations

from limits import parse

from ..throttle import AttemptLimiter, Budget, client_key

PER_LOGIN_IP = "5 per 15 minutes"
PER_IP = "20 per 15 minutes"
PER_LOGIN = "1000 per hour"


class LoginThrottle:
    """Sign-in attempts: `begin` before the password check; a failure keeps its attempt."""

    def __init__(
        self,
        limiter: AttemptLimiter,
        *,
        per_login_ip: str = PER_LOGIN_IP,
        per_ip: str = PER_IP,
        per_login: str = PER_LOGIN,
    ) -> None:
        self.limiter = limiter
        self.per_login_ip = parse(per_login_ip)
        self.per_ip = parse(per_ip)
        self.per_login = parse(per_login)

    def begin(self, address: str | None, login: str) -> int:
        """Take an attempt: 0 to go on and check the password, else seconds to wait (429)."""
        return self.limiter.take(*self._budgets(address, login))

    def succeeded(self, address: str | None, login: str) -> None:
        """A right password: give the attempt back, forget this pair's failures."""
        pair, address_budget, login_budget = self._budgets(address, login)
        self.limiter.give_back(address_budget, login_budget)
        self.limiter.clear(pair)

    def abandoned(self, address: str | None, login: str) -> None:
        """No answer was given (an error): the attempt is given back."""
        self.limiter.give_back(*self._budgets(address, login))

    def retry_after(self, address: str | None, login: str) -> int:
        """Seconds before this address may try this login again (0: now); counts nothing."""
        return self.limiter.retry_after(*self._budgets(address, login))

    def _budgets(self, address: str | None, login: str) -> tuple[Budget, Budget, Budget]:
        where = client_key(address)
        return (
            Budget(self.per_login_ip, "staff-login-pair", f"{where}|{login}"),
            Budget(self.per_ip, "staff-login-ip", where),
            Budget(self.per_login, "staff-login", login),
        )
