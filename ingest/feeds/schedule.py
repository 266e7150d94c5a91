"""Scheduling decisions, as pure functions: when to poll a feed next, and how healthy it is.

* Cadence: an exponentially weighted estimate of new items per day; the next poll comes after
  half the expected gap between two items (so a story waits on average a quarter of that gap),
  clamped to [min_interval, max_interval].
* The server's own hints (`<ttl>`, `Cache-Control: max-age`, `Expires`) are lower bounds.
* Errors: exponential back-off from the learned interval, capped (default 24 h); never given up.
* Jitter (±10%) so feeds added together do not poll together.
* After a poll, `after_poll` decides all of it at once (back-off, blame, health, the state to
  save) from the feed's state and the poll's `PollResult`; the poller only writes the answer.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from dataclasses import dataclass, field

from ingest.core import outcomes
from ingest.net.egress import NETWORK_OUTCOMES

HEALTHY, DEGRADED, FAILING, GONE = "healthy", "degraded", "failing", "gone"
RATE_ALPHA = 0.3  # weight of the newest observation in the items-per-day estimate
RATE_LIMITED_LAG = 1.25  # a feed that drew a Retry-After comes back this many blocks later
SUCCESSES = frozenset({"ok", "not_modified", "unchanged", "deferred"})  # the feed answered


@dataclass(frozen=True)
class Bounds:
    min_interval: float = 120
    max_interval: float = 21600
    max_backoff: float = 86400
    default_interval: float = 900  # a feed whose rate is not known yet


def update_rate(
    old_rate: float | None, new_items: int, elapsed_s: float, prior: float | None = None
) -> float | None:
    """New items per day, smoothed. The first poll has no elapsed time to go by (its items are a
    backlog, not a rate): the rate stays unknown, or what the item dates said. Without an
    earlier rate, the first observation is blended with `prior` (the rate the default interval
    implies), so one quiet window slows polling a step instead of sending the feed to the
    maximum interval."""
    if elapsed_s <= 0:
        return old_rate
    if old_rate is None:
        old_rate = prior
    observed = new_items * 86400.0 / elapsed_s
    if old_rate is None:
        return observed
    return RATE_ALPHA * observed + (1 - RATE_ALPHA) * old_rate


def default_rate(default_interval: float) -> float:
    """The items-per-day rate for which interval_for gives `default_interval`."""
    return 86400.0 / (2 * max(default_interval, 1.0))


def interval_for(
    rate_per_day: float | None, bounds: Bounds, default: float, hint_s: float | None = None
) -> float:
    if rate_per_day is None:
        interval = default
    elif rate_per_day <= 0:
        interval = bounds.max_interval
    else:
        interval = 86400.0 / rate_per_day / 2
    interval = min(max(interval, bounds.min_interval), bounds.max_interval)
    if hint_s is not None and hint_s > interval:
        interval = min(hint_s, bounds.max_backoff)
    return interval


def rate_from_dates(dates: list[float], now: float, window_s: float = 7 * 86400) -> float | None:
    """Items per day from the items' own dates over the last `window_s` (a feed's cadence before
    we have watched it): the span from the oldest to now holds that many items. None when fewer
    than two dated items fall in the window."""
    recent = sorted(d for d in dates if now - window_s <= d <= now + 3600)
    if len(recent) < 2:
        return None
    span = max(now - recent[0], 3600.0)
    return len(recent) * 86400.0 / span


def backoff(errors: int, base: float, bounds: Bounds) -> float:
    """Delay after the `errors`-th consecutive failure (errors >= 1)."""
    return float(min(bounds.max_backoff, max(base, bounds.min_interval) * 2 ** min(errors - 1, 20)))


def jitter(seconds: float, spread: float = 0.1, rng: random.Random | None = None) -> float:
    r = rng or random
    return seconds * (1 + r.uniform(-spread, spread))


def health(errors: int, gone: bool = False) -> str:
    if gone:
        return GONE
    if errors == 0:
        return HEALTHY
    return DEGRADED if errors < 3 else FAILING


_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*(\d+)", re.I)


def cache_hint(headers: dict[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, from Cache-Control max-age or Expires."""
    match = _MAX_AGE.search(headers.get("cache-control", ""))
    if match:
        return float(match.group(1))
    expires = headers.get("expires")
    if expires:
        try:
            when = email.utils.parsedate_to_datetime(expires).timestamp()
        except (TypeError, ValueError):
            return None
        return max(0.0, when - (time.time() if now is None else now))
    return None


def is_stale(last_new_at: float | None, interval: float, now: float, k: float = 4) -> bool:
    return last_new_at is not None and now - last_new_at > k * max(interval, 1)


# ---------------------------------------------------------------- after a poll


@dataclass
class PollResult:
    """What one poll of a feed found (ingest/poller/feed.py), as `after_poll` needs it."""

    outcome: str  # ok | not_modified | unchanged | deferred | a FetchError's outcome | failed
    fields: dict[str, str | int] = field(default_factory=dict)  # feed state the poll learned
    hint: float | None = None  # the server's own lower bound on the interval (s)
    new: int = 0  # items enqueued
    error: outcomes.FetchError | None = None  # why the feed failed
    dated_rate: float | None = None  # items per day by the items' own dates (feed not watched yet)
    retry_in: float | None = None  # deferred items: seconds until their host has a slot
    deferred: dict[str, int] = field(default_factory=dict)  # deferred items by reason


@dataclass(frozen=True)
class NextPoll:
    """The decision after a poll: what to save, when to come back, and what to tell."""

    outcome: str  # the poll's, or `egress_down` when our network failed rather than the feed
    changes: dict[str, str | int]  # feed-state fields whose value changed
    delay: float  # seconds to the next poll, before jitter
    errors: int  # the error streak now
    until: float = 0.0  # a deferral's earliest retry (unix time) for run --once; 0 when none
    defer_host_for: float | None = None  # the feed itself answered 429/503: its host waits this


def after_poll(
    state: dict[str, str], result: PollResult, egress_down: bool, bounds: Bounds, now: float
) -> NextPoll:
    """Back-off, blame and health after one poll, from the feed's saved `state` (its hash as
    strings). `egress_down`: the egress monitor's verdict (ingest/net/egress.py); a network
    failure while it is down is ours (`egress_down`), not charged to the feed."""
    exc, outcome, new = result.error, result.outcome, result.new
    fields = dict(result.fields)
    errors = int(state.get("errors") or 0)
    until = 0.0
    defer_host_for = None
    if outcome in SUCCESSES:
        errors = 0
        last = float(state.get("last_polled") or 0)
        rate = float(state["rate"]) if state.get("rate") else None
        rate = update_rate(rate if rate is not None else result.dated_rate, new,
                           now - last if last else 0, default_rate(bounds.default_interval))  # fmt: skip
        interval = interval_for(rate, bounds, bounds.default_interval, result.hint)
        # Deferred items: back as soon as the host is free, not after min_interval.
        delay = min(interval, max(result.retry_in, 1.0)) if result.retry_in else interval
        if rate is not None:
            fields["rate"] = f"{rate:.4f}"
        fields["interval"] = f"{interval:.0f}"
        fields["last_error"] = ""
        fields["deferred_items"] = sum(result.deferred.values())  # waiting now (status, metrics)
        if result.deferred:
            until = now + (result.retry_in or 0)
            fields["deferred_until"] = f"{until:.0f}"
    else:
        interval = float(state.get("interval") or bounds.default_interval)
        blameless = isinstance(exc, outcomes.FetchError) and exc.blameless
        if not blameless and outcome in NETWORK_OUTCOMES and egress_down:
            # Every origin is failing at network level: our egress, not this feed.
            blameless, outcome = True, "egress_down"
            fields["last_error"] = "egress down: " + str(fields.get("last_error", ""))
        if outcome == "egress_down":
            delay = bounds.min_interval
        elif blameless:
            delay = backoff(max(errors, 1), interval, bounds)
        else:
            errors += 1
            delay = backoff(errors, interval, bounds)
        if isinstance(exc, outcomes.HostDeferred):
            until = now + exc.retry_after
            delay = exc.retry_after  # the host is free then: not a failure to back off from
        if isinstance(exc, outcomes.RateLimited):
            defer_host_for = exc.retry_after
            # A quarter of the block later than the work it deferred (which comes back when
            # the block ends), so this feed's next 429 does not re-arm it before their turn.
            until = now + exc.retry_after * RATE_LIMITED_LAG
            delay = max(delay, exc.retry_after * RATE_LIMITED_LAG)
    permanent = outcome == "gone" or (isinstance(exc, outcomes.DNSError) and exc.permanent)
    # A 410 says itself that it is permanent (RFC 9110 15.5.11): `gone` at once and probed
    # at max_backoff, not backed off step by step like a transient error; 404 needs three.
    said_gone = isinstance(exc, outcomes.Gone) and exc.status == 410
    if said_gone:
        delay = bounds.max_backoff
    gone = said_gone or (permanent and errors >= 3)
    fields.update(
        errors=errors,
        health=health(errors, gone),
        last_polled=f"{now:.0f}",
        last_outcome=outcome,
        items_seen=int(state.get("items_seen") or 0) + new,
    )
    if new or not state.get("last_new_at"):
        fields["last_new_at"] = f"{now:.0f}"
    changes = {k: v for k, v in fields.items() if state.get(k) != str(v)}
    return NextPoll(outcome, changes, delay, errors, until, defer_host_for)
