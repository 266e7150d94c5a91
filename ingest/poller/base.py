"""What every part of a poll shares: Redis and its keys, the registry and queue, the host gate,
the egress monitor, the seen state, robots.txt, the fetcher and the buffered feed-state writes.

`Poller` (loop.py) is one object built in layers, one module per job, each on top of this one:
enqueue.py (jobs), articles.py (items and their pages), feed.py (one feed's poll), loop.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis
from rq import Queue

from ingest.core import outcomes
from ingest.core.keys import Keys
from ingest.core.seen import SeenStore
from ingest.core.settings import HostLimit, Settings
from ingest.core.urls import bad_host, host_of, origin_of
from ingest.feeds import schedule
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.registry import Registry
from ingest.feeds.schedule import PollResult
from ingest.net.egress import EgressMonitor
from ingest.net.fetch import Fetcher, Response
from ingest.net.hosts import HostGate
from ingest.net.robots import RobotsCache
from ingest.poller.stats import PollStats

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)

# Free fetch claims still held as this poller's "fetching:<id>" (never a refusal's or an
# enqueued item's marker, nor another poller's claim).
RELEASE_CLAIMS = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then n = n + redis.call('DEL', key) end
end
return n
"""


@dataclass
class Unsettled:
    """A poll that failed at network level, waiting for the egress verdict (Poller.settle)."""

    at: float  # time.monotonic() when it failed
    fid: str
    spec: FeedSpec
    state: dict[str, str]
    result: PollResult


class PollerBase:
    def __init__(self, settings: Settings, r: redis.Redis) -> None:
        self.settings = settings
        self.r = r
        self.keys = Keys(settings.redis.prefix)
        # this poller's fetch-claim value: a claim held by another (live, or dead with its
        # claims still standing) is told apart from our own (ingest/poller/articles.py)
        self.claim_mark = f"fetching:{uuid.uuid4().hex[:12]}".encode()
        self.registry = Registry(r, self.keys)
        self.queue = Queue(settings.stream.queue, connection=r)
        poll = settings.poll
        self.bounds = schedule.Bounds(
            poll.min_interval, poll.max_interval, poll.max_backoff, poll.default_interval
        )
        self.gate = HostGate(
            r, self.keys, HostLimit(rate=poll.host_rate, inflight=poll.host_inflight),
            poll.host_limits, lease_s=settings.fetch.timeout + 10, max_wait_s=poll.max_host_wait,
        )  # fmt: skip
        self.egress = EgressMonitor()
        self.seen = SeenStore(r, self.keys, settings.dedup.window_days, settings.dedup.shards)
        fetch = settings.fetch
        self.robots = (
            RobotsCache(r, self.keys, fetch.user_agent, fetch.robots_ttl, fetch.robots_retry)
            if fetch.robots
            else None
        )
        self._paused = False
        self._learn_next = 0.0
        self._redis_down = False
        self._pending: list[Unsettled] = []  # network failures waiting for the egress verdict
        self._writes = r.pipeline(transaction=False)
        self._buffered = 0
        self.stats = PollStats()
        self._fetcher: Fetcher | None = None
        self._work = asyncio.Semaphore(poll.concurrency)
        self._parsers: concurrent.futures.ThreadPoolExecutor | None = None
        self.in_progress: set[asyncio.Task[None]] = set()
        self._cancelled: list[str] = []  # feeds cancelled mid-poll at shutdown
        # fetch claims of items not enqueued (a poll cancelled, or Redis gone mid-poll): freed
        # at the next flush, so they are fetched again at once rather than after fetch_claim
        self._unclaim: list[str] = []
        self._release_claims = r.register_script(RELEASE_CLAIMS)
        self.left: dict[str, int] = {}  # what a stop left for next time

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            poll = self.settings.poll
            limits = [poll.host_inflight, *(h.inflight for h in poll.host_limits.values())]
            # Connections per origin: what the host gate lets through (0 = unlimited), 2..16.
            # The gate is the real limit; this only keeps the connector from queueing below it.
            widest = 16 if 0 in limits else max(limits)
            self._fetcher = Fetcher(self.settings.fetch, per_origin=min(max(widest, 2), 16))
        return self._fetcher

    async def aclose(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()
        if self._parsers is not None:
            self._parsers.shutdown(wait=False, cancel_futures=True)

    async def _get(
        self, url: str, headers: dict[str, str] | None = None,
        on_redirect: Callable[[str], Awaitable[None]] | None = None, hold: bool = True,
    ) -> Response:  # fmt: skip
        """One request, in the host's turn, its result told to the egress monitor."""
        host = host_of(url)
        if not host:
            # refused before the host gate (every unreadable URL would share the gate of "")
            # and before the egress monitor (a URL never sent proves nothing of our network)
            raise outcomes.BadURL(bad_host(url) or "no host", url=url)
        try:
            async with self.gate.turn(host, hold=hold):
                resp = await self.fetcher.get(url, headers, on_redirect)
        except outcomes.HostDeferred:
            raise
        except outcomes.FetchError as exc:
            self.egress.record(origin_of(url), exc.outcome)
            raise
        self.egress.record(origin_of(url), "ok")
        return resp
