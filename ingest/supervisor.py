"""The worker supervisor of `run`: one child process that forks the RQ workers and keeps them alive.

It is forked from `run` after the preload (ingest/runner.py), before `run` starts any thread,
so it is single-threaded and every worker it forks, at start or as a replacement, shares the
preloaded pages copy-on-write. What it does:

* respawns a worker that dies: at once when it had run a while, with back-off (1 s doubling to
  30 s) when it keeps dying within seconds of its start;
* a dead worker's job is handled as abandoned right away (RQ retries it) and its registration is
  removed, instead of waiting for its heartbeat to lapse; every SWEEP_S it also retries jobs
  whose heartbeat lapsed elsewhere (RQ's own pass runs only between a worker's jobs);
* dies with `run` (PR_SET_PDEATHSIG), and the workers die with it the same way;
* on SIGTERM: SIGTERM to the workers (each finishes the article in hand, puts the rest of its
  batch back in the queue, exits), SIGKILL to any still alive after `worker.job_timeout`;
  FORCE_SIGNAL (from `run`, on its second signal) kills them at once. SIGTERM, however many,
  is one stop: a SIGTERM to the whole group (systemd's default, `kill -TERM -<pgid>`) reaches
  this process twice, from the sender and passed on by `run`, and when a second SIGTERM meant
  "now" that one stop SIGKILLed the workers mid-article (their jobs run again by the next
  start: tests/test_crashes.py). SIGINT is ignored: a terminal's Ctrl+C reaches the whole
  process group, and `run` decides.

RQ's WorkerPool (rq 3.0) forks and respawns workers too, but with no back-off, no parent-death
handling and no early retry of a dead worker's job, and its workers quit on a Redis error in a
job: what it would leave of itself after those changes is the fork loop below.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

import redis
import structlog
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import StartedJobRegistry

from ingest.core.embedded import die_with_parent, held_fds
from ingest.core.settings import Settings

log = structlog.get_logger("ingest.supervisor")

FORCE_SIGNAL = signal.SIGUSR1  # `run`'s forced stop: the workers are killed at once
QUICK_DEATH_S = 10.0  # a worker dying this soon after its start died "at once"
MAX_BACKOFF_S = 30.0
SWEEP_S = 10.0
TICK_S = 0.2


def respawn_delay(lived_s: float, quick_deaths: int) -> tuple[float, int]:
    """(seconds to wait before the replacement, quick deaths in a row so far)."""
    if lived_s >= QUICK_DEATH_S:
        return 0.0, 0
    quick_deaths += 1
    return min(MAX_BACKOFF_S, 2.0 ** (quick_deaths - 1)), quick_deaths


@dataclass
class Slot:
    n: int
    proc: BaseProcess | None = None
    started: float = 0.0
    quick_deaths: int = 0
    next_start: float = 0.0


def _worker_main(settings: Settings, url: str, supervisor: int) -> None:
    die_with_parent(signal.SIGTERM)
    if os.getppid() != supervisor:  # the supervisor died before the line above
        os._exit(0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the supervisor's handler is not ours
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # run_worker installs the worker's own
    from ingest.core.connection import connect
    from ingest.runner import run_worker

    run_worker(settings, connect(url))


class Supervisor:
    def __init__(self, settings: Settings, url: str, count: int) -> None:
        from ingest.core.connection import connect

        self.settings = settings
        self.url = url
        self.r = connect(url)
        self.queue = Queue(settings.stream.queue, connection=self.r)
        self.slots = [Slot(n) for n in range(count)]
        self.fork = multiprocessing.get_context("fork")
        self.stopping = False
        self.forced = False
        self.respawned = 0

    def _on_term(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def _on_force(self, _signum: int, _frame: object) -> None:
        self.stopping = self.forced = True

    def spawn(self, slot: Slot) -> None:
        proc = self.fork.Process(
            target=_worker_main,
            args=(self.settings, self.url, os.getpid()),
            name=f"worker-{slot.n}",
        )
        proc.start()
        slot.proc, slot.started = proc, time.monotonic()

    def reap(self, slot: Slot, stopping: bool) -> None:
        proc = slot.proc
        assert proc is not None
        proc.join()
        slot.proc = None
        lived = time.monotonic() - slot.started
        self.abandon(proc.pid)
        if stopping:
            return
        delay, slot.quick_deaths = respawn_delay(lived, slot.quick_deaths)
        slot.next_start = time.monotonic() + delay
        log.warning("worker_died", pid=proc.pid, exitcode=proc.exitcode, lived_s=round(lived, 1),
                    respawn_in=delay)  # fmt: skip

    def abandon(self, pid: int | None) -> None:
        """The dead worker's registration goes, and its job is retried now (RQ's abandoned-job
        path: retried while it has retries left, else failed)."""
        host = socket.gethostname()
        try:
            started = StartedJobRegistry(queue=self.queue)
            for w in Worker.all(connection=self.r):
                if w.pid != pid or w.hostname != host:
                    continue
                job_id = w.get_current_job_id()
                w.register_death()  # type: ignore[no-untyped-call]
                if not job_id:
                    continue
                members = list(self.r.zscan_iter(started.key, match=f"{job_id}:*"))
                if members:
                    retries = Job.fetch(job_id, connection=self.r).retries_left or 0
                    self.r.zadd(started.key, {m: 1 for m, _score in members}, xx=True)
                    started.cleanup(timestamp=2)  # only what we just marked expired
                    log.warning("job_abandoned", job_id=job_id, worker_pid=pid,
                                outcome="retried" if retries > 0 else "failed")  # fmt: skip
        except NoSuchJobError:
            pass
        except redis.RedisError as exc:  # an outage: the periodic sweep does it later
            log.warning("abandon_failed", worker_pid=pid, error=str(exc)[:200])

    def sweep(self) -> None:
        with contextlib.suppress(redis.RedisError):
            StartedJobRegistry(queue=self.queue).cleanup()

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(FORCE_SIGNAL, self._on_force)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_at = 0.0
        last_sweep = time.monotonic()
        while True:
            now = time.monotonic()
            if self.stopping and not stop_at:
                stop_at = now + self.settings.worker.job_timeout
                self.signal_all(signal.SIGTERM)
            if self.forced or (stop_at and now > stop_at):
                self.signal_all(signal.SIGKILL)
            for slot in self.slots:
                if slot.proc is not None and not slot.proc.is_alive():
                    self.reap(slot, stopping=bool(stop_at))
            if stop_at:
                if all(s.proc is None for s in self.slots):
                    return
            else:
                for slot in self.slots:
                    if slot.proc is None and now >= slot.next_start:
                        if slot.started:
                            self.respawned += 1
                            log.info("worker_respawned", slot=slot.n)
                        self.spawn(slot)
                if now - last_sweep >= SWEEP_S:
                    self.sweep()
                    last_sweep = now
            time.sleep(TICK_S)

    def signal_all(self, sig: int) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.pid is not None and slot.proc.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.proc.pid, sig)


def _supervisor_main(settings: Settings, url: str, count: int, parent: int,
                     close: Sequence[int]) -> None:  # fmt: skip
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # `run` died before the line above
        os._exit(0)
    # `run`'s listening socket and its lock on the embedded server's data dir: neither may
    # outlive `run` in a worker finishing its article
    for fd in (*close, *held_fds()):
        with contextlib.suppress(OSError):
            os.close(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until run() installs its own
    Supervisor(settings, url, count).run()


def start(settings: Settings, url: str, count: int, close: Sequence[int] = ()) -> BaseProcess:
    proc = multiprocessing.get_context("fork").Process(
        target=_supervisor_main,
        args=(settings, url, count, os.getpid(), tuple(close)),
        name="supervisor",
    )
    proc.start()
    return proc
