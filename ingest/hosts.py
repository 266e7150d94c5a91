"""Per-host politeness shared by every poller on every machine, kept in Redis.

Two limits per host, both enforced with the server's clock so pollers on different machines agree:

* spacing: at most `rate` requests per second (`<prefix>host:<host>:next` holds the earliest time
  of the next request; each request reserves the slot after it). Retry-After moves the same key.
* concurrency: at most `inflight` requests at once (`<prefix>host:<host>:inflight`, a sorted set of
  leases scored by expiry, so a poller that dies mid-request frees its slot when the lease ends).

Feed polls and article fetches go through the same gate, so ten feeds and 500 articles on one
host queue behind one another instead of bursting.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import redis

from ingest import outcomes
from ingest.keys import Keys
from ingest.settings import HostLimit

# Reserve the next slot (ARGV: gap ms, longest wait ms): returns how many ms the caller must wait
# before its request. A wait longer than allowed reserves nothing: the caller comes back later.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = math.max(now, nxt)
if at - now > tonumber(ARGV[2]) then return at - now end
local gap = tonumber(ARGV[1])
if gap > 0 then redis.call('SET', KEYS[1], at + gap, 'PX', math.max(at + gap - now, 1) + 60000) end
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

# Take an in-flight lease (ARGV: limit, lease ms, token): 1 if taken, else 0.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
return 1
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
        self._reserve = r.register_script(RESERVE)
        self._defer = r.register_script(DEFER)
        self._acquire = r.register_script(ACQUIRE)

    def limit(self, host: str) -> HostLimit:
        return self.per_host.get(host, self.default)

    def gap_ms(self, host: str) -> int:
        rate = self.limit(host).rate
        return int(1000 / rate) if rate > 0 else 0

    @contextlib.asynccontextmanager
    async def turn(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's in-flight slots and wait for its next spacing slot.

        Raises HostDeferred when the host's next slot is further away than `max_wait_s` (after a
        long Retry-After, or a queue of our own requests): the caller reschedules instead of
        holding a slot and a coroutine for that long."""
        limit = self.limit(host)
        token = ""
        if limit.inflight > 0:
            token = uuid.uuid4().hex[:12]
            key = self.keys.host_inflight(host)
            wait = WAIT_STEP_S
            # Sync calls on purpose: one loopback round trip is cheaper than a thread hop.
            while not self._acquire(keys=[key], args=[limit.inflight, self.lease_ms, token]):
                await asyncio.sleep(wait)
                wait = min(wait * 1.5, 0.5)
        try:
            # Called even without spacing: a Retry-After deferral applies to every host.
            key, gap = self.keys.host_next(host), self.gap_ms(host)
            wait_ms = int(self._reserve(keys=[key], args=[gap, self.max_wait_ms]))
            if wait_ms > self.max_wait_ms:
                raise outcomes.HostDeferred(host, retry_after=wait_ms / 1000)
            if wait_ms > 0:
                await asyncio.sleep(wait_ms / 1000)
            yield
        finally:
            if token:
                self.r.zrem(self.keys.host_inflight(host), token)

    def defer(self, host: str, seconds: float) -> None:
        self._defer(keys=[self.keys.host_next(host)], args=[int(seconds * 1000)])
