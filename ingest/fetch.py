"""HTTP GET with the limits a crawler of strangers' URLs needs.

Redirects are followed here, hop by hop, so that each hop is checked (scheme, loop, count) and the
connect-time address guard sees every host. The body is streamed and capped after decompression;
the whole request, redirects included, runs under one deadline.
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from ingest import outcomes
from ingest.netguard import AddressPolicy, GuardedBackend
from ingest.settings import FetchSettings

REDIRECTS = {301, 302, 303, 307, 308}
CHALLENGE_MARKERS = (
    b"cf-browser-verification",
    b"challenge-platform",
    b"cf_chl_opt",
    b"_incapsula_resource",
    b"px-captcha",
    b"captcha-delivery.com",
    b"checking your browser",
    b"enable javascript and cookies to continue",
)


@dataclass
class Response:
    url: str  # final URL after redirects
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float
    redirects: list[str] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def is_bot_wall(status: int, headers: dict[str, str], body: bytes) -> bool:
    if headers.get("cf-mitigated", "").lower() == "challenge":
        return True
    if status in (403, 429, 503):
        head = body[:20000].lower()
        return any(marker in head for marker in CHALLENGE_MARKERS)
    return False


def classify_status(resp: Response) -> None:
    """Raise the named outcome for a non-success response (304 is the caller's business)."""
    if is_bot_wall(resp.status, resp.headers, resp.body):
        raise outcomes.BotWall(url=resp.url, status=resp.status)
    if resp.status == 429 or (resp.status == 503 and "retry-after" in resp.headers):
        delay = parse_retry_after(resp.headers.get("retry-after")) or 60.0
        raise outcomes.RateLimited(url=resp.url, status=resp.status, retry_after=delay)
    if resp.status in (404, 410):
        raise outcomes.Gone(url=resp.url, status=resp.status)
    if resp.status >= 400 or resp.status < 200:
        raise outcomes.HTTPStatusError(url=resp.url, status=resp.status)


class Fetcher:
    def __init__(self, settings: FetchSettings, max_connections: int = 100) -> None:
        self.settings = settings
        transport = httpx.AsyncHTTPTransport(verify=ssl.create_default_context())
        # Swap in a pool whose network backend checks every resolved address at connect time.
        transport._pool = httpcore_pool(settings, max_connections)
        self.client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def get(self, url: str, headers: dict[str, str] | None = None) -> Response:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.settings.timeout):
                return await self._follow(url, headers or {}, started)
        except TimeoutError as exc:
            raise outcomes.Timeout(
                f"no complete answer in {self.settings.timeout}s", url=url
            ) from exc
        except httpx.TimeoutException as exc:
            raise outcomes.Timeout(str(exc) or "timeout", url=url) from exc
        except httpx.InvalidURL as exc:
            raise outcomes.BadScheme(str(exc), url=url) from exc
        except (httpx.TransportError, ssl.SSLError, OSError) as exc:
            raise outcomes.ConnectError(str(exc) or type(exc).__name__, url=url) from exc

    async def _follow(self, url: str, headers: dict[str, str], started: float) -> Response:
        visited: list[str] = []
        while True:
            scheme = urlsplit(url).scheme.lower()
            if scheme not in ("http", "https"):
                raise outcomes.BadScheme(f"scheme {scheme!r} is not fetched", url=url)
            if url in visited:
                raise outcomes.TooManyRedirects("redirect loop", url=url)
            if len(visited) > self.settings.max_redirects:
                raise outcomes.TooManyRedirects(f"more than {self.settings.max_redirects}", url=url)
            async with self.client.stream("GET", url, headers=headers) as resp:
                location = resp.headers.get("location")
                if resp.status_code in REDIRECTS and location:
                    visited.append(url)
                    url = urljoin(url, location)
                    continue
                body = await self._read_capped(resp, url)
                return Response(
                    url=url,
                    status=resp.status_code,
                    headers={k.lower(): v for k, v in resp.headers.items()},
                    body=body,
                    elapsed=time.monotonic() - started,
                    redirects=visited,
                )

    async def _read_capped(self, resp: httpx.Response, url: str) -> bytes:
        cap = self.settings.max_bytes
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap and "content-encoding" not in resp.headers:
            raise outcomes.TooLarge(f"declared {declared} bytes > cap {cap}", url=url)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise outcomes.TooLarge(f"body over cap {cap} bytes", url=url)
                chunks.append(chunk)
        except httpx.DecodingError as exc:
            raise outcomes.DecodeError(f"bad content-encoding: {exc}", url=url) from exc
        except httpx.RemoteProtocolError as exc:
            raise outcomes.ConnectError(f"truncated body: {exc}", url=url) from exc
        return b"".join(chunks)


def httpcore_pool(settings: FetchSettings, max_connections: int) -> httpcore.AsyncConnectionPool:
    return httpcore.AsyncConnectionPool(
        ssl_context=ssl.create_default_context(),
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=30,
        network_backend=GuardedBackend(AddressPolicy(settings.allow)),
    )


def utcnow_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
