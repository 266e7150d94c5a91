"""What operators look at: queues, workers, the stream and its consumer groups, throughput and
feed health, gathered in one pass from Redis (the same data for `status`, `--json` and metrics).

The rules operators read figures by live here, once each, so every view agrees:

* a worker is live while its heartbeat is fresh (`worker_is_fresh`): a registration left behind
  by a killed worker is not counted, in `status`, in `/readyz` or in `news_ingest_workers`;
* a feed's health is `feed_health` of its state, for the count by health and for each row;
* throughput is counted in 10-second buckets, so "in the last 60 s" means 50 to 60 s and falls
  to 0 within a minute of the last publication (`counters.published_since`);
* `feed_view` is a feed's state with typed values (ints, floats, lists), for `feeds list`;
* a password in a feed's URL is shown as `***` in every view (`redact_text`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.worker import BaseWorker

from ingest.core import counters, deadletters, observe
from ingest.core.keys import Keys
from ingest.core.settings import Settings
from ingest.core.streams import stream_groups
from ingest.core.urls import redact_text
from ingest.feeds import schedule
from ingest.feeds.registry import Registry

HEARTBEAT_MAX_AGE = 120.0  # the poller beats every loop tick; two minutes of silence is a stop
# The RQ worker_ttl our workers run with: an idle worker heartbeats every WORKER_TTL - 15 s = 20 s
# (its blocking dequeue's timeout), so an idle one silent for IDLE_MAX_AGE has missed two beats.
WORKER_TTL = 35
IDLE_MAX_AGE = 60.0
# A SimpleWorker heartbeats when it takes a job and when it is done; RQ gives it the job's timeout
# plus this much (`SimpleWorker.get_heartbeat_ttl`).
BUSY_GRACE = 60
RATE_WINDOW = 60  # seconds behind "published in the last ..." (status, --json last_minute)


def worker_is_fresh(state: str, heartbeat_age: float | None, job_timeout: float) -> bool:
    """Whether a worker registration belongs to a live worker: its last heartbeat is younger than
    the next one is due (idle: IDLE_MAX_AGE; busy: the job's timeout + BUSY_GRACE)."""
    if heartbeat_age is None:
        return False
    limit = job_timeout + BUSY_GRACE if state == "busy" else IDLE_MAX_AGE
    return heartbeat_age <= limit


def live_workers(
    r: redis.Redis, job_timeout: float = 300, now: float | None = None
) -> list[BaseWorker]:
    """The registered workers whose heartbeat is fresh (`worker_is_fresh`)."""
    at = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)
    live: list[BaseWorker] = []
    for w in Worker.all(connection=r):
        beat = w.last_heartbeat
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)  # RQ stores UTC without a zone
        age = (at - beat).total_seconds() if beat is not None else None
        if worker_is_fresh(w.get_state(), age, job_timeout):
            live.append(w)
    return live


def problems(r: redis.Redis, keys: Keys, job_timeout: float = 300) -> list[str]:
    """Why the service is not ready ([] when it is): Redis, live workers, poller heartbeat."""
    try:
        r.ping()
        heartbeat = r.get(keys.poller_heartbeat)
        workers = len(live_workers(r, job_timeout))
    except redis.RedisError as exc:
        return [f"redis unreachable: {exc}"]
    found = []
    if workers == 0:
        found.append("no live workers")
    if heartbeat is None or time.time() - float(heartbeat) > HEARTBEAT_MAX_AGE:
        found.append("poller heartbeat missing or stale")
    return found


def feed_health(state: dict[str, Any]) -> str:
    """A feed's health as stored by its last poll (`schedule.health`), `new` before any poll.
    The one reading of it: counted by health and shown per feed."""
    if not state.get("last_polled") and not state.get("health"):
        return "new"
    errors = _int(state.get("errors"))
    return schedule.health(errors, gone=state.get("health") == schedule.GONE)


# Feed-state fields by type (everything else is text); `feed_view` converts them.
_INTS = ("errors", "items_seen", "interval", "shared_links", "deferred_items")
_FLOATS = ("rate", "last_polled", "last_new_at", "next_poll", "deferred_until")
_LISTS = ("tags",)


def feed_view(state: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """A feed's stored state (all strings in Redis) with typed values: ints, floats (unix times),
    lists; the health from `feed_health`; `next_in` seconds until the next poll (0 when due or
    overdue) and `due` (true when it is)."""
    now = time.time() if now is None else now
    out: dict[str, Any] = dict(state)
    for name in _INTS:
        out[name] = _int(state.get(name)) if state.get(name) not in (None, "") else None
    for name in _FLOATS:
        out[name] = _float(state.get(name))
    for name in _LISTS:
        out[name] = _list(state.get(name))
    out["health"] = feed_health(state)
    # a password in the feed's URL is the user's secret: not for a screen or a pasted listing
    out["url"] = redact_text(str(state.get("url", "")))
    nxt = out["next_poll"]
    out["due"] = nxt is not None and nxt <= now
    out["next_in"] = None if nxt is None else max(0, round(nxt - now))
    return out


def next_label(view: dict[str, Any]) -> str:
    """When the feed is polled next, for people: `due`, `in 45s`, `in 12m`, `in 3h05m`, `-`."""
    if view.get("next_in") is None:
        return "-"
    if view.get("due"):
        return "due"
    s = int(view["next_in"])
    if s < 60:
        return f"in {s}s"
    if s < 3600:
        return f"in {s // 60}m"
    return f"in {s // 3600}h{s % 3600 // 60:02d}m"


def count_line(counts: dict[str, int]) -> str:
    """`published 12 · duplicate 3`, largest first: a counter hash as a table cell."""
    return " · ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _int(value: Any) -> int:
    try:
        return int(float(value or 0))
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    try:
        found = json.loads(value or "[]")
    except (TypeError, ValueError):
        return [value]
    return found if isinstance(found, list) else [found]


def unreachable(exc: Exception) -> dict[str, Any]:
    """What `status` reports while Redis cannot be read: not ready, and why."""
    return {"ready": False, "problems": [f"redis unreachable: {exc}"],
            "redis": {"ok": False, "error": str(exc)}}  # fmt: skip


def gather(settings: Settings, r: redis.Redis) -> dict[str, Any]:
    keys = Keys(settings.redis.prefix)
    queue = Queue(settings.stream.queue, connection=r)
    now = time.time()
    feeds = Registry(r, keys).all()
    health = Counter(feed_health(f) for f in feeds)
    stale = [
        redact_text(f["url"]) for f in feeds
        if schedule.is_stale(float(f["last_new_at"]) if f.get("last_new_at") else None,
                             float(f.get("interval") or settings.poll.default_interval), now,
                             settings.poll.stale_factor)
    ]  # fmt: skip
    worst = sorted(
        (f for f in feeds if int(f.get("errors") or 0) > 0),
        key=lambda f: -int(f.get("errors") or 0),
    )[:10]
    heartbeat = r.get(keys.poller_heartbeat)
    issues = problems(r, keys, settings.worker.job_timeout)
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
        "workers": len(live_workers(r, settings.worker.job_timeout, now)),
        "poller_heartbeat_age": round(now - float(heartbeat), 1) if heartbeat else None,
        "stream": {
            "key": keys.articles,
            "length": r.xlen(keys.articles),
            "groups": stream_groups(r, keys.articles),
        },
        "deadletters": deadletters.count(r, keys),
        "throughput": {
            "window_s": RATE_WINDOW,
            "last_minute": counters.published_since(r, keys, RATE_WINDOW, now),
            "last_hour": counters.published_since(r, keys, 3600, now),
            "last_day": counters.published_since(r, keys, 86400, now),
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
        "topic_models": _topic_models(r, keys),
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
                    "url": redact_text(f["url"]),
                    "health": feed_health(f),
                    "errors": int(f.get("errors") or 0),
                    "last_error": f.get("last_error", ""),
                }
                for f in worst
            ],
        },
    }


def _topic_models(r: redis.Redis, keys: Keys) -> dict[str, Any]:
    from workers import learn  # the workers' package: numpy and the lexicon, loaded on demand

    return learn.describe(r, keys)


def _info(r: redis.Redis) -> dict[str, Any]:
    info: dict[str, Any] = r.info("memory")
    return info
