"""RQ job entry points. Settings and the per-process context are built once per worker process."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import redis
import structlog
from rq import get_current_job

from ingest import settings
from workers.pipeline import Context, finish, process

log = structlog.get_logger("workers.jobs")


@lru_cache(maxsize=1)
def worker_settings() -> settings.Settings:
    return settings.load()


_contexts: dict[int, Context] = {}


def context(r: redis.Redis | None = None) -> Context:
    if r is None:
        job = get_current_job()
        if job is None:
            raise RuntimeError("process_batch needs a Redis connection outside RQ")
        r = job.connection
    ctx = _contexts.get(id(r))
    if ctx is None:
        ctx = _contexts[id(r)] = Context.build(worker_settings(), r)
    return ctx


HEARTBEAT_S = 30
BEAT_EVERY_S = 5.0  # a beat pushes the deadline 30 s out: one every few seconds is plenty
_beats: dict[str, tuple[float, list[bytes]]] = {}  # job id -> (last beat, its registry members)


def heartbeat() -> None:
    """Push this job's deadline in RQ's started registry to now + HEARTBEAT_S.

    A SimpleWorker runs the job in its own thread and so cannot heartbeat while it runs: RQ then
    only declares the job abandoned after its whole timeout. Beating between articles means a
    worker killed mid-batch is noticed within HEARTBEAT_S (plus the next maintenance pass), and
    its job retried; the articles it had already published are found published and skipped.
    Called before every article, it beats at most every BEAT_EVERY_S (two Redis round trips
    saved per article on a fast batch)."""
    job = get_current_job()
    if job is None:
        return
    now = time.monotonic()
    last, members = _beats.get(job.id, (0.0, []))
    if members and now - last < BEAT_EVERY_S:
        return
    key = job.started_job_registry.key
    members = members or [m for m, _score in job.connection.zscan_iter(key, match=f"{job.id}:*")]
    if members:
        deadline = time.time() + HEARTBEAT_S
        job.connection.zadd(key, dict.fromkeys(members, deadline), xx=True)
        _beats[job.id] = (now, members)


def process_batch(payloads: list[dict[str, Any]]) -> dict[str, int]:
    """Process a batch of fetched items; returns outcome -> count. Safe to run twice."""
    ctx = context()
    if ctx.learned is not None:  # a model installed since the last batch: used from this one on
        ctx.learned.refresh(ctx.r)
    _beats.clear()  # a new run of a job (a retry too) has its own registry entry to find
    stored = load_pages(ctx, payloads)
    tally: dict[str, int] = {}
    for payload in payloads:
        heartbeat()
        try:
            outcome = process(ctx, payload)
        except Exception as exc:  # one bad article must not sink its batch-mates
            log.exception("article_crashed", feed_url=payload.get("feed", {}).get("url"),
                          article_id=payload.get("link_id"), stage="pipeline")  # fmt: skip
            outcome = finish(ctx, payload, "failed", {}, detail=repr(exc)[:500])
        tally[outcome] = tally.get(outcome, 0) + 1
    if stored:  # every article of the batch has its outcome: the bodies are not needed again
        ctx.r.delete(*stored)
    return tally


def load_pages(ctx: Context, payloads: list[dict[str, Any]]) -> list[str]:
    """Put each payload's page body, stored beside the job by the poller, back in the payload
    (one round trip for the batch); returns their keys. A body gone (its TTL ran out while the
    job waited) leaves the feed's own content to the extraction ladder."""
    stored = [p for p in payloads if p["page"].get("stored")]
    if not stored:
        return []
    keys = [ctx.keys.page(p["claim"]) for p in stored]
    for p, body in zip(stored, ctx.r.mget(keys), strict=True):
        page = p["page"]
        page["html_z"] = body
        if body is None and page.get("outcome", "ok") == "ok":
            page.update(outcome="page_expired", error="page body expired before processing")
    return keys
