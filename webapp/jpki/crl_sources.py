"""Where a CRL comes from: the certificate's distribution point, a fixed URL, or a file.

Real J-LIS revocation data reaches registered platform operators by other means (the
roots' distribution points are LDAP-style directory names, not URLs), so production
configures a `FileCrlSource` or `UrlCrlSource` per anchor; the demo J-LIS writes an HTTP
URL into its certificates, which `DistributionPointCrlSource` follows. All fetches are
bounded in time and size; a failure raises `CrlFetchError` and the caller fails closed.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

DEFAULT_TIMEOUT_S = 10.0
# A national user-authentication CRL is tens of MB (1,000,000 entries is ~27 MB).
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
HTTP_SCHEMES = ("http", "https")
_CHUNK = 1 << 20


class CrlFetchError(OSError):
    """The CRL could not be fetched (network, HTTP status, size or time limit, file)."""


class CrlSource(Protocol):
    """Finds and fetches the CRL that covers a certificate."""

    def locate(self, crl_urls: tuple[str, ...]) -> str | None:
        """Where the CRL for a certificate with these distribution point URIs is; None
        when this source has none for it (the check then fails closed)."""
        ...

    def fetch(self, location: str) -> bytes:
        """The CRL bytes (DER or PEM) at `location`; raises CrlFetchError."""
        ...


def _opener() -> urllib.request.OpenerDirector:
    """An opener that speaks HTTP(S) only: no file:, ftp: or data: even via redirects."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def fetch_url(
    url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_bytes: int = DEFAULT_MAX_BYTES
) -> bytes:
    """GET `url` (http/https only) within `timeout_s` overall and `max_bytes`."""
    if urlsplit(url).scheme.lower() not in HTTP_SCHEMES:
        raise CrlFetchError(f"not an http(s) URL: {url!r}")
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, headers={"User-Agent": "ichimai-crl/1", "Accept": "application/pkix-crl"}
    )
    try:
        with _opener().open(request, timeout=timeout_s) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise CrlFetchError(f"CRL larger than {max_bytes} bytes")
            chunks: list[bytes] = []
            size = 0
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise CrlFetchError(f"CRL larger than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise CrlFetchError(f"CRL download took over {timeout_s} s")
                chunks.append(chunk)
    except CrlFetchError:
        raise
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response socket
        raise CrlFetchError(f"fetching {url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CrlFetchError(f"fetching {url}: {exc}") from exc
    return b"".join(chunks)


class DistributionPointCrlSource:
    """Follow the first http(s) URI in the certificate's CRL distribution points."""

    def __init__(
        self, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes

    def locate(self, crl_urls: tuple[str, ...]) -> str | None:
        """The first http(s) distribution point URI, if any."""
        return next((u for u in crl_urls if urlsplit(u).scheme.lower() in HTTP_SCHEMES), None)

    def fetch(self, location: str) -> bytes:
        """Download the CRL at the distribution point."""
        return fetch_url(location, timeout_s=self.timeout_s, max_bytes=self.max_bytes)


class UrlCrlSource:
    """One configured URL for every certificate of an anchor."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if urlsplit(url).scheme.lower() not in HTTP_SCHEMES:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes

    def locate(self, crl_urls: tuple[str, ...]) -> str | None:
        """Always the configured URL."""
        return self.url

    def fetch(self, location: str) -> bytes:
        """Download the configured CRL."""
        return fetch_url(location, timeout_s=self.timeout_s, max_bytes=self.max_bytes)


class FileCrlSource:
    """A CRL file kept current by something else (e.g. J-LIS data for operators)."""

    def __init__(self, path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes

    def locate(self, crl_urls: tuple[str, ...]) -> str | None:
        """Always the configured file."""
        return str(self.path)

    def fetch(self, location: str) -> bytes:
        """Read the CRL file."""
        try:
            with open(location, "rb") as f:
                data = f.read(self.max_bytes + 1)
        except OSError as exc:
            raise CrlFetchError(f"reading {location}: {exc}") from exc
        if len(data) > self.max_bytes:
            raise CrlFetchError(f"CRL larger than {self.max_bytes} bytes")
        return data


def crl_source_from_spec(spec: str) -> CrlSource:
    """ "dp" (distribution point), an http(s) URL, or a file path / file: URL."""
    spec = spec.strip()
    scheme = urlsplit(spec).scheme.lower()
    if spec == "dp":
        return DistributionPointCrlSource()
    if scheme in HTTP_SCHEMES:
        return UrlCrlSource(spec)
    if scheme == "file":
        return FileCrlSource(urlsplit(spec).path)
    if scheme:
        raise ValueError(f"unsupported CRL source: {spec!r}")
    return FileCrlSource(spec)
