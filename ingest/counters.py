"""Counters and dead letters in Redis, so that every process and machine adds to the same figures.

Counters are hashes `<prefix>metrics:<family>` (field = outcome), plus per-minute buckets of
published articles for throughput (`<prefix>metrics:published:<minute>`, kept one day).
"""

from __future__ import annotations

import time
from typing import Any

import redis

from ingest.keys import Keys

DEADLETTER_MAXLEN = 100_000


def minute_bucket(keys: Keys, at: float | None = None) -> str:
    """This minute's throughput counter (published articles), kept one day."""
    return keys.k("metrics", "published", str(int((time.time() if at is None else at) // 60)))


def incr(pipe: Any, keys: Keys, family: str, outcome: str, n: int = 1) -> None:
    """Queue a counter increment on a pipeline or client. (Publications are counted by the
    publish script itself, atomically with the stream entry.)"""
    pipe.hincrby(keys.counters(family), outcome, n)


def read(r: redis.Redis, keys: Keys, family: str) -> dict[str, int]:
    raw: dict[bytes, bytes] = r.hgetall(keys.counters(family))  # type: ignore[assignment]
    return {k.decode(): int(v) for k, v in raw.items()}


def published_since(r: redis.Redis, keys: Keys, seconds: int) -> int:
    now = int(time.time() // 60)
    buckets = [keys.k("metrics", "published", str(m)) for m in range(now - seconds // 60, now + 1)]
    return sum(int(v) for v in r.mget(buckets) if v)


def deadletter(
    r: Any, keys: Keys, reason: str, *, url: str = "", feed_url: str = "",
    article_id: str = "", detail: str = "", body_z: bytes | None = None,
) -> None:  # fmt: skip
    """Record a failed article with its reason and compressed raw body, for `replay`."""
    fields: dict[str, Any] = {
        "reason": reason,
        "url": url,
        "feed_url": feed_url,
        "article_id": article_id,
        "detail": detail[:2000],
        "at": f"{time.time():.3f}",
    }
    if body_z:  # the raw body as the poller packed it (ingest.bodies)
        fields["body_z"] = body_z
    r.xadd(keys.deadletter, fields, maxlen=DEADLETTER_MAXLEN, approximate=True)
