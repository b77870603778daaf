"""A browser tab as a script drives it: real HTTP with its own cookie jar and CSRF token,
signed in the way a person does it (the sign-in form, then opening the terminal)."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

CSRF_FIELD = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class ScriptTab:
    """One browser session: `request` answers (status, JSON body or page text)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = ""

    def request(self, method: str, path: str, body: Any = None, form: bool = False) -> Any:
        """(status, JSON body or text); a dropped connection raises OSError."""
        data, headers = None, {"Accept": "application/json", "X-CSRFToken": self.csrf}
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Accept"] = "text/html"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data, headers, method=method)  # noqa: S310
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                text, status = response.read().decode(), response.status
                retry_after = response.headers.get("Retry-After")
        except urllib.error.HTTPError as error:
            text, status = error.read().decode(), error.code
            retry_after = error.headers.get("Retry-After")
        self.retry_after = retry_after
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def page(self, path: str) -> tuple[int, str]:
        """GET a page as a browser does (Accept: text/html)."""
        request = urllib.request.Request(  # noqa: S310
            self.url + path, headers={"Accept": "text/html"}
        )
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def sign_in(self, login: str, password: str) -> None:
        """The staff sign-in form."""
        _, page = self.page("/staff/login")
        found = CSRF_FIELD.search(page)
        assert found, "no CSRF token on the sign-in page"
        self.csrf = found[1]
        self.request(
            "POST",
            "/staff/login",
            {"login": login, "password": password, "csrf_token": self.csrf},
            form=True,
        )

    def refresh_csrf(self, path: str) -> str:
        """The page at `path`, keeping its CSRF token (meta or form field)."""
        _, page = self.page(path)
        found = CSRF_META.search(page) or CSRF_FIELD.search(page)
        if found:
            self.csrf = found[1]
        return page

    def open_terminal(self, opener: str, page: str, terminal: int) -> str:
        """POST `opener/<terminal>` with the CSRF token (counter, kiosk), then the page."""
        self.refresh_csrf(page if opener != "/kiosk/open" else "/admin/terminals/")
        self.request("POST", f"{opener}/{terminal}", {"csrf_token": self.csrf}, form=True)
        return self.refresh_csrf(page)

    def cookie_header(self) -> str:
        """The Cookie header this tab sends (for its WebSocket)."""
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)
