"""Redis Sentinel: URL parsing (pure), and a real failover under a running daemon."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis
from redis.connection import Connection, SSLConnection
from redis.sentinel import SentinelConnectionPool

from ingest.core.connection import (
    FAILOVER_WAIT_S,
    POLL_FAILOVER_WAIT_S,
    FollowingConnection,
    FollowingSSLConnection,
    SentinelTarget,
    connect,
    failover_retry,
    parse_sentinel,
)
from ingest.core.embedded import free_port
from ingest.core.keys import Keys
from ingest.core.urls import redact_url as redact
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.registry import Registry
from tests import pages
from tests.conftest import cli
from tests.helpers import wait_for
from tests.sentinel import SentinelTrio
from tests.server import TestServer


def test_sentinel_url_forms() -> None:
    assert parse_sentinel("redis+sentinel://h1:26379,h2:26380/mymaster/2") == SentinelTarget(
        [("h1", 26379), ("h2", 26380)], "mymaster", 2
    )
    plain = parse_sentinel("redis+sentinel://h1/mymaster")
    assert (plain.sentinels, plain.db, plain.tls) == ([("h1", 26379)], 0, False)
    auth = parse_sentinel(
        "rediss+sentinel://app:s%40cret@[::1]:26379,h2/svc/1?sentinel_password=sp"
        "&ssl_ca_certs=/ca.pem&ssl_cert_reqs=required"
    )
    assert auth.sentinels == [("::1", 26379), ("h2", 26379)]
    assert (auth.username, auth.password, auth.tls) == ("app", "s@cret", True)
    assert auth.sentinel_auth == {"password": "sp"}
    assert auth.ssl == {"ssl_ca_certs": "/ca.pem", "ssl_cert_reqs": "required"}
    assert parse_sentinel("redis+sentinel://:pw@h1/svc").password == "pw"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+sentinel://h1:26379", "no service name"),
        ("redis+sentinel:///svc", "no Sentinel host"),
        ("redis+sentinel://h1:port/svc", "bad Sentinel port"),
        ("redis+sentinel://h1:0/svc", "bad Sentinel port"),
        ("redis+sentinel://h1/svc/zero", "bad database number"),
        ("redis+sentinel://h1/svc/0/extra", "the path is"),
        ("redis+sentinel://h1/svc?colour=red", "unknown option"),
        ("redis+sentinel://h1/svc?ssl_ca_certs=/ca", "need rediss"),
        ("rediss+sentinel://h1/svc?ssl_cert_reqs=maybe", "ssl_cert_reqs is one of"),
    ],
)
def test_bad_sentinel_urls_are_named(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_sentinel(url)


def test_password_and_tls_variants_reach_redis_py() -> None:
    """What each part of the URL becomes in redis-py (no connection is made here)."""
    client = connect("rediss+sentinel://app:pw@127.0.0.1:26379/svc/2?sentinel_password=sp"
                     "&ssl_cert_reqs=none&ssl_ca_certs=/ca.pem")  # fmt: skip
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "svc"
    assert issubclass(pool.connection_class, FollowingSSLConnection)
    kwargs = pool.connection_kwargs
    assert (kwargs["db"], kwargs["username"], kwargs["password"]) == (2, "app", "pw")
    assert (kwargs["ssl_cert_reqs"], kwargs["ssl_ca_certs"]) == ("none", "/ca.pem")
    (sentinel,) = pool.sentinel_manager.sentinels
    skw = sentinel.connection_pool.connection_kwargs
    assert skw["password"] == "sp" and skw.get("username") is None
    assert issubclass(sentinel.connection_pool.connection_class, SSLConnection)
    plain = connect("redis+sentinel://127.0.0.1:26379/svc").connection_pool
    assert plain.connection_class is FollowingConnection
    assert plain.sentinel_manager.sentinels[0].connection_pool.connection_class is Connection


def test_bad_sentinel_url_is_a_one_line_error() -> None:
    done = cli("--redis-url", "redis+sentinel://h1:x/svc", "status")
    assert done.returncode != 0
    assert "bad Sentinel port" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()[-1]) < 200  # one line that says what is wrong


def test_passwords_stay_out_of_messages() -> None:
    assert redact("redis+sentinel://app:secret@h1/svc") == "redis+sentinel://app:***@h1/svc"
    assert redact("redis://h1:6379/0") == "redis://h1:6379/0"


def test_failover_retry_covers_the_documented_wait() -> None:
    for wait in (FAILOVER_WAIT_S, POLL_FAILOVER_WAIT_S):
        retry = failover_retry(wait)
        backoff = retry._backoff  # the schedule redis-py will sleep through
        waited = sum(backoff.compute(n) for n in range(1, retry._retries + 1))
        assert wait <= waited < wait + 2


def test_a_sentinel_client_follows_a_failover(tmp_path: Path) -> None:
    trio = SentinelTrio(tmp_path).start()
    try:
        client = connect(trio.url)
        assert isinstance(client.connection_pool, SentinelConnectionPool)
        client.set("before", 1)
        trio.kill_primary()
        for _n in range(20):  # each command waits out the failover instead of failing
            client.incr("during")
        assert trio.promoted()
        assert client.get("during") == b"20"
        assert client.connection_pool.get_master_address()[1] == trio.replica_port
    finally:
        trio.stop()


def test_a_sentinel_worker_stops_at_once_on_sigterm(tmp_path: Path) -> None:
    """RQ's SIGTERM handler interrupts a blocking dequeue; redis-py's Sentinel connection kept the
    unread reply and the worker then waited forever in its teardown (FollowingConnection)."""
    trio = SentinelTrio(tmp_path / "redis").start()
    env = {"PATH": "/usr/bin:/bin", "NEWS_INGEST_REDIS_URL": trio.url,
           "NEWS_INGEST_HOME": str(tmp_path / "home")}  # fmt: skip
    log = (tmp_path / "worker.log").open("w+")
    worker = subprocess.Popen([sys.executable, "-m", "ingest.cli", "--log-json", "worker"],
                              cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        assert wait_for(lambda: "worker_started" in _tail(log), timeout=30)
        time.sleep(1)  # in its blocking dequeue
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        trio.stop()
    assert worker.returncode == 0, _tail(log)
    assert "worker_stopped" in _tail(log)


def _site(server: TestServer, feeds: int, per_feed: int) -> list[str]:
    urls = []
    for f in range(feeds):
        items = []
        for a in range(per_feed):
            n = f * per_feed + a
            path = f"/s/{n}"
            # each feed's pages slower than the last: the primary dies after the first feed's
            # stories are out and before the last feed's pages have even arrived
            server.add(path, pages.article_page(f"Story {n}", pages.distinct_story(n)))
            server.routes[path].delay = 0.1 + 1.5 * f
            items.append({"title": f"Story {n}", "link": server.url(path)})
            urls.append(server.url(path))
        server.add(f"/f{f}.xml", pages.rss(f"Feed {f}", items), "application/rss+xml")
    return urls


def test_daemon_publishes_every_story_once_across_a_failover(
    server: TestServer, tmp_path: Path
) -> None:
    trio = SentinelTrio(tmp_path / "redis").start()
    urls = _site(server, feeds=4, per_feed=6)
    setup = connect(trio.url)
    registry = Registry(setup, Keys())
    for f in range(4):  # due at once (a feeds file spreads first polls over 30 s)
        registry.add(FeedSpec(server.url(f"/f{f}.xml")), first_poll_within=0)
    setup.close()
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: []\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "NEWS_INGEST_HOME": str(tmp_path / "home"),
        "NEWS_INGEST_REDIS_URL": trio.url,
        "NEWS_INGEST_FETCH_ALLOW": server.allow,
        "NEWS_INGEST_POLL_HOST_RATE": "0",
        "NEWS_INGEST_POLL_HOST_INFLIGHT": "0",
        "NEWS_INGEST_WORKER_COUNT": "2",
        "NEWS_INGEST_WORKER_BATCH_SIZE": "2",
        # a feed whose poll the failover cut short comes back after its lease, its items after
        # their fetch claim (5 and 10 min by default: README, Sentinel)
        "NEWS_INGEST_POLL_LEASE": "8",
        "NEWS_INGEST_POLL_FETCH_CLAIM": "10",
    }
    port = free_port()
    log = (tmp_path / "run.log").open("w+")
    tail_out = (tmp_path / "tail.out").open("w+")
    run = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "--log-json", "--feeds", str(feeds), "run",
         "--metrics-port", str(port), "--metrics-host", "127.0.0.1"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    tail = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "--log-json", "tail", "--json", "--group", "g",
         "--from-start"],
        cwd=tmp_path, env=env, stdout=tail_out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    primary = redis.Redis(port=trio.primary_port)
    promoted = redis.Redis(port=trio.replica_port)
    try:
        assert wait_for(lambda: primary.xlen("news:articles") >= 6, timeout=60), _tail(log)
        before = primary.xlen("news:articles")
        assert before < len(urls), "the run ended before the primary could be killed"
        trio.kill_primary()
        assert wait_for(trio.promoted, timeout=30), "no failover"

        def all_published() -> bool:
            return promoted.xlen("news:articles") >= len(urls)

        assert wait_for(all_published, timeout=90), _tail(log)
        time.sleep(2)  # anything published twice would show up now
        records = [json.loads(f[b"data"]) for _id, f in promoted.xrange("news:articles")]
        published = sorted(rec["canonical_url"] for rec in records)
        assert published == sorted(urls)  # every story, once, on the promoted replica
        assert run.poll() is None, "the daemon did not survive the failover"
        assert tail.poll() is None, "tail --group did not survive the failover"
        # the metrics endpoint answers from the new primary too
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            assert resp.status == 200
        # the CLI finds the new primary too, and sees a ready service
        status = cli("--redis-url", trio.url, "status", "--json", cwd=tmp_path)
        assert status.returncode == 0, status.stdout[-2000:] + status.stderr[-2000:]
        assert json.loads(status.stdout)["ready"] is True
        # the consumer group read every story (at least once: see README, Sentinel)
        assert wait_for(lambda: set(urls) <= _tailed(tail_out), timeout=30)
    finally:
        stopping = time.monotonic()
        for proc in (tail, run):
            proc.send_signal(signal.SIGTERM)
        for proc in (tail, run):
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
        stopped_in = time.monotonic() - stopping
        trio.stop()
    log.seek(0)
    text = log.read()
    assert "Traceback" not in text, text[-3000:]
    assert run.returncode == 0, text[-3000:]
    assert "worker_kill" not in text and stopped_in < 20, text[-3000:]  # idle workers stop now


def _tail(log) -> str:  # type: ignore[no-untyped-def]
    log.flush()
    log.seek(0)
    return str(log.read()[-3000:])


def _tailed(out) -> set[str]:  # type: ignore[no-untyped-def]
    out.flush()
    out.seek(0)
    seen = set()
    for line in out.read().splitlines():
        if line.startswith("{") and '"canonical_url"' in line:
            seen.add(json.loads(line)["canonical_url"])
    return seen




def test_tail_group_survives_losing_its_group(r: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    """A failover can lose a consumer group created just before it: `tail --group` makes it
    again and reads from the start (a repeat, never a gap)."""
    r.xadd("news:articles", {"event": "created", "data": json.dumps({"canonical_url": "a"})})
    out = (tmp_path / "tail.out").open("w+")
    tail = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "--redis-url", redis_url, "tail", "--json",
         "--group", "g", "--from-start", "--count", "3"],
        cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert wait_for(lambda: "a" in _tailed(out), timeout=30)
        r.xgroup_destroy("news:articles", "g")
        r.xadd("news:articles", {"event": "created", "data": json.dumps({"canonical_url": "b"})})
        tail.wait(timeout=30)
    finally:
        if tail.poll() is None:
            tail.kill()
    assert tail.returncode == 0, _tail(out)
    assert _tailed(out) == {"a", "b"}
