"""Is it them or is it us? Telling a feed's failure from a failure of our own network.

When the poller's egress breaks (resolver down, route gone, proxy dead), every feed fails at once
with network-level errors. Charging each feed for that would push healthy feeds into long
back-off and mark them failing. The monitor keeps a short window of network outcomes per origin:
when several distinct origins failed at network level and none succeeded, egress is down and
failures are not the feeds' fault.
"""

from __future__ import annotations

import time
from collections import deque

NETWORK_OUTCOMES = frozenset({"connect_error", "dns_error", "timeout"})


class EgressMonitor:
    def __init__(self, window_s: float = 120, min_origins: int = 3) -> None:
        self.window_s = window_s
        self.min_origins = min_origins
        self._events: deque[tuple[float, str, bool]] = deque()  # (at, origin, ok)

    def record(self, origin: str, outcome: str, now: float | None = None) -> None:
        """Note one request's result; outcomes other than success or network errors say
        nothing about our egress (a 404 proves the network works: it counts as success)."""
        now = time.monotonic() if now is None else now
        self._events.append((now, origin, outcome not in NETWORK_OUTCOMES))
        self._trim(now)

    def down(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._trim(now)
        failing: set[str] = set()
        for _at, origin, ok in self._events:
            if ok:
                return False
            failing.add(origin)
        return len(failing) >= self.min_origins

    def _trim(self, now: float) -> None:
        while self._events and self._events[0][0] < now - self.window_s:
            self._events.popleft()
