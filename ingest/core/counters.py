"""Counters in Redis, so that every process and machine adds to the same figures.

Counters are hashes `<prefix>metrics:<family>` (field = outcome), plus 10-second buckets of
published articles for throughput (`<prefix>metrics:published10s:<slot>`, kept one day): fine
enough that "the last 60 s" stops counting a publication within a minute of it. (Dead letters
have their own module: `ingest.core.deadletters`.)
"""

from __future__ import annotations

import time
from typing import Any

import redis

from ingest.core.keys import Keys

BUCKET_S = 10  # throughput bucket width (the publish script keeps each for 86,520 s)


def throughput_bucket(keys: Keys, at: float | None = None) -> str:
    """The throughput counter (published articles) of the 10 seconds holding `at` (default
    now), kept one day (the publish script sets its TTL)."""
    slot = int((time.time() if at is None else at) // BUCKET_S)
    return keys.published_slot(slot)


def incr(pipe: Any, keys: Keys, family: str, outcome: str, n: int = 1) -> None:
    """Queue a counter increment on a pipeline or client. (Publications are counted by the
    publish script itself, atomically with the stream entry.)"""
    pipe.hincrby(keys.counters(family), outcome, n)


def read(r: redis.Redis, keys: Keys, family: str) -> dict[str, int]:
    raw: dict[bytes, bytes] = r.hgetall(keys.counters(family))  # type: ignore[assignment]
    return {k.decode(): int(v) for k, v in raw.items()}


def bucket_slots(seconds: int, now: float) -> range:
    """The buckets that make up "the last `seconds`": the current one and the ones before it
    that start inside the window (so the window covers `seconds - BUCKET_S` to `seconds`)."""
    current = int(now // BUCKET_S)
    return range(current - max(seconds // BUCKET_S, 1) + 1, current + 1)


def published_since(r: redis.Redis, keys: Keys, seconds: int, now: float | None = None) -> int:
    """Articles published in the last `seconds` (see `bucket_slots` for the exact window)."""
    at = time.time() if now is None else now
    names = [keys.published_slot(m) for m in bucket_slots(seconds, at)]
    total = 0
    for start in range(0, len(names), 1000):  # a day is 8,640 buckets: MGET them in slices
        total += sum(int(v) for v in r.mget(names[start : start + 1000]) if v)
    return total
