"""RQ job entry points. Settings and the per-process context are built once per worker process."""

from __future__ import annotations

import time

import redis
import structlog
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from ingest.core import settings
from ingest.core.job import JOB_FUNC, ArticleJob, attach_bodies, release_bodies
from workers import limits
from workers.context import Context
from workers.outcome import finish
from workers.pipeline import process

log = structlog.get_logger("workers.jobs")


_settings: list[settings.Settings] = []  # the one this worker process runs with
_contexts: dict[int, Context] = {}


def configure(resolved: settings.Settings) -> None:
    """Hand this process the settings its jobs run with (`run_worker` does, before any job), so
    that what the command line resolved (flags, --config) reaches the pipeline."""
    _settings[:] = [resolved]
    _contexts.clear()


def worker_settings() -> settings.Settings:
    """The configured settings; a worker started without `configure` (plain `rq worker`) resolves
    its own from the environment and config/, once."""
    if not _settings:
        configure(settings.load())
    return _settings[0]


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


limits.keep_alive = heartbeat  # also beaten while a long page is being extracted
_stopping = False


def request_stop() -> None:
    """Set by the worker's SIGTERM/SIGINT handler (ingest/runner.py): finish the article in
    hand, put the rest of the batch back in the queue."""
    global _stopping
    _stopping = True


def stop_requested() -> bool:
    return _stopping


def requeue_rest(ctx: Context, rest: list[ArticleJob]) -> set[str]:
    """The articles of a batch not started when the worker was asked to stop, as a job of their
    own (same settings as the poller's), so the stop waits for one article, not a batch. Their
    page bodies stay where the poller stored them; returns their keys."""
    from rq import Queue, Retry

    job = get_current_job()
    if job is None:
        return set()
    kept = release_bodies(rest, ctx.keys)  # attached again by the new job
    Queue(job.origin, connection=ctx.r).enqueue_call(
        JOB_FUNC, args=(rest,), timeout=int(job.timeout or 0) or None, result_ttl=60,
        failure_ttl=job.failure_ttl, retry=Retry(max=3),
    )  # fmt: skip
    log.info("batch_requeued", stage="pipeline", articles=len(rest), job_id=job.id)
    return kept


def process_batch(payloads: list[ArticleJob]) -> dict[str, int]:
    """Process a batch of fetched items; returns outcome -> count. Safe to run twice."""
    ctx = context()
    if ctx.learned is not None:  # a model installed since the last batch: used from this one on
        ctx.learned.refresh(ctx.r)
    _beats.clear()  # a new run of a job (a retry too) has its own registry entry to find
    stored = attach_bodies(ctx.r, ctx.keys, payloads)
    tally: dict[str, int] = {}
    for n, payload in enumerate(payloads):
        if n and _stopping:
            kept = requeue_rest(ctx, payloads[n:])
            stored = [k for k in stored if k not in kept]
            break
        heartbeat()
        try:
            outcome = process(ctx, payload)
        except JobTimeoutException:  # RQ's job timeout: it must end the job, not one article
            raise
        except Exception as exc:  # one bad article must not sink its batch-mates
            log.exception("article_crashed", feed_url=payload.get("feed", {}).get("url"),
                          article_id=payload.get("link_id"), stage="pipeline")  # fmt: skip
            outcome = finish(ctx, payload, "failed", {}, detail=repr(exc)[:500])
        tally[outcome] = tally.get(outcome, 0) + 1
    if stored:  # every article of the batch has its outcome: the bodies are not needed again
        ctx.r.delete(*stored)
    return tally
