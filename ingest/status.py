"""What operators look at: queues, workers, the stream and its consumer groups, throughput and
feed health, gathered in one pass from Redis (the same data for `status`, `--json` and metrics).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import redis
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry

from ingest import counters, observe, schedule
from ingest.keys import Keys
from ingest.registry import Registry
from ingest.settings import Settings
from ingest.streams import stream_groups

HEARTBEAT_MAX_AGE = 120.0  # the poller beats every loop tick; two minutes of silence is a stop


def problems(r: redis.Redis, keys: Keys) -> list[str]:
    """Why the service is not ready ([] when it is): Redis, workers, poller heartbeat."""
    try:
        r.ping()
        heartbeat = r.get(keys.k("poller", "heartbeat"))
        workers = Worker.count(connection=r)
    except redis.RedisError as exc:
        return [f"redis unreachable: {exc}"]
    found = []
    if workers == 0:
        found.append("no live workers")
    if heartbeat is None or time.time() - float(heartbeat) > HEARTBEAT_MAX_AGE:
        found.append("poller heartbeat missing or stale")
    return found


def gather(settings: Settings, r: redis.Redis) -> dict[str, Any]:
    keys = Keys(settings.redis.prefix)
    queue = Queue(settings.stream.queue, connection=r)
    now = time.time()
    feeds = Registry(r, keys).all()
    health = Counter(f.get("health") or "new" for f in feeds)
    stale = [
        f["url"] for f in feeds
        if schedule.is_stale(float(f["last_new_at"]) if f.get("last_new_at") else None,
                             float(f.get("interval") or settings.poll.default_interval), now,
                             settings.poll.stale_factor)
    ]  # fmt: skip
    worst = sorted(
        (f for f in feeds if int(f.get("errors") or 0) > 0),
        key=lambda f: -int(f.get("errors") or 0),
    )[:10]
    heartbeat = r.get(keys.k("poller", "heartbeat"))
    issues = problems(r, keys)
    sites = observe.site_rates(r, keys)
    return {
        "ready": not issues,
        "problems": issues,
        "redis": {"ok": True, "used_memory": int(_info(r).get("used_memory", 0))},
        "queues": {
            settings.stream.queue: {
                "depth": queue.count,
                "started": StartedJobRegistry(queue=queue).count,
                "failed": FailedJobRegistry(queue=queue).count,
            }
        },
        "workers": len(Worker.all(connection=r)),
        "poller_heartbeat_age": round(now - float(heartbeat), 1) if heartbeat else None,
        "stream": {
            "key": keys.articles,
            "length": r.xlen(keys.articles),
            "groups": stream_groups(r, keys.articles),
        },
        "deadletters": r.xlen(keys.deadletter),
        "throughput": {
            "last_minute": counters.published_since(r, keys, 60),
            "last_hour": counters.published_since(r, keys, 3600),
            "last_day": counters.published_since(r, keys, 86400),
        },
        "articles": counters.read(r, keys, "articles"),
        "sites": [
            {
                "site": s.site,
                "today": s.today,
                "today_n": s.today_n,
                "baseline": s.baseline,
                "baseline_n": s.base_n,
                "drifting": s.drifting,
            }
            for s in sites
        ],
        "drifting_sites": [s.site for s in sites if s.drifting],
        "polls": counters.read(r, keys, "polls"),
        # items left for later (busy host, Retry-After, robots.txt unavailable): deferrals so
        # far by reason, and how many wait now (each feed's last poll)
        "deferred": {
            "by_reason": counters.read(r, keys, "deferred"),
            "waiting": sum(int(f.get("deferred_items") or 0) for f in feeds),
        },
        "feeds": {
            "total": len(feeds),
            "by_health": dict(health),
            "stale": stale,
            "worst": [
                {
                    "url": f["url"],
                    "health": f.get("health"),
                    "errors": int(f.get("errors") or 0),
                    "last_error": f.get("last_error", ""),
                }
                for f in worst
            ],
        },
    }


def _info(r: redis.Redis) -> dict[str, Any]:
    info: dict[str, Any] = r.info("memory")
    return info
