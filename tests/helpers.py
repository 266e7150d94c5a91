"""In-process helpers shared by the poller and fault tests: settings, registration, one poll
pass, and running queued jobs here (the jobs are the real RQ payloads)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis
from rq import Queue

from ingest.core.job import attach_bodies
from ingest.core.keys import Keys
from ingest.core.settings import Settings
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.registry import Registry
from ingest.poller import Poller
from tests.server import TestServer
from workers.context import Context
from workers.pipeline import process

KEYS = Keys()


def settings_for(server: TestServer, *extra_allow: str, **poll: Any) -> Settings:
    base = Settings()
    return base.with_overrides(
        fetch={"allow": [server.allow, *extra_allow], "timeout": 2, "connect_timeout": 1},
        poll={"host_rate": 0, "host_inflight": 0, **poll},
    )


def register(r: redis.Redis, *urls: str) -> list[str]:
    reg = Registry(r, KEYS)
    for url in urls:
        reg.add(FeedSpec(url))
    return [FeedSpec(u).id for u in urls]


def poll(settings: Settings, r: redis.Redis, only: list[str] | None = None) -> Poller:
    async def main() -> Poller:
        poller = Poller(settings, r)
        try:
            await poller.run_once(only)
        finally:
            await poller.aclose()
        return poller

    return asyncio.run(main())


def state(r: redis.Redis, fid: str) -> dict[str, str]:
    return Registry(r, KEYS).get(fid)


def due_in(r: redis.Redis, fid: str) -> float:
    return float(r.zscore(KEYS.due, fid) or 0) - time.time()


def work(settings: Settings, r: redis.Redis) -> list[str]:
    """Run the queued jobs in this process; the outcomes, in order."""
    ctx = Context.build(settings, r)
    queue = Queue(settings.stream.queue, connection=r)
    out = []
    for job in queue.jobs:
        if job.func_name != "workers.jobs.process_batch":  # e.g. a scheduled topic refit
            continue
        attach_bodies(ctx.r, ctx.keys, job.args[0])  # the bodies the poller stored beside the job
        out.extend(process(ctx, payload) for payload in job.args[0])
    queue.empty()
    return out


def wait_for(check: Any, timeout: float = 60, step: float = 0.2) -> bool:
    """Poll `check()` every `step` seconds until it is true or `timeout` seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return True
        time.sleep(step)
    return False
