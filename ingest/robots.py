"""robots.txt for article pages, as RFC 9309 says and feed readers do: feeds are exempt.

One parsed file per origin, cached in this process and in Redis (so every poller fetches it once
per `ttl`). Answers by status, per RFC 9309: 2xx → its rules; 4xx → everything allowed;
5xx, timeouts and network errors → nothing allowed *for now*: the article is deferred (not lost)
and robots.txt is asked again after `retry_s`.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import redis
from protego import Protego

from ingest import outcomes
from ingest.fetch import Response
from ingest.keys import Keys
from ingest.urls import origin_of

ALLOW_ALL = b"A"
UNAVAILABLE = b"U"
MAX_ROBOTS_BYTES = 512_000  # Google reads the first 500 KiB
LOCAL_ENTRIES = 4096

Getter = Callable[[str], Awaitable[Response]]


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
        """Return if `url` may be fetched; raise RobotsDisallowed or RobotsUnavailable."""
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
                f"robots.txt of {origin} unavailable", url=url, retry_after=self.retry_s
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
        parts = urlsplit(origin)
        try:
            resp = await get(f"{parts.scheme}://{parts.netloc}/robots.txt")
        except (outcomes.HostDeferred, outcomes.BlockedAddress, outcomes.BadScheme):
            raise  # not robots.txt's answer: the caller's business (defer, or refuse the URL)
        except outcomes.FetchError:
            resp = None
        if resp is not None and 200 <= resp.status < 300:
            stored = b"R" + zlib.compress(resp.body[:MAX_ROBOTS_BYTES], 6)
            ttl = self.ttl_s
        elif resp is not None and 400 <= resp.status < 500:
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
