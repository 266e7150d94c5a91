"""Process orchestration for `run`: the poller in this process, N RQ SimpleWorkers under a
supervisor child (ingest/supervisor.py).

The supervisor is forked from this process after it has loaded what every worker needs
(trafilatura, numpy, the py3langid model, the lexicon, a topic model): about 1.5 s of CPU and
tens of MB that each worker would otherwise pay and hold on its own. The workers it forks share
those pages copy-on-write (`gc.freeze` keeps the collector from touching them).
`news-ingest worker` (the Procfile/compose role) still starts a worker on its own.

Shutdown on SIGINT/SIGTERM (to this process or its whole group): one `stopping` line; the
poller claims nothing more and gives the polls in progress `run.shutdown_grace` seconds, then
cancels them (their feeds are due again, their items' fetch claims freed); the workers are told
at once and finish the article in hand (ingest/supervisor.py); one `stopped` line says what was
left; the embedded server is stopped last, by the caller's context manager. A second signal
exits at once (the supervisor SIGKILLs the workers; their jobs are retried on the next start).
"""

from __future__ import annotations

import asyncio
import contextlib
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
from rq.exceptions import StopRequested
from rq.registry import StartedJobRegistry
from rq.worker import SimpleWorker, WorkerStatus

from ingest import once, supervisor
from ingest.core import timefmt
from ingest.core.connection import connect
from ingest.core.settings import Settings
from ingest.poller import REDIS_DOWN, Poller, PollStats
from ingest.status import WORKER_TTL

log = structlog.get_logger("ingest.runner")

# WORKER_TTL (ingest/status.py): an RQ worker's registration lives worker_ttl + 60 s past its last
# beat; its blocking dequeue times out every worker_ttl - 15 s, and then it beats and runs RQ's
# maintenance. RQ's default (420 s) meant an idle worker beat, and retried abandoned jobs, once in
# ~7 minutes.


def preload(settings: Settings) -> None:
    """What every worker loads, loaded once here before the fork."""
    from workers import context, jobs, language

    jobs.configure(settings)  # what the workers' pipeline will read
    context.warm(settings)
    language.identifier(tuple(sorted(settings.classify.languages)))
    gc.freeze()


def _worker_main(settings: Settings, url: str, burst: bool) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):  # RQ installs its own; not the parent's
        signal.signal(sig, signal.SIG_DFL)
    run_worker(settings, connect(url), burst)  # its own connection: sockets do not cross a fork


def spawn_workers(settings: Settings, url: str, count: int, burst: bool) -> list[BaseProcess]:
    if count < 1:  # workers run elsewhere (worker.count = 0): nothing to load here
        return []
    preload(settings)
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


class IngestWorker(SimpleWorker):
    """RQ's SimpleWorker, stopped gently: SIGTERM or SIGINT, once or several times (a terminal's
    Ctrl+C reaches the whole group and `run` passes the stop on too), asks it to finish the
    article in hand and put the rest of its batch back (workers/jobs.py). RQ would take a second
    signal as a cold shutdown; here only SIGKILL (from the supervisor, after
    `worker.job_timeout`) stops a worker mid-article."""

    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)

    def _request_stop(self, _signum: int, _frame: object) -> None:
        from workers import jobs

        jobs.request_stop()
        self._stop_requested = True
        if self.get_state() != WorkerStatus.BUSY:
            raise StopRequested()


def _stop_flag(_signum: int, _frame: object) -> None:
    from workers import jobs

    jobs.request_stop()


def run_worker(settings: Settings, r: redis.Redis, burst: bool = False) -> None:
    """One worker until it is stopped (or, with `burst`, the queue is empty). RQ's worker quits
    on a Redis error in the middle of a job ("found an unhandled exception"); this loop waits
    for the server (logged once per outage) and starts it again, however long the outage."""
    from workers import jobs

    jobs.configure(settings)  # passed in, never re-read from the environment
    queue = Queue(settings.stream.queue, connection=r)
    log.info("worker_started", queue=queue.name, burst=burst, pid=os.getpid())
    down = False
    while not jobs.stop_requested():
        for sig in (signal.SIGINT, signal.SIGTERM):  # the worker's handlers raise; ours do not
            signal.signal(sig, _stop_flag)
        worker = IngestWorker([queue], connection=r, job_monitoring_interval=5,
                              maintenance_interval=30, worker_ttl=WORKER_TTL)  # fmt: skip
        # register_birth during an outage; a stop while it starts, before RQ's own loop
        with contextlib.suppress(StopRequested, *REDIS_DOWN):
            worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _stop_flag)
        pause = 0.5
        while not jobs.stop_requested():
            try:
                r.ping()
                if burst and queue.count == 0:  # done, as RQ's burst mode means it
                    log.info("worker_stopped", pid=os.getpid())
                    return
                break
            except REDIS_DOWN as exc:
                if not down:
                    log.warning("redis_unavailable", stage="worker", error=str(exc)[:200])
                    down = True
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
        if down and not jobs.stop_requested():
            log.info("redis_available", stage="worker")
            down = False
        elif not jobs.stop_requested():
            time.sleep(0.5)  # RQ quit on something else: not in a tight loop
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
                    until=_until(stats),
                    deadline_s=settings.run.once_deadline)  # fmt: skip
    return stats


def _until(stats: PollStats) -> str | None:
    """When the last deferred feed's block ends (None when nothing is deferred)."""
    until = max((x.until for x in stats.left.values()), default=0)
    return timefmt.from_ts(until) if until else None


_held: list[signal.Signals] = []


def hold_signals() -> list[signal.Signals]:
    """From now on SIGINT and SIGTERM are kept, not acted on, until the loop of `run_forever` is
    up and handles them as any stop: a Ctrl+C while the server starts or the workers' models
    load (a second or two) is a graceful stop, never a KeyboardInterrupt traceback or a tree
    killed half-built. A second one exits at once (startup may be waiting on an unreachable
    server). Returns the list the held signals go to."""

    def hold(signum: int, _frame: object) -> None:
        if _held:
            log.warning("stop_forced", signal=signal.Signals(signum).name)
            raise SystemExit(1)
        log.info("stop_held", signal=signal.Signals(signum).name)
        _held.append(signal.Signals(signum))

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, hold)
    return _held


def run_forever(settings: Settings, r: redis.Redis, url: str,
                after_fork: Callable[[], None] | None = None,
                inherited: Sequence[int] = ()) -> int:  # fmt: skip
    """`after_fork` starts what must not be inherited by the workers (threads: a fork copies a
    lock a thread holds); `inherited` are descriptors (a listening socket) the supervisor
    closes, so that none outlives this process. Returns the exit status: 0 after a graceful
    stop."""
    early = hold_signals()
    count = settings.worker.count
    sup = None
    if count > 0:  # workers run elsewhere (worker.count = 0): nothing to load here
        preload(settings)
        sup = supervisor.start(settings, url, count, close=inherited)
    if after_fork is not None:
        after_fork()

    def tell_supervisor(force: bool = False) -> None:
        if sup is not None and sup.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(sup.pid, supervisor.FORCE_SIGNAL if force else signal.SIGTERM)

    failed: list[str] = []

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        poller = Poller(settings, r)

        def on_signal(sig: signal.Signals) -> None:
            if stop.is_set():  # the second one: at once
                log.warning("stop_forced", signal=sig.name)
                tell_supervisor(force=True)  # it SIGKILLs the workers
                os._exit(1)
            log.info("stopping", signal=sig.name, grace_s=settings.run.shutdown_grace,
                     waiting_for={"feeds_in_progress": len(poller.in_progress),
                                  "workers": count})  # fmt: skip
            stop.set()
            tell_supervisor()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        if early:
            on_signal(early[0])
        progress = asyncio.create_task(_progress(poller, stop))
        revive = asyncio.create_task(_revive(stop))
        if sup is not None:
            watch = asyncio.create_task(_watch(sup, stop, failed))
        try:
            await poller.run_forever(stop, settings.run.shutdown_grace)
        finally:
            progress.cancel()
            revive.cancel()
            if sup is not None:
                watch.cancel()
            await poller.aclose()
        log.info("poller_stopped")
        while sup is not None and sup.is_alive():  # signals still handled while we wait
            await asyncio.sleep(0.1)
        left: dict[str, int] = dict(poller.left)
        with contextlib.suppress(redis.RedisError):
            queue = Queue(settings.stream.queue, connection=r)
            left.update(queue_depth=queue.count, jobs_started=StartedJobRegistry(queue=queue).count)
        log.info("workers_stopped", count=count)
        log.info("stopped", left=left)

    try:
        asyncio.run(main())
    finally:
        if sup is not None and sup.is_alive():  # an exception in the poller: not a stop
            tell_supervisor()
            sup.join(settings.worker.job_timeout + 5)
            if sup.is_alive():
                sup.kill()
    return 1 if failed else 0


async def _revive(stop: asyncio.Event) -> None:
    """The embedded server this process owns, started again if it dies (it is our child: no
    one else would); the poller and the workers ride out the gap as any outage."""
    from ingest.core.embedded import revive_owned

    while not stop.is_set():
        await asyncio.sleep(1.0)
        revive_owned()


async def _watch(sup: BaseProcess, stop: asyncio.Event, failed: list[str]) -> None:
    """The supervisor dying on its own (it never should) stops the service with status 1, for
    systemd or compose to restart it: polling on without workers would only fill the queue."""
    while not stop.is_set():
        await asyncio.sleep(1.0)
        if not sup.is_alive() and not stop.is_set():
            log.error("supervisor_died", exitcode=sup.exitcode)
            failed.append("supervisor")
            stop.set()



async def _progress(poller: Poller, stop: asyncio.Event, every: float = 30.0) -> None:
    from ingest.core import counters

    while not stop.is_set():
        await asyncio.sleep(every)
        try:
            arts = counters.read(poller.r, poller.keys, "articles")
        except redis.RedisError:
            continue  # the poller reports outages
        log.info("progress", polls=poller.stats.polls, polls_in_flight=poller.stats.in_flight,
                 polls_by_outcome=dict(poller.stats.by_outcome), enqueued=poller.stats.enqueued,
                 published=arts.get("published", 0), duplicates=arts.get("duplicate", 0),
                 failed=sum(v for k, v in arts.items() if k not in ("published", "duplicate",
                                                                     "updated")))  # fmt: skip
