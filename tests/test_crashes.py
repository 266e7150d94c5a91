"""Crashes with real processes and real signals: every article ends up in the stream exactly once.

Failpoints (ingest/core/failpoints.py) SIGKILL a process at an exact point: a worker after its third
publication in a batch of four, a poller after fetching articles and before enqueueing them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import redis
from rq import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry

from tests import pages
from tests.conftest import cli
from tests.helpers import wait_for
from tests.server import TestServer

ARTICLES = 8
DOCS = [pages.BOLIVIA, pages.AUSTRIA, pages.WAR_REPORT]


def site(server: TestServer, tmp_path: Path) -> Path:
    items = []
    for i in range(ARTICLES):
        paras = pages.paragraphs(DOCS[i % 3])
        # distinct stories: each gets its own opening paragraphs, so none is a near-copy
        own = pages.distinct_story(i, 4)
        server.add(f"/s{i}", pages.article_page(f"Story {i}", own + paras[i % 2 :: 2]))
        items.append({"title": f"Story {i}", "link": server.url(f"/s{i}")})
    server.add("/feed.xml", pages.rss("Crash feed", items), "application/rss+xml")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {server.url('/feed.xml')}\n")
    return feeds


def env(server: TestServer, **extra: str) -> dict[str, str]:
    return {
        "NEWS_INGEST_FETCH_ALLOW": server.allow,
        "NEWS_INGEST_POLL_HOST_RATE": "0",
        "NEWS_INGEST_WORKER_BATCH_SIZE": "4",
        **extra,
    }


def published(r: redis.Redis) -> Counter[str]:
    return Counter(json.loads(f[b"data"])["url"] for _id, f in r.xrange("news:articles"))


def test_worker_killed_mid_batch_loses_nothing_and_publishes_nothing_twice(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    feeds = site(server, tmp_path)
    base = ("--redis-url", redis_url, "--feeds", str(feeds))
    assert cli(*base, "poll", "--once", env=env(server)).returncode == 0
    queue = Queue("articles", connection=r)
    assert queue.count == ARTICLES // 4

    dead = cli(*base, "worker", "--burst",
               env=env(server, NEWS_INGEST_FAILPOINTS="worker.after_publish=3"))  # fmt: skip
    assert dead.returncode == -9  # SIGKILL, mid-batch: 3 of its 4 articles published
    assert sum(published(r).values()) == 3
    started = StartedJobRegistry(queue=queue)
    assert started.count == 1
    ((_member, deadline),) = r.zrange(started.key, 0, -1, withscores=True)
    assert deadline - time.time() < 35  # the job's heartbeat, not its 300 s timeout

    # The dead worker's heartbeat lapses (~65 s in production); a worker's maintenance pass
    # then finds the job abandoned and retries it. Time is moved forward instead of waited.
    started.cleanup(timestamp=time.time() + 120)
    assert queue.count == 2  # the retried batch is back in the queue, next to the untouched one

    done = cli(*base, "worker", "--burst", env=env(server))
    assert done.returncode == 0, done.stderr[-2000:]
    counts = published(r)
    assert sorted(counts) == sorted(server.url(f"/s{i}") for i in range(ARTICLES))
    assert set(counts.values()) == {1}  # exactly once, though one batch ran twice
    assert StartedJobRegistry(queue=queue).count == 0
    assert FailedJobRegistry(queue=queue).count == 0
    totals = {k.decode(): int(v) for k, v in r.hgetall("news:metrics:articles").items()}
    assert totals == {"published": ARTICLES, "duplicate": 3}  # the re-run saw its first three


def test_poller_killed_between_fetch_and_enqueue_loses_nothing(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """The feed comes back by its lease, to a `poll` daemon (which polls only what is due), not
    by a `run --once` (which polls every feed whatever its due time)."""
    feeds = site(server, tmp_path)
    base = ("--redis-url", redis_url, "--feeds", str(feeds))
    # a 2 s lease and fetch claim instead of 300 s and 600 s; no in-flight limit per host,
    # whose slots the dead poller also holds
    short = {"NEWS_INGEST_POLL_LEASE": "2", "NEWS_INGEST_POLL_FETCH_CLAIM": "2",
             "NEWS_INGEST_POLL_HOST_INFLIGHT": "0"}  # fmt: skip
    dead = cli(*base, "poll", "--once",
               env=env(server, NEWS_INGEST_FAILPOINTS="poller.before_enqueue=1", **short))  # fmt: skip
    assert dead.returncode == -9
    assert len([h for h in server.requests if h.path.startswith("/s")]) == ARTICLES
    assert Queue("articles", connection=r).count == 0  # fetched, never enqueued
    first = server.hits("/feed.xml")[-1].at
    assert len(server.hits("/feed.xml")) == 1

    from tests.conftest import ROOT

    daemon = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", *base, "poll"], cwd=ROOT,
        env={**os.environ, **env(server, **short)},
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "poll.log").open("w"),
    )  # fmt: skip
    try:
        again = wait_for(lambda: len(server.hits("/feed.xml")) >= 2, timeout=30)
        assert again, (tmp_path / "poll.log").read_text()[-2000:]
        # not before the lease ran out (1 s of margin for clocks and the claim's own time)
        assert server.hits("/feed.xml")[1].at >= first + 1
        assert wait_for(lambda: Queue("articles", connection=r).count > 0, timeout=30)
        time.sleep(1)  # the rest of the poll's jobs
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    assert len(server.hits("/feed.xml")) == 2  # polled once more, not again and again
    done = cli(*base, "worker", "--burst", env=env(server, **short))
    assert done.returncode == 0, done.stderr[-2000:]
    counts = published(r)
    assert len(counts) == ARTICLES and set(counts.values()) == {1}


def test_a_poller_started_again_before_the_dead_ones_claims_expire_loses_nothing(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """As found (issue 15 follow-up): the second run saw every item still claimed "fetching" by
    the dead poller, fetched nothing and saved the feed's body hash, so every later run found
    the feed `unchanged` and the stories never came. Now the feed is read again until they do."""
    feeds = site(server, tmp_path)
    base = ("--redis-url", redis_url, "--feeds", str(feeds))
    # claims longer than the next run takes; no in-flight limit per host, whose slots the dead
    # poller also holds (for their own lease), so the next run polls at once
    claim = {"NEWS_INGEST_POLL_FETCH_CLAIM": "12", "NEWS_INGEST_POLL_HOST_INFLIGHT": "0"}
    dead = cli(*base, "poll", "--once",
               env=env(server, NEWS_INGEST_FAILPOINTS="poller.before_enqueue=1", **claim))  # fmt: skip
    assert dead.returncode == -9
    died = time.monotonic()
    at_once = cli(*base, "run", "--once", env=env(server, **claim))  # the claims still held
    assert at_once.returncode == 0, at_once.stderr[-2000:]
    assert published(r) == {}
    assert '"items_claimed_elsewhere"' in at_once.stderr
    time.sleep(max(0.0, died + 12.5 - time.monotonic()))  # the dead poller's claims expire
    assert cli(*base, "run", "--once", env=env(server, **claim)).returncode == 0
    counts = published(r)
    assert len(counts) == ARTICLES and set(counts.values()) == {1}


def run_service(
    redis_url: str, feeds: Path, server: TestServer, log: Path, **extra: str
) -> subprocess.Popen[bytes]:
    """`run` in a process group of its own, so a test can signal the whole tree."""
    from tests.conftest import ROOT

    environment = {**env(server, **extra), "PATH": "/usr/bin:/bin"}
    return subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "--log-json", "--redis-url", redis_url, "--feeds",
         str(feeds), "run", "--workers", "2", "--metrics-port", "0"],
        cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def test_valkey_restart_during_a_run_loses_nothing(server: TestServer, tmp_path: Path) -> None:
    from ingest.core.embedded import EmbeddedValkey, free_port

    feeds = site(server, tmp_path)
    valkey = EmbeddedValkey(tmp_path / "v", free_port())
    valkey.start()
    proc = run_service(valkey.url, feeds, server, tmp_path / "run.log")
    try:
        r = redis.Redis.from_url(valkey.url)
        assert wait_for(lambda: r.xlen("news:articles") >= 1)
        time.sleep(1.1)  # AOF everysec
        valkey.stop()
        time.sleep(3)
        valkey.start()
        r = redis.Redis.from_url(valkey.url)
        assert wait_for(lambda: len(published(r)) == ARTICLES, 90), published(r)
        assert set(published(r).values()) == {1}
        assert wait_for(
            lambda: StartedJobRegistry(queue=Queue("articles", connection=r)).count == 0, 90
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        valkey.stop()
    assert proc.returncode == 0, (tmp_path / "run.log").read_text()[-3000:]


def test_sigterm_everything_then_start_again(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """SIGTERM to every process of the tree at once (killpg), as soon as the first story is out:
    the rest of the batches are still queued or in hand (a second feed of 40 more stories, so
    two workers cannot have published them all by the time the signal lands)."""
    feeds = site(server, tmp_path)
    more = []
    for i in range(ARTICLES, ARTICLES + 40):
        own = pages.distinct_story(i, 4)
        server.add(f"/m{i}", pages.article_page(f"More {i}", own + pages.paragraphs(DOCS[i % 3])))
        more.append({"title": f"More {i}", "link": server.url(f"/m{i}")})
    server.add("/more.xml", pages.rss("More", more), "application/rss+xml")
    feeds.write_text(f"feeds:\n  - {server.url('/feed.xml')}\n  - {server.url('/more.xml')}\n")
    total = ARTICLES + len(more)
    grace = 2.0
    first = run_service(redis_url, feeds, server, tmp_path / "first.log",
                        NEWS_INGEST_RUN_SHUTDOWN_GRACE=str(grace))  # fmt: skip
    assert wait_for(lambda: r.xlen("news:articles") >= 1, step=0.05)
    os.killpg(first.pid, signal.SIGTERM)
    started = time.monotonic()
    assert len(published(r)) < total  # work was left when it was signalled
    first.wait(timeout=60)
    took = time.monotonic() - started
    text = (tmp_path / "first.log").read_text()
    assert took < grace + 6, (took, text[-2000:])  # the grace, one article, the exits
    assert first.returncode == 0, text[-2000:]
    for line in ('"poller_stopped"', '"workers_stopped"', '"stopped"'):
        assert line in text, text[-2000:]
    second = run_service(redis_url, feeds, server, tmp_path / "second.log")
    try:
        assert wait_for(lambda: len(published(r)) == total, 120), len(published(r))
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    assert set(published(r).values()) == {1}
    assert StartedJobRegistry(queue=Queue("articles", connection=r)).count == 0


def test_a_job_run_again_after_its_site_learned_a_template_publishes_nothing_twice(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """As found (test_sigterm_everything_then_start_again, once in a loaded full run): a job that
    published and was then run again, after later stories of the site had taught the site
    template (workers/template.py) the paragraphs they share. The re-run's text lacked those
    lines, read as a material correction, and the story went out a second time as `updated`."""
    paras = pages.paragraphs(pages.BOLIVIA)
    items = []
    for i in range(6):  # its own words, then the paragraphs every story of the site shares
        server.add(f"/t{i}", pages.article_page(f"Told {i}", pages.distinct_story(i, 4) + paras))
        items.append({"title": f"Told {i}", "link": server.url(f"/t{i}")})
    server.add("/feed.xml", pages.rss("Told", items), "application/rss+xml")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {server.url('/feed.xml')}\n")
    base = ("--redis-url", redis_url, "--feeds", str(feeds))
    one = env(server, NEWS_INGEST_WORKER_BATCH_SIZE="1")  # a job per story
    assert cli(*base, "poll", "--once", env=one).returncode == 0
    queue = Queue("articles", connection=r)
    assert queue.count == 6
    dead = cli(*base, "worker", "--burst",
               env={**one, "NEWS_INGEST_FAILPOINTS": "worker.after_publish=1"})  # fmt: skip
    assert dead.returncode == -9  # killed right after its first publication
    assert sum(published(r).values()) == 1
    StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 120)
    assert queue.count == 6  # retried, behind the five stories that teach the template
    done = cli(*base, "worker", "--burst", env=one)
    assert done.returncode == 0, done.stderr[-2000:]
    counts = published(r)
    assert len(counts) == 6 and set(counts.values()) == {1}, counts
    assert [f[b"event"] for _id, f in r.xrange("news:articles")] == [b"created"] * 6
    totals = {k.decode(): int(v) for k, v in r.hgetall("news:metrics:articles").items()}
    assert totals == {"published": 6, "duplicate": 1}  # the re-run knew its own publication


def test_sigterm_to_the_group_lets_each_worker_finish_the_article_in_hand(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """As found with the test above: a SIGTERM to the whole tree reaches the supervisor twice,
    from the sender and passed on by `run`; it took the second for an operator's "now" and
    SIGKILLed the workers mid-article, leaving their jobs to be run again by the next start.
    Here each worker's first article takes 3 s, so the signal is sure to find it in hand."""
    feeds = site(server, tmp_path)
    first = run_service(redis_url, feeds, server, tmp_path / "first.log",
                        NEWS_INGEST_FAILPOINTS="worker.before_publish=1:sleep=3")  # fmt: skip
    queue = Queue("articles", connection=r)
    try:
        assert wait_for(lambda: StartedJobRegistry(queue=queue).count == 2, 60, step=0.05)
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=60)
    text = (tmp_path / "first.log").read_text()
    assert first.returncode == 0, text[-3000:]
    assert '"job_abandoned"' not in text and '"worker_kill"' not in text, text[-3000:]
    assert text.count('"worker_stopped"') == 2, text[-3000:]
    assert text.count('"batch_requeued"') == 2, text[-3000:]
    assert sum(published(r).values()) == 2  # the two articles in hand, finished
    assert StartedJobRegistry(queue=queue).count == 0
    assert queue.count == 2  # the rest of both batches, back in the queue
    second = run_service(redis_url, feeds, server, tmp_path / "second.log")
    try:
        assert wait_for(lambda: len(published(r)) == ARTICLES, 60), published(r)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    assert set(published(r).values()) == {1}
