"""What operators see beyond counters: stage latency histograms, extraction success per site with
drift against each site's own baseline, and a compact per-article trace for `explain`.

All of it lives in Redis, written by whichever process did the work, so every machine adds to
the same series. Histograms are hashes of bucket counts (`<prefix>metrics:stage:<stage>`), site
results are per-day hashes (`<prefix>metrics:sites:<day>`, field `host|ok` / `host|fail`, kept
9 days), traces are one hash per article (`<prefix>trace:<article id>`) with a TTL.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

import redis

from ingest.core.keys import Keys

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
           1800.0, 3600.0, math.inf)  # fmt: skip
STAGES = ("fetch", "extract", "classify", "publish", "end_to_end")
SITE_DAYS = 9
BASELINE_DAYS = 7


def _bucket(seconds: float) -> str:
    for bound in BUCKETS:
        if seconds <= bound:
            return "+Inf" if math.isinf(bound) else repr(bound)
    return "+Inf"


def observe(pipe: Any, keys: Keys, stage: str, seconds: float) -> None:
    key = keys.stage_metrics(stage)
    pipe.hincrby(key, _bucket(max(seconds, 0.0)), 1)
    pipe.hincrbyfloat(key, "sum", max(seconds, 0.0))


def histograms(r: redis.Redis, keys: Keys) -> dict[str, tuple[list[tuple[str, int]], float]]:
    """stage -> (cumulative (upper bound, count) pairs, sum), as Prometheus wants them."""
    pipe = r.pipeline(transaction=False)
    for stage in STAGES:
        pipe.hgetall(keys.stage_metrics(stage))
    out = {}
    for stage, raw in zip(STAGES, pipe.execute(), strict=True):
        counts = {k.decode(): v.decode() for k, v in raw.items()}
        running = 0
        cumulative = []
        for bound in BUCKETS:
            name = "+Inf" if math.isinf(bound) else repr(bound)
            running += int(counts.get(name, 0))
            cumulative.append((name, running))
        out[stage] = (cumulative, float(counts.get("sum", 0.0)))
    return out


def site_result(pipe: Any, keys: Keys, host: str, ok: bool, at: float | None = None) -> None:
    day = int((time.time() if at is None else at) // 86400)
    key = keys.site_metrics(day)
    pipe.hincrby(key, f"{host}|{'ok' if ok else 'fail'}", 1)
    pipe.expire(key, SITE_DAYS * 86400)


@dataclass(frozen=True)
class SiteRate:
    site: str
    today_ok: int
    today_n: int
    base_ok: int
    base_n: int

    @property
    def today(self) -> float | None:
        return self.today_ok / self.today_n if self.today_n else None

    @property
    def baseline(self) -> float | None:
        return self.base_ok / self.base_n if self.base_n else None

    @property
    def drifting(self) -> bool:
        return is_drift(self.base_ok, self.base_n, self.today_ok, self.today_n)


def is_drift(base_ok: int, base_n: int, now_ok: int, now_n: int, drop: float = 0.3,
             min_base: int = 20, min_now: int = 10) -> bool:  # fmt: skip
    """A site's extraction success today fell more than `drop` below its own baseline (the
    previous days), both with enough articles to mean something: its template changed."""
    if base_n < min_base or now_n < min_now:
        return False
    return now_ok / now_n < base_ok / base_n - drop


def site_rates(
    r: redis.Redis, keys: Keys, top: int = 20, at: float | None = None
) -> list[SiteRate]:
    """The `top` sites by volume (today and baseline together): bounded label cardinality."""
    day = int((time.time() if at is None else at) // 86400)
    pipe = r.pipeline(transaction=False)
    for d in range(day - BASELINE_DAYS, day + 1):
        pipe.hgetall(keys.site_metrics(d))
    days = pipe.execute()
    stats: dict[str, list[int]] = {}  # site -> [today_ok, today_n, base_ok, base_n]
    for i, raw in enumerate(days):
        today = i == len(days) - 1
        for field, value in raw.items():
            site, _, kind = field.decode().rpartition("|")
            row = stats.setdefault(site, [0, 0, 0, 0])
            n = int(value)
            offset = 0 if today else 2
            row[offset + 1] += n
            if kind == "ok":
                row[offset] += n
    ranked = sorted(stats.items(), key=lambda kv: -(kv[1][1] + kv[1][3]))[:top]
    return [SiteRate(site, *row) for site, row in ranked]


def trace(pipe: Any, keys: Keys, article_id: str, fields: dict[str, Any],
          ttl: int) -> None:  # fmt: skip
    """Add to an article's trace (JSON-encoded values), refreshing its TTL (none if ttl <= 0:
    traces switched off)."""
    if ttl <= 0:
        return
    key = keys.trace(article_id)
    pipe.hset(key, mapping={k: json.dumps(v, ensure_ascii=False) for k, v in fields.items()})
    pipe.expire(key, ttl)


def read_trace(r: redis.Redis, keys: Keys, article_id: str) -> dict[str, Any]:
    raw: Any = r.hgetall(keys.trace(article_id))
    return {k.decode(): json.loads(v) for k, v in raw.items()}
