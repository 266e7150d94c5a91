"""robots.txt for article pages, as RFC 9309 says and feed readers do: feeds are exempt.

One parsed file per origin, cached in this process and in Redis (so every poller fetches it once
per `ttl`). Answers by status, per RFC 9309: 2xx → its rules; 4xx → everything allowed;
5xx, 429 (as Google reads it), timeouts, network errors, a body over the fetch cap or a
compression bomb → nothing allowed *for now*: the article is deferred (not lost, not refused)
and robots.txt is asked again after `retry_s`. A robots.txt URL that our own fetcher rejects
(a bug of ours, such as an IPv6 literal without brackets) is the same "for now", logged as
`robots_url_error`: never a refusal remembered for the dedup window. A URL whose own host our
fetcher refuses (`http://2130706433/`, `127.1`: `ingest.core.urls.bad_host`) is checked first
and is `bad_url`, refused and dead-lettered, never deferred (tests/test_found.py).

The poller checks the article's URL and every redirect hop's target (`ingest/poller/articles.py`).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import redis
import structlog
from protego import Protego

from ingest.core import outcomes
from ingest.core.keys import Keys
from ingest.core.urls import bad_host, origin_of
from ingest.net.fetch import Response

ALLOW_ALL = b"A"
UNAVAILABLE = b"U"
MAX_ROBOTS_BYTES = 512_000  # Google reads the first 500 KiB
LOCAL_ENTRIES = 4096

Getter = Callable[[str], Awaitable[Response]]
log = structlog.get_logger("ingest.net.robots")


class RobotsCache:
    def __init__(
        self, r: redis.Redis, keys: Keys, user_agent: str, ttl_s: float = 86400,
        retry_s: float = 600,
    ) -> None:  # fmt: skip
        self.r = r
        self.keys = keys
        self.agent = user_agent.split("/")[0]  # the product token, as robots.txt names it
        self.ttl_s = ttl_s
        self.retry_s = retry_s
        self._local: OrderedDict[str, tuple[float, Protego | bytes]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[Protego | bytes]] = {}

    async def check(self, url: str, get: Getter) -> None:
        """Return if `url` may be fetched; raise RobotsDisallowed or RobotsUnavailable (or
        BadScheme for a URL that is not http(s) at all, BadURL for a host we never fetch:
        the article's own fault)."""
        try:
            scheme = urlsplit(url).scheme
        except ValueError as exc:  # `http://[oops/`: a redirect or a page can name one
            raise outcomes.BadURL(f"invalid URL: {exc}", url=url) from exc
        if scheme.lower() not in ("http", "https"):
            raise outcomes.BadScheme(f"scheme {scheme!r} is not fetched", url=url)
        problem = bad_host(url)
        if problem:  # its robots.txt would be refused too: the URL's fault, not ours
            raise outcomes.BadURL(problem, url=url)
        origin = origin_of(url)
        rules = self._cached(origin)
        if rules is None:
            # one fetch per origin at a time: the other articles of that site wait for it
            pending = self._loading.get(origin)
            if pending is None:
                pending = self._loading[origin] = asyncio.ensure_future(self._load(origin, get))
                pending.add_done_callback(lambda _f: self._loading.pop(origin, None))
            rules = await asyncio.shield(pending)
        if rules == UNAVAILABLE:
            raise outcomes.RobotsUnavailable(
                f"robots.txt of {origin} unavailable", url=url, retry_after=float(self.retry_s)
            )
        if isinstance(rules, Protego) and not rules.can_fetch(url, self.agent):
            raise outcomes.RobotsDisallowed(f"robots.txt of {origin} disallows it", url=url)

    def _cached(self, origin: str) -> Protego | bytes | None:
        hit = self._local.get(origin)
        if hit and hit[0] > time.monotonic():
            self._local.move_to_end(origin)
            return hit[1]
        key = self.keys.robots(origin)
        pipe = self.r.pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        stored, ttl = pipe.execute()
        if stored is None:
            return None
        return self._remember(origin, _rules(stored), float(ttl))

    async def _load(self, origin: str, get: Getter) -> Protego | bytes:
        robots_url = origin + "/robots.txt"
        try:
            resp = await get(robots_url)
        except (outcomes.HostDeferred, outcomes.BlockedAddress):
            raise  # not robots.txt's answer: the caller's business (defer, or refuse the URL)
        except outcomes.BadScheme as exc:
            # The article's URL was http(s) (checked above), so this URL is ours: our bug must
            # not become a refusal of the article. Unavailable for now, and said loudly.
            log.error("robots_url_error", url=robots_url, error=str(exc)[:300])
            resp = None
        except outcomes.FetchError:
            resp = None
        if resp is not None and 200 <= resp.status < 300:
            stored = b"R" + zlib.compress(resp.body[:MAX_ROBOTS_BYTES], 6)
            ttl = self.ttl_s
        elif resp is not None and 400 <= resp.status < 500 and resp.status != 429:
            stored, ttl = ALLOW_ALL, self.ttl_s
        else:
            stored, ttl = UNAVAILABLE, self.retry_s
        self.r.set(self.keys.robots(origin), stored, ex=max(1, int(ttl)))
        return self._remember(origin, _rules(stored), ttl)

    def _remember(self, origin: str, rules: Protego | bytes, ttl: float) -> Protego | bytes:
        self._local[origin] = (time.monotonic() + max(ttl, 1), rules)
        while len(self._local) > LOCAL_ENTRIES:
            self._local.popitem(last=False)
        return rules


def _rules(stored: bytes) -> Protego | bytes:
    if stored[:1] == b"R":
        text = zlib.decompress(stored[1:]).decode("utf-8", "replace")
        return Protego.parse(text)
    return stored
