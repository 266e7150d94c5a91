"""Per-host politeness shared by every poller: one request per `1/rate` seconds per host.

The schedule lives in Redis (`<prefix>host:<host>:next`, the earliest time of the next request
to that host) and is advanced by a script using the server's clock, so pollers on different
machines share one spacing. Retry-After moves the same key. In-flight requests per host are
bounded per process by a semaphore.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import redis

from ingest.keys import Keys

# Reserve the next slot: returns how many ms the caller must wait before its request.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = math.max(now, nxt)
local gap = tonumber(ARGV[1])
redis.call('SET', KEYS[1], at + gap, 'PX', math.max(at + gap - now, 1) + 60000)
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


class HostGate:
    def __init__(
        self, r: redis.Redis, keys: Keys, rate: float, inflight: int,
        per_host: dict[str, float] | None = None,
    ) -> None:  # fmt: skip
        self.r = r
        self.keys = keys
        self.rate = rate
        self.per_host = per_host or {}
        self._reserve = r.register_script(RESERVE)
        self._defer = r.register_script(DEFER)
        self._slots: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(inflight)
        )

    def gap_ms(self, host: str) -> int:
        rate = self.per_host.get(host, self.rate)
        return int(1000 / rate) if rate > 0 else 0

    async def wait_turn(self, host: str) -> None:
        gap = self.gap_ms(host)
        if gap <= 0:
            return
        # A sync call on purpose: one loopback round trip is cheaper than a thread hop.
        wait_ms = int(self._reserve(keys=[self.keys.host_next(host)], args=[gap]))
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000)

    def slot(self, host: str) -> asyncio.Semaphore:
        return self._slots[host]

    def defer(self, host: str, seconds: float) -> None:
        self._defer(keys=[self.keys.host_next(host)], args=[int(seconds * 1000)])
