"""Per-host politeness shared by every poller on every machine, kept in Redis.

Two limits per host, both enforced with the server's clock so pollers on different machines agree:

* spacing: at most `rate` requests per second (`<prefix>host:<host>:next` holds the earliest time
  of the next request; each request reserves the slot after it). Retry-After moves the same key.
* concurrency: at most `inflight` requests at once (`<prefix>host:<host>:inflight`, a sorted set of
  leases scored by expiry, so a poller that dies mid-request frees its slot when the lease ends).

Feed polls and article fetches go through the same gate, so ten feeds and 500 articles on one
host queue behind one another instead of bursting.

A Retry-After (429, or 503 with the header) on any URL of a host blocks the *whole host*: feeds,
article pages and robots.txt alike, across all pollers. A server that says "slow down" rarely
rate-limits per path, and we cannot tell that it does. What the block defers is not lost: the
poller retries it when the host is free (a deferred feed at the end of the block, the feed
whose request drew the 429 a quarter of the block later, so it does not re-arm the block before
the others had their turn; see `ingest.feeds.schedule.after_poll`). Tests:
`tests/test_deferral.py::test_retry_after_on_a_feed_blocks_the_articles_of_its_host_too`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import redis

from ingest.core import outcomes
from ingest.core.keys import Keys
from ingest.core.settings import HostLimit
from ingest.net.fetch import MAX_RETRY_AFTER_S

# One request's turn at a host, in one round trip.
# KEYS: next-slot key, in-flight key. ARGV: gap ms, longest wait ms, in-flight limit, lease ms,
# token. Returns -1 when every in-flight slot is taken (nothing reserved), else the ms to wait
# before the request; a wait over the longest allowed reserves nothing either.
TURN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = math.max(now, nxt)
if at - now > tonumber(ARGV[2]) then return at - now end
local limit = tonumber(ARGV[3])
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= limit then return -1 end
  local lease = tonumber(ARGV[4]) + at - now
  redis.call('ZADD', KEYS[2], now + lease, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], lease + 1000)
end
local gap = tonumber(ARGV[1])
if gap > 0 then redis.call('SET', KEYS[1], at + gap, 'PX', at + gap - now + 60000) end
return at - now
"""

# Push the next request to a host out to at least now + ARGV[1] ms (Retry-After).
DEFER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local want = now + tonumber(ARGV[1])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if want > nxt then redis.call('SET', KEYS[1], want, 'PX', tonumber(ARGV[1]) + 60000) end
return want
"""

WAIT_STEP_S = 0.05


class HostGate:
    def __init__(
        self, r: redis.Redis, keys: Keys, default: HostLimit,
        per_host: dict[str, HostLimit] | None = None, lease_s: float = 60, max_wait_s: float = 30,
    ) -> None:  # fmt: skip
        self.r = r
        self.keys = keys
        self.default = default
        self.per_host = per_host or {}
        self.lease_ms = int(lease_s * 1000)
        self.max_wait_ms = int(max_wait_s * 1000)
        self._turn = r.register_script(TURN)
        self._defer = r.register_script(DEFER)
        # Slots given back, sent with this process's next Redis write (the next turn or a state
        # save, at most a loop tick later); their leases would free them anyway.
        self._releases: list[tuple[str, str]] = []

    def limit(self, host: str) -> HostLimit:
        return self.per_host.get(host, self.default)

    def gap_ms(self, host: str) -> int:
        rate = self.limit(host).rate
        return int(1000 / rate) if rate > 0 else 0

    @contextlib.asynccontextmanager
    async def turn(self, host: str, hold: bool = True) -> AsyncIterator[None]:
        """Hold one of the host's in-flight slots and wait for its next spacing slot.

        Raises HostDeferred when the host's next slot is further away than `max_wait_s` (after a
        long Retry-After, or a queue of our own requests): the caller reschedules instead of
        holding a slot and a coroutine for that long. `hold=False` keeps the spacing but takes
        no in-flight slot: for a request made while this process already holds one at the same
        host (robots.txt of a redirect's target), which would otherwise wait for itself."""
        limit = self.limit(host)
        inflight = limit.inflight if hold else 0
        token = uuid.uuid4().hex[:12] if inflight > 0 else ""
        keys = [self.keys.host_next(host), self.keys.host_inflight(host)]
        args: list[int | str] = [
            self.gap_ms(host),
            self.max_wait_ms,
            inflight,
            self.lease_ms,
            token,
        ]
        pause = WAIT_STEP_S
        # Sync calls on purpose: one loopback round trip is cheaper than a thread hop.
        while (wait_ms := self._take_turn(keys, args)) < 0:
            await asyncio.sleep(pause)  # every slot taken: poll the gate with a growing pause
            pause = min(pause * 1.5, 0.5)
        if wait_ms > self.max_wait_ms:
            raise outcomes.HostDeferred(host, retry_after=wait_ms / 1000)
        try:
            if wait_ms > 0:
                await asyncio.sleep(wait_ms / 1000)
            yield
        finally:
            if token:
                self._releases.append((keys[1], token))

    def _take_turn(self, keys: list[str], args: list[int | str]) -> int:
        if not self._releases:
            return int(self._turn(keys=keys, args=args))
        pipe = self.r.pipeline(transaction=False)
        self.flush(pipe)
        self._turn(keys=keys, args=args, client=pipe)
        return int(pipe.execute()[-1])

    def flush(self, pipe: Any = None) -> None:
        """Send the pending slot releases, on `pipe` when given (the caller executes it)."""
        releases, self._releases = self._releases, []
        if not releases:
            return
        target = pipe if pipe is not None else self.r.pipeline(transaction=False)
        for key, token in releases:
            target.zrem(key, token)
        if pipe is None:
            target.execute()

    def defer(self, host: str, seconds: float) -> None:
        # bounded here too: the script's arithmetic is on integers Redis can hold
        seconds = min(max(0.0, seconds), MAX_RETRY_AFTER_S)
        self._defer(keys=[self.keys.host_next(host)], args=[int(seconds * 1000)])
