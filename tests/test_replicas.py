"""Replicas: two `news-ingest poll` processes on one Redis poll each feed once per due time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import redis

from ingest.core.keys import Keys
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.registry import Registry
from tests import pages
from tests.conftest import ROOT
from tests.server import TestServer

FEEDS = 200


def test_two_pollers_poll_every_feed_exactly_once(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    urls = []
    for i in range(FEEDS):
        server.add(f"/feed/{i}.xml", pages.rss(f"Feed {i}", []), "application/rss+xml", delay=0.2)
        urls.append(server.url(f"/feed/{i}.xml"))
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n" + "".join(f"  - {u}\n" for u in urls))
    registry = Registry(r, Keys())
    for url in urls:  # all due now, so both pollers race for every one of them
        registry.add(FeedSpec(url), first_poll_within=0)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWS_INGEST_", "REDIS_URL"))}
    env.update({
        "NEWS_INGEST_FETCH_ALLOW": server.allow,
        "NEWS_INGEST_POLL_HOST_RATE": "0",
        "NEWS_INGEST_POLL_HOST_INFLIGHT": "0",
        "NEWS_INGEST_POLL_MIN_INTERVAL": "3600",
        "NEWS_INGEST_POLL_CONCURRENCY": "10",
    })  # fmt: skip
    cmd = [sys.executable, "-m", "ingest.cli", "--log-json", "--redis-url", redis_url,
           "--feeds", str(feeds), "poll"]  # fmt: skip
    logs = [(tmp_path / f"poller{i}.log").open("w+") for i in range(2)]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        for log in logs
    ]
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if len({h.path for h in server.requests}) >= FEEDS:
                break
            time.sleep(0.2)
        time.sleep(1.5)  # room for a double poll to show up, were there one
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)
    out = []
    for log in logs:
        log.seek(0)
        out.append(log.read())
        log.close()
    assert [p.returncode for p in procs] == [0, 0], out[0][-2000:] + out[1][-2000:]
    hits = Counter(h.path for h in server.requests)
    assert len(hits) == FEEDS
    assert set(hits.values()) == {1}, [p for p, n in hits.items() if n > 1]
    polled = [text.count('"feed_polled"') for text in out]
    assert sum(polled) == FEEDS and min(polled) > 0, polled  # both replicas took a share
