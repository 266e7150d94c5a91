"""Process orchestration for `run`: the poller in this process, N RQ SimpleWorkers as children.

Shutdown order on SIGINT/SIGTERM: stop claiming feeds, let in-flight polls finish, send the
workers SIGTERM (RQ's warm shutdown: finish the current job), wait, then the embedded server is
stopped by the caller's context manager.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import redis
import structlog
from rq import Queue
from rq.registry import StartedJobRegistry
from rq.worker import SimpleWorker

from ingest.poller import Poller, PollStats
from ingest.settings import Settings

log = structlog.get_logger("ingest.runner")


def worker_command(url: str, burst: bool) -> list[str]:
    cmd = [sys.executable, "-m", "ingest.cli", "--redis-url", url, "worker"]
    return [*cmd, "--burst"] if burst else cmd


def spawn_workers(url: str, count: int, burst: bool) -> list[subprocess.Popen[bytes]]:
    env = dict(os.environ, NEWS_INGEST_REDIS_URL=url)
    return [subprocess.Popen(worker_command(url, burst), env=env) for _ in range(count)]


def stop_workers(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("worker_kill", pid=p.pid)
            p.kill()
            p.wait()


def run_worker(settings: Settings, r: redis.Redis, burst: bool = False) -> None:
    queue = Queue(settings.stream.queue, connection=r)
    # maintenance every 30 s: a job whose worker died (no heartbeat for ~65 s) is retried soon
    worker = SimpleWorker([queue], connection=r, job_monitoring_interval=5, maintenance_interval=30)
    log.info("worker_started", queue=queue.name, burst=burst, pid=os.getpid())
    worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
    log.info("worker_stopped", pid=os.getpid())


def run_once(settings: Settings, r: redis.Redis, url: str, feed_ids: list[str] | None) -> PollStats:
    async def poll() -> PollStats:
        poller = Poller(settings, r)
        try:
            return await poller.run_once(feed_ids)
        finally:
            await poller.aclose()

    stats = asyncio.run(poll())
    log.info("poll_done", stage="poll", feeds=stats.feeds, new_items=stats.items_new,
             enqueued=stats.enqueued, outcomes=stats.by_outcome)  # fmt: skip
    queue = Queue(settings.stream.queue, connection=r)
    if queue.count:
        procs = spawn_workers(url, max(1, min(settings.worker.count, queue.count)), burst=True)
        for p in procs:
            p.wait()
    started = StartedJobRegistry(queue=queue)
    if queue.count or started.count:
        log.warning("work_left", queue_depth=queue.count, started=started.count)
    return stats


def run_forever(settings: Settings, r: redis.Redis, url: str) -> None:
    procs = spawn_workers(url, settings.worker.count, burst=False)

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
