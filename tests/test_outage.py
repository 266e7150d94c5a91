"""A Redis outage: the poller waits, says so once, and resumes by itself."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from ingest.core.embedded import EmbeddedValkey, free_port
from ingest.core.keys import Keys
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.registry import Registry
from tests import pages
from tests.conftest import ROOT
from tests.helpers import wait_for
from tests.server import TestServer


def test_poller_rides_out_a_redis_outage(server: TestServer, tmp_path: Path) -> None:
    server.add("/a.xml", pages.rss("A", []), "application/rss+xml")
    server.add("/b.xml", pages.rss("B", []), "application/rss+xml")
    valkey = EmbeddedValkey(tmp_path / "v", free_port())
    valkey.start()
    r = redis.Redis.from_url(valkey.url)
    Registry(r, Keys()).add(FeedSpec(server.url("/a.xml")), first_poll_within=0)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: []\n")
    log = (tmp_path / "poller.log").open("w+")
    env = {"NEWS_INGEST_FETCH_ALLOW": server.allow, "NEWS_INGEST_POLL_HOST_RATE": "0",
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "ingest.cli", "--log-json", "--redis-url",
                             valkey.url, "--feeds", str(feeds), "poll"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        assert wait_for(lambda: server.hits("/a.xml"))
        valkey.stop()
        time.sleep(4)  # several retry rounds while Redis is gone
        assert proc.poll() is None  # still running
        valkey.start()
        r = redis.Redis.from_url(valkey.url)
        Registry(r, Keys()).add(FeedSpec(server.url("/b.xml")), first_poll_within=0)
        assert wait_for(lambda: server.hits("/b.xml")), "the poller did not resume"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        valkey.stop()
    log.seek(0)
    text = log.read()
    assert text.count('"redis_unavailable"') == 1, text[-3000:]
    assert text.count('"redis_available"') == 1
    assert proc.returncode == 0
