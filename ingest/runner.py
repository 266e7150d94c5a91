"""Process orchestration for `run`: the poller in this process, N RQ SimpleWorkers as children.

The children are forked from this process after it has loaded what every worker needs
(trafilatura, numpy, the py3langid model, the lexicon, a topic model): about 1.5 s of CPU and
tens of MB that each worker would otherwise pay and hold on its own. They share those pages
copy-on-write (`gc.freeze` keeps the collector from touching them). `news-ingest worker` (the
Procfile/compose role) still starts a worker on its own.

Shutdown order on SIGINT/SIGTERM: stop claiming feeds, let in-flight polls finish, send the
workers SIGTERM (RQ's warm shutdown: finish the current job), wait, then the embedded server is
stopped by the caller's context manager.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess

import redis
import structlog
from rq import Queue
from rq.registry import StartedJobRegistry
from rq.worker import SimpleWorker

from ingest import once
from ingest.connection import connect
from ingest.poller import Poller, PollStats
from ingest.settings import Settings

log = structlog.get_logger("ingest.runner")


def preload() -> None:
    """What every worker loads, loaded once here before the fork."""
    from workers import classify, jobs, pipeline

    worker_settings = jobs.worker_settings()  # what the workers' pipeline will read
    pipeline.warm(worker_settings)
    classify.identifier(tuple(sorted(worker_settings.classify.languages)))
    gc.freeze()


def _worker_main(settings: Settings, url: str, burst: bool) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):  # RQ installs its own; not the parent's
        signal.signal(sig, signal.SIG_DFL)
    run_worker(settings, connect(url), burst)  # its own connection: sockets do not cross a fork


def spawn_workers(settings: Settings, url: str, count: int, burst: bool) -> list[BaseProcess]:
    if count < 1:  # workers run elsewhere (worker.count = 0): nothing to load here
        return []
    preload()
    fork = multiprocessing.get_context("fork")
    procs: list[BaseProcess] = [
        fork.Process(target=_worker_main, args=(settings, url, burst), name=f"worker-{n}")
        for n in range(count)
    ]
    for p in procs:
        p.start()
    return procs


def stop_workers(procs: Sequence[BaseProcess], timeout: float = 30) -> None:
    for p in procs:
        if p.is_alive() and p.pid is not None:
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(timeout=max(0.1, deadline - time.monotonic()))
        if p.is_alive():
            log.warning("worker_kill", pid=p.pid)
            p.kill()
            p.join()


def run_worker(settings: Settings, r: redis.Redis, burst: bool = False) -> None:
    queue = Queue(settings.stream.queue, connection=r)
    # maintenance every 30 s: a job whose worker died (no heartbeat for ~65 s) is retried soon
    worker = SimpleWorker([queue], connection=r, job_monitoring_interval=5, maintenance_interval=30)
    log.info("worker_started", queue=queue.name, burst=burst, pid=os.getpid())
    worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
    log.info("worker_stopped", pid=os.getpid())


def run_once(settings: Settings, r: redis.Redis, url: str, feed_ids: list[str] | None) -> PollStats:
    """Poll every feed, wait up to `run.once_deadline` for what was deferred (ingest/once.py),
    then process the queue with burst workers. What is left (feeds, items, jobs) is in the
    stats and logged once as `work_left`; the CLI then exits with `once.WORK_LEFT_EXIT`."""

    async def poll() -> PollStats:
        poller = Poller(settings, r)
        try:
            return await poller.run_once(feed_ids, deadline=settings.run.once_deadline)
        finally:
            await poller.aclose()

    stats = asyncio.run(poll())
    log.info("poll_done", stage="poll", feeds=stats.feeds, new_items=stats.items_new,
             enqueued=stats.enqueued, outcomes=stats.by_outcome,
             deferred=stats.deferred)  # fmt: skip
    queue = Queue(settings.stream.queue, connection=r)
    if queue.count:
        count = max(1, min(settings.worker.count, queue.count))
        procs = spawn_workers(settings, url, count, burst=True)
        for p in procs:
            p.join()
    started = StartedJobRegistry(queue=queue)
    stats.jobs_left = queue.count + started.count
    if stats.jobs_left or stats.left:
        left = once.summary(stats.left)
        log.warning("work_left", queue_depth=queue.count, started=started.count,
                    feeds=left["feeds"], items=left["items"],
                    feed_urls=sorted(x.feed_url for x in stats.left.values())[:20],
                    until=_iso(max((x.until for x in stats.left.values()), default=0)),
                    deadline_s=settings.run.once_deadline)  # fmt: skip
    return stats


def run_forever(settings: Settings, r: redis.Redis, url: str,
                after_fork: Callable[[], None] | None = None) -> None:  # fmt: skip
    """`after_fork` starts what must not be inherited by the workers (threads, listening
    sockets: a fork copies a lock a thread holds, and the socket would outlive this process)."""
    procs = spawn_workers(settings, url, settings.worker.count, burst=False)
    if after_fork is not None:
        after_fork()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        poller = Poller(settings, r)
        progress = asyncio.create_task(_progress(poller, stop))
        try:
            await poller.run_forever(stop)
        finally:
            progress.cancel()
            await poller.aclose()
        log.info("poller_stopped")

    try:
        asyncio.run(main())
    finally:
        stop_workers(procs)
        log.info("workers_stopped", count=len(procs))


def _iso(ts: float) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else None


async def _progress(poller: Poller, stop: asyncio.Event, every: float = 30.0) -> None:
    from ingest import counters

    while not stop.is_set():
        await asyncio.sleep(every)
        try:
            arts = counters.read(poller.r, poller.keys, "articles")
        except redis.RedisError:
            continue  # the poller reports outages
        log.info("progress", feeds_polled=poller.stats.feeds, enqueued=poller.stats.enqueued,
                 published=arts.get("published", 0), duplicates=arts.get("duplicate", 0),
                 failed=sum(v for k, v in arts.items() if k not in ("published", "duplicate",
                                                                     "updated")))  # fmt: skip
