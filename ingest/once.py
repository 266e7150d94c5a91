"""What `run --once` still owes, and when to try it again: pure decisions, tested fast.

A feed is *left* when its last poll in this run was deferred, as a whole or in part:

* `host_deferred`: its host's next turn is further away than `poll.max_host_wait` (a Retry-After
  drawn by another URL of the host, or a queue of our own requests): the feed was not fetched;
* `rate_limited`: the feed itself answered 429 (or 503 with Retry-After);
* `deferred`: the feed was read, but some of its items were not fetched yet, counted by reason
  (`host_deferred`, `rate_limited`, `robots_unavailable`).

`run --once` polls left feeds again when they are due, until `run.once_deadline`; what is still
left then is reported (`work_left`) and the exit status is `WORK_LEFT_EXIT`. A feed that drew a
429 itself goes after the other left work of its host: polled alongside it, its next 429 would
block the host again before they had their turn (tests/test_once.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

WORK_LEFT_EXIT = 3  # exit status of `run --once` with work left (1 is failure, 2 bad usage)
FEED_DEFERRALS = ("host_deferred", "rate_limited")  # poll outcomes that leave the whole feed


@dataclass
class Left:
    feed_url: str
    host: str
    outcome: str  # host_deferred | rate_limited | deferred
    until: float  # unix time from which it can be tried again
    items: dict[str, int] = field(default_factory=dict)  # deferred items by reason


def next_round(left: dict[str, Left], now: float, end: float) -> tuple[list[str], float | None]:
    """The feeds to poll now, and else when to look again (None: nothing left can become due
    before `end`, so waiting is pointless). Nothing is begun at or after `end`: a round that
    ran past the deadline is the last one."""
    if now >= end:
        return [], None
    busy = {x.host for x in left.values() if x.outcome != "rate_limited" and x.until <= end}
    ready = {fid: x for fid, x in left.items() if x.outcome != "rate_limited" or x.host not in busy}
    due = sorted(fid for fid, x in ready.items() if x.until <= now)
    if due:
        return due, None
    # A rate-limited feed waiting for its host's other work wakes with that work.
    wake = min((x.until for x in ready.values()), default=None)
    if wake is None or wake > end:
        return [], None
    return [], wake


def summary(left: dict[str, Left]) -> dict[str, dict[str, int]]:
    """Left work by reason: feeds by how they were left, items by why they wait."""
    items: Counter[str] = Counter()
    for x in left.values():
        items.update(x.items)
    return {
        "feeds": dict(Counter(x.outcome for x in left.values())),
        "items": dict(items),
    }


def added(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What a run added to the all-time counters, by outcome (those it did not move left out).
    Counters are shared: another process counting at the same time is counted in too."""
    moved = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: n for k, n in sorted(moved.items()) if n}
