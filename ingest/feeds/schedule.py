"""Scheduling decisions, as pure functions: when to poll a feed next, and how healthy it is.

* Cadence: an exponentially weighted estimate of new items per day; the next poll comes after
  half the expected gap between two items (so a story waits on average a quarter of that gap),
  clamped to [min_interval, max_interval].
* The server's own hints (`<ttl>`, `Cache-Control: max-age`, `Expires`) are lower bounds.
* Errors: exponential back-off from the learned interval, capped (default 24 h); never given up.
* Jitter (±10%) so feeds added together do not poll together.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from dataclasses import dataclass

HEALTHY, DEGRADED, FAILING, GONE = "healthy", "degraded", "failing", "gone"
RATE_ALPHA = 0.3  # weight of the newest observation in the items-per-day estimate


@dataclass(frozen=True)
class Bounds:
    min_interval: float = 120
    max_interval: float = 21600
    max_backoff: float = 86400


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
