"""HTTP GET with the limits a crawler of strangers' URLs needs.

Redirects are followed here, hop by hop, so that each hop is checked (scheme, loop, count) and the
connect-time address guard sees every host. The body is streamed and capped after decompression;
the whole request, redirects included, runs under one deadline (the caller's check of each hop,
robots.txt, runs outside it: it has its own).
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from urllib.parse import urljoin, urlsplit

import aiohttp
import yarl

from ingest.core import outcomes
from ingest.core.settings import FetchSettings
from ingest.net.netguard import BLOCKED_MARK, AddressPolicy, GuardedResolver

REDIRECTS = {301, 302, 303, 307, 308}
HopCheck = Callable[[str], Awaitable[None]]
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


# A server's Retry-After is honoured up to a day (poll.max_backoff's default): beyond that it
# is a broken or hostile header ("99999999999999999999", the year 9999), and a host blocked for
# millennia would never be polled again.
MAX_RETRY_AFTER_S = 86400.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), at most
    MAX_RETRY_AFTER_S; None when it is neither."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true too
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER_S)


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
    """GET with manual redirects; one aiohttp session per fetcher, created inside the loop."""

    def __init__(self, settings: FetchSettings, per_origin: int = 8) -> None:
        self.settings = settings
        self.per_origin = per_origin
        self.policy = AddressPolicy(settings.allow)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.policy),
                socket_factory=self.policy.socket_factory,
                limit=0,  # politeness is per host (HostGate); this only bounds one origin
                limit_per_host=self.per_origin,
                ttl_dns_cache=60,
                ssl=ssl.create_default_context(),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.settings.connect_timeout
                ),
                headers={
                    "User-Agent": self.settings.user_agent,
                    "Accept-Encoding": "gzip, deflate",
                },
                cookie_jar=aiohttp.DummyCookieJar(),  # no tracking state between sites
                trust_env=False,
                auto_decompress=True,  # inflated in capped steps; the body cap counts output
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(
        self, url: str, headers: dict[str, str] | None = None, on_redirect: HopCheck | None = None
    ) -> Response:
        """`on_redirect(target)` is awaited before each redirect hop is followed; it raises
        (a FetchError) to stop there, such as robots.txt disallowing the target. Its time is
        not charged to this request's deadline (it has deadlines of its own)."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.settings.timeout) as deadline:
                return await self._follow(url, headers or {}, started, on_redirect, deadline)
        except TimeoutError as exc:
            raise outcomes.Timeout(
                f"no complete answer in {self.settings.timeout}s", url=url
            ) from exc
        except aiohttp.ClientSSLError as exc:
            # before ValueError: a failed certificate check is one too (ssl.CertificateError),
            # and is the site's TLS, not a bad URL that would be refused for good
            raise outcomes.ConnectError(str(exc) or type(exc).__name__, url=url) from exc
        except (aiohttp.InvalidURL, ValueError) as exc:
            raise outcomes.BadURL(f"invalid URL: {exc}", url=url) from exc
        except aiohttp.ClientConnectorError as exc:
            if BLOCKED_MARK in str(exc.os_error):
                raise outcomes.BlockedAddress(str(exc.os_error), url=url) from exc
            raise outcomes.ConnectError(str(exc) or type(exc).__name__, url=url) from exc
        except aiohttp.ClientPayloadError as exc:
            if "content-encoding" in str(exc).lower() or "decompress" in str(exc).lower():
                raise outcomes.DecodeError(f"bad content-encoding: {exc}", url=url) from exc
            raise outcomes.Truncated(f"truncated body: {exc}", url=url) from exc
        except aiohttp.ClientResponseError as exc:
            if "content-encoding" in str(exc).lower():  # br/zstd: no decoder, or it failed
                raise outcomes.DecodeError(f"bad content-encoding: {exc.message}", url=url) from exc
            raise outcomes.ConnectError(str(exc) or type(exc).__name__, url=url) from exc
        except (aiohttp.ClientError, ssl.SSLError, OSError) as exc:
            raise outcomes.ConnectError(str(exc) or type(exc).__name__, url=url) from exc

    async def _follow(
        self, url: str, headers: dict[str, str], started: float, on_redirect: HopCheck | None,
        deadline: asyncio.Timeout,
    ) -> Response:  # fmt: skip
        visited: list[str] = []
        session = self.session()
        while True:
            scheme = urlsplit(url).scheme.lower()
            if scheme not in ("http", "https"):
                raise outcomes.BadScheme(f"scheme {scheme!r} is not fetched", url=url)
            if url in visited:
                raise outcomes.TooManyRedirects("redirect loop", url=url)
            if len(visited) > self.settings.max_redirects:
                raise outcomes.TooManyRedirects(f"more than {self.settings.max_redirects}", url=url)
            if visited and on_redirect is not None:
                loop = asyncio.get_running_loop()
                left = (deadline.when() or loop.time()) - loop.time()
                deadline.reschedule(None)  # a slow robots.txt is its own outcome, not our timeout
                try:
                    await on_redirect(url)
                finally:
                    deadline.reschedule(loop.time() + left)
            async with session.get(
                yarl.URL(url, encoded=True), headers=headers, allow_redirects=False
            ) as resp:
                location = resp.headers.get("location")
                if resp.status in REDIRECTS and location:
                    visited.append(url)
                    url = urljoin(url, location)
                    continue
                body = await self._read_capped(resp, url)
                return Response(
                    url=url,
                    status=resp.status,
                    headers={k.lower(): v for k, v in resp.headers.items()},
                    body=body,
                    elapsed=time.monotonic() - started,
                    redirects=visited,
                )

    async def _read_capped(self, resp: aiohttp.ClientResponse, url: str) -> bytes:
        cap = self.settings.max_bytes
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap and "content-encoding" not in resp.headers:
            raise outcomes.TooLarge(f"declared {declared} bytes > cap {cap}", url=url)
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(65536):
            size += len(chunk)
            if size > cap:
                raise outcomes.TooLarge(f"body over cap {cap} bytes", url=url)
            chunks.append(chunk)
        return b"".join(chunks)

