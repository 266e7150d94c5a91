"""Deferred work is waited for, counted and never lost (issue 22): a host blocked by a
Retry-After, `run --once` with its deadline, the daemon, and many feeds on one host.

Real poller, real Valkey, real HTTP on 127.0.0.1; Retry-After and the host wait are short so the
tests run in seconds (`poll.max_host_wait` below the Retry-After: the block is deferred, not
waited out, as a real 120 s block is at the default 30 s).
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import redis
from prometheus_client import CollectorRegistry, generate_latest

from ingest.core.settings import Settings
from ingest.core.urls import article_id
from ingest.metrics import RedisCollector
from ingest.poller import Poller
from ingest.status import gather
from tests import pages
from tests.conftest import cli
from tests.helpers import KEYS, due_in, poll, register, settings_for, state, work
from tests.server import Route, TestServer

VOCABULARY = (
    "council budget river school harbour election minister court police hospital road winter "
    "farmers market bridge station museum festival teachers nurses vote plan report storm "
    "rain mayor city village coast mountain railway airport factory workers union strike "
    "talks deal museum library students housing prices energy water power grid flood fire "
    "rescue team league match coach season players stadium fans record trial judge jury "
    "witness evidence"
)
WORDS = VOCABULARY.split()


def story(n: int) -> str:
    """A page of its own words (no two stories near-duplicates), long enough to extract."""
    rng = random.Random(n)
    paras = [" ".join(rng.choice(WORDS) for _ in range(45)).capitalize() + "." for _ in range(6)]
    return pages.article_page(f"Story {n}", paras)


def add_feed(server: TestServer, path: str, first: int, count: int, delay: float = 0) -> list[str]:
    links = []
    for n in range(first, first + count):
        server.add(f"/story/{n}", story(n))
        links.append(server.url(f"/story/{n}"))
    items = [{"title": f"Story {n}", "link": link} for n, link in enumerate(links, first)]
    server.add(path, pages.rss(path, items), "application/rss+xml", delay=delay)
    return links


def limited_feed(server: TestServer, path: str, retry_after: int, times: int | None,
                 links: list[str] | None = None) -> None:  # fmt: skip
    """Answers 429 with Retry-After (`times` times, or always), then a feed of `links`."""
    answered = {"n": 0}

    def feed(_headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        answered["n"] += 1
        if times is None or answered["n"] <= times:
            return 429, {"Retry-After": str(retry_after)}, b"slow down"
        items = [{"title": f"Limited {i}", "link": link} for i, link in enumerate(links or [])]
        return 200, {"Content-Type": "application/rss+xml"}, pages.rss("L", items).encode()

    server.routes[path] = Route(body=feed)


def wait_host_free(r: redis.Redis, host: str = "127.0.0.1") -> None:
    """Until the host's next turn (the server's clock, as the gate reads it) has come."""
    while True:
        secs, micros = r.time()
        if float(r.get(KEYS.host_next(host)) or 0) <= secs * 1000 + micros / 1000:
            return
        time.sleep(0.05)


def published(r: redis.Redis) -> list[str]:
    return sorted(json.loads(f[b"data"])["url"] for _id, f in r.xrange(KEYS.articles))


def story_hits(server: TestServer) -> list[str]:
    return [h.path for h in server.requests if h.path.startswith("/story/")]


def test_retry_after_on_a_feed_blocks_the_articles_of_its_host_too(
    server: TestServer, r: redis.Redis
) -> None:
    limited_feed(server, "/limited.xml", retry_after=3, times=None)
    # the healthy feed answers a little later, so the 429 has blocked the host by then
    links = add_feed(server, "/healthy.xml", 0, 3, delay=0.6)
    limited, healthy = register(r, server.url("/limited.xml"), server.url("/healthy.xml"))
    settings = settings_for(server, max_host_wait=0.5)

    poller = poll(settings, r)
    assert story_hits(server) == [] and server.hits("/robots.txt") == []  # blocked: whole host
    assert poller.stats.deferred == {"host_deferred": 3}
    assert {fid: x.outcome for fid, x in poller.stats.left.items()} == {
        healthy: "deferred", limited: "rate_limited"}  # fmt: skip
    st = state(r, healthy)
    assert (st["last_outcome"], st["deferred_items"]) == ("deferred", "3")  # not "ok", 0 new
    assert float(st["deferred_until"]) > time.time()
    assert 0 < due_in(r, healthy) < 4  # back when the 3 s block ends, not after min_interval
    assert st["body_hash"] == "" and st["etag"] == ""  # read again next time, not "unchanged"
    assert st["errors"] == "0" and state(r, limited)["errors"] == "0"
    data = gather(settings, r)
    assert data["deferred"] == {"by_reason": {"host_deferred": 3}, "waiting": 3}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(settings, r))
    text = generate_latest(registry).decode()
    assert 'news_ingest_items_deferred_total{reason="host_deferred"} 3.0' in text
    assert "news_ingest_items_waiting 3.0" in text

    wait_host_free(r)
    poll(settings, r, only=[healthy])
    assert sorted(story_hits(server)) == ["/story/0", "/story/1", "/story/2"]
    assert work(settings, r) == ["published"] * 3
    assert published(r) == sorted(links)
    assert state(r, healthy)["deferred_items"] == "0"
    assert gather(settings, r)["deferred"]["waiting"] == 0


def test_a_hostile_retry_after_blocks_the_host_a_day_at_most(
    server: TestServer, r: redis.Redis
) -> None:
    """Issue 15 follow-up, as found: `Retry-After: 99999999999999999999` made the block's Lua
    arithmetic fail on every poll (a Redis error, no summary); a date in the year 9999 blocked
    the host for millennia. Both are a one-day block now, and the poll ends with its outcome."""
    for n, value in enumerate(["99999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"]):
        r.flushdb()
        path = f"/hostile{n}.xml"
        server.routes[path] = Route(status=429, body=b"no", headers={"Retry-After": value})
        (fid,) = register(r, server.url(path))
        poll(settings_for(server), r)
        assert state(r, fid)["last_outcome"] == "rate_limited"
        secs, _micros = r.time()
        blocked_for = float(r.get(KEYS.host_next("127.0.0.1")) or 0) / 1000 - secs
        assert 86400 - 60 < blocked_for <= 86400 + 1, (value, blocked_for)
        # the limited feed comes back a lag (x1.25) later, with the schedule's 10 % jitter
        assert due_in(r, fid) <= 86400 * 1.25 * 1.1 + 60


def run_once_env(server: TestServer, deadline: float) -> dict[str, str]:
    return {
        "NEWS_INGEST_FETCH_ALLOW": server.allow,
        "NEWS_INGEST_POLL_HOST_RATE": "0",
        "NEWS_INGEST_POLL_MAX_HOST_WAIT": "0.5",
        "NEWS_INGEST_RUN_ONCE_DEADLINE": str(deadline),
        "NEWS_INGEST_WORKER_COUNT": "1",
    }


def events(stderr: str, name: str) -> list[dict[str, object]]:
    out = []
    for line in stderr.splitlines():
        if line.startswith("{") and f'"event": "{name}"' in line:
            out.append(json.loads(line))
    return out


def test_run_once_waits_for_the_block_then_says_what_is_left(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """The issue's minimal case: a healthy feed of 3 items and a feed answering 429 on one host.
    It used to exit 0 with `{"new_items": 0, ...}` and nothing fetched."""
    limited_feed(server, "/limited.xml", retry_after=2, times=None)
    links = add_feed(server, "/healthy.xml", 0, 3, delay=0.6)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        f"feeds:\n  - {server.url('/limited.xml')}\n  - {server.url('/healthy.xml')}\n"
    )
    base = ("--redis-url", redis_url, "--feeds", str(feeds), "run", "--once")

    # No time to wait: the run says what it left, by reason, and exits 3.
    done = cli(*base, env=run_once_env(server, 0))
    assert done.returncode == 3, done.stderr[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["work_left"] == {
        "feeds": {"rate_limited": 1, "deferred": 1},
        "items": {"host_deferred": 3},
        "jobs": 0,
    }
    assert summary["deferred"] == {"host_deferred": 3} and summary["new_items"] == 0
    (left,) = events(done.stderr, "work_left")  # logged once
    assert left["items"] == {"host_deferred": 3}
    assert story_hits(server) == [] and r.xlen(KEYS.articles) == 0

    # With a deadline: waits for the block, publishes the 3 items; the feed that keeps
    # answering 429 is still left, so the exit status still says so.
    wait_host_free(r)  # the first run's block ends
    done = cli(*base, env=run_once_env(server, 6))
    assert done.returncode == 3, done.stderr[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["work_left"] == {"feeds": {"rate_limited": 1}, "items": {}, "jobs": 0}
    assert summary["new_items"] == 3 and summary["articles"]["published"] == 3
    assert published(r) == sorted(links)
    (left,) = events(done.stderr, "work_left")
    assert left["feeds"] == {"rate_limited": 1}
    assert [e["outcome"] for e in events(done.stderr, "feed_polled")
            if e["feed_url"] == server.url("/healthy.xml")][-1] == "ok"  # fmt: skip
    deferred = [e for e in events(done.stderr, "feed_polled") if e["outcome"] == "deferred"]
    assert deferred and all(e["deferred_items"] == 3 and e["deferred_until"] for e in deferred)
    # the 429 feed was polled again only after the healthy feed's turn, each time blocking
    limited_polls = [h.at for h in server.hits("/limited.xml")]
    assert len(limited_polls) >= 3
    assert sorted(story_hits(server)) == ["/story/0", "/story/1", "/story/2"]  # once each


def test_daemon_fetches_deferred_items_once_the_host_is_free(
    server: TestServer, r: redis.Redis
) -> None:
    limited_links = [server.url("/story/10"), server.url("/story/11")]
    for n in (10, 11):
        server.add(f"/story/{n}", story(n))
    limited_feed(server, "/limited.xml", retry_after=2, times=2, links=limited_links)
    links = add_feed(server, "/healthy.xml", 0, 3, delay=0.6)
    register(r, server.url("/limited.xml"), server.url("/healthy.xml"))
    settings = settings_for(server, max_host_wait=0.5, min_interval=1, default_interval=2)
    expected = sorted(links + limited_links)

    async def daemon() -> Poller:
        poller = Poller(settings, r)
        stop = asyncio.Event()

        async def until_done() -> None:
            deadline = time.time() + 30
            while time.time() < deadline and len(set(story_hits(server))) < len(expected):
                await asyncio.sleep(0.2)
            await asyncio.sleep(2.5)  # a few more polls: nothing is fetched twice
            stop.set()

        watcher = asyncio.create_task(until_done())
        r.zadd(KEYS.due, dict.fromkeys(r.zrange(KEYS.due, 0, -1), 0))  # both due now
        try:
            await poller.run_forever(stop)
        finally:
            await poller.aclose()
            await watcher
        return poller

    poller = asyncio.run(daemon())
    assert poller.stats.deferred.get("host_deferred", 0) >= 3  # the block did defer them
    assert sorted(story_hits(server)) == sorted(f"/story/{n}" for n in (0, 1, 2, 10, 11))
    assert len(server.hits("/limited.xml")) >= 3
    work(settings, r)
    assert published(r) == expected  # every item, once


def test_run_once_publishes_every_item_of_many_feeds_on_one_host(
    server: TestServer, r: redis.Redis
) -> None:
    """Default politeness (1 request/s, 2 in flight per host), a feed among them answering 429
    twice with a Retry-After longer than the host wait."""
    links: list[str] = []
    for f in range(6):
        links += add_feed(server, f"/feed{f}.xml", 2 * f, 2)
    server.add("/story/99", story(99))
    limited_feed(server, "/limited.xml", retry_after=3, times=2, links=[server.url("/story/99")])
    register(r, server.url("/limited.xml"), *(server.url(f"/feed{f}.xml") for f in range(6)))
    settings = Settings().with_overrides(
        fetch={"allow": [server.allow], "timeout": 5, "connect_timeout": 2},
        poll={"max_host_wait": 1.5},
    )

    async def once() -> Poller:
        poller = Poller(settings, r)
        try:
            await poller.run_once(deadline=90)
        finally:
            await poller.aclose()
        return poller

    poller = asyncio.run(once())
    assert poller.stats.left == {}
    assert poller.stats.by_outcome.get("rate_limited") == 2
    work(settings, r)
    assert published(r) == sorted([*links, server.url("/story/99")])
    assert sorted(story_hits(server)) == sorted(f"/story/{n}" for n in [*range(12), 99])


def test_run_once_from_the_command_line_at_default_politeness_publishes_every_healthy_item(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Issue 22's catalogue, through the real CLI with every politeness default (1 request/s and
    2 in flight per host, a 30 s host wait, the default deadline): 12 healthy feeds and four
    fault feeds on one host, one of them answering 429 twice. Every healthy item is published
    once, whatever order the feeds answer in, and the run exits 0."""
    links: list[str] = []
    for f in range(12):
        links += add_feed(server, f"/feed{f}.xml", 2 * f, 2)
    server.add("/story/99", story(99))
    limited_feed(server, "/limited.xml", retry_after=5, times=2, links=[server.url("/story/99")])
    server.routes["/error.xml"] = Route(status=500, body=b"oops")
    server.routes["/gone.xml"] = Route(status=410, body=b"")
    server.routes["/junk.xml"] = Route(body=b"<html>not a feed</html>")
    urls = ["/limited.xml", "/error.xml", "/gone.xml", "/junk.xml", *(f"/feed{f}.xml" for f in range(12))]
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n" + "".join(f"  - {server.url(u)}\n" for u in urls))
    out = cli("--redis-url", redis_url, "--feeds", str(feeds), "run", "--once",
              env={"NEWS_INGEST_FETCH_ALLOW": server.allow}, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert published(r) == sorted([*links, server.url("/story/99")])
    counts = [json.loads(f[b"data"])["url"] for _id, f in r.xrange(KEYS.articles)]
    assert len(counts) == len(set(counts))  # each once
    summary = json.loads(out.stdout.splitlines()[-1])
    assert summary["work_left"] == {"feeds": {}, "items": {}, "jobs": 0}, summary


def test_a_deferred_item_arrives_even_after_its_feed_stopped_listing_it(
    server: TestServer, r: redis.Redis
) -> None:
    """A busy feed moves on while its host is blocked: what was deferred is kept, not forgotten."""
    server.add("/story/1", story(1))
    server.add("/story/2", story(2))
    documents = [[1], [2]]  # the first poll lists story 1; later ones only story 2
    conn = r.connection_pool.connection_kwargs
    side = redis.Redis(host=conn["host"], port=conn["port"])  # "another poller"

    def feed(_headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        listed = documents.pop(0) if len(documents) > 1 else documents[0]
        if listed == [1]:  # another poller draws a Retry-After while we read this document
            side.set(KEYS.host_next("127.0.0.1"), int(time.time() * 1000) + 1000)
        items = [{"title": f"Story {n}", "link": server.url(f"/story/{n}")} for n in listed]
        return 200, {"Content-Type": "application/rss+xml"}, pages.rss("F", items).encode()

    server.routes["/moving.xml"] = Route(body=feed)
    (fid,) = register(r, server.url("/moving.xml"))
    settings = settings_for(server, max_host_wait=0.5)

    poller = poll(settings, r)
    assert poller.stats.deferred == {"host_deferred": 1} and story_hits(server) == []
    assert r.hexists(KEYS.feed_deferred(fid), article_id(server.url("/story/1")))
    time.sleep(1.1)
    poll(settings, r)  # the feed lists only story 2 now
    assert sorted(story_hits(server)) == ["/story/1", "/story/2"]
    assert work(settings, r) == ["published", "published"]
    assert published(r) == [server.url("/story/1"), server.url("/story/2")]
    assert not r.exists(KEYS.feed_deferred(fid))  # handled: nothing held any more
    side.close()


def test_poll_once_says_what_it_left_too(server: TestServer, redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    limited_feed(server, "/limited.xml", retry_after=30, times=None)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {server.url('/limited.xml')}\n")
    done = cli("--redis-url", redis_url, "--feeds", str(feeds), "poll", "--once",
               env=run_once_env(server, 5))  # fmt: skip
    assert done.returncode == 3, done.stderr[-3000:]
    (left,) = events(done.stderr, "work_left")  # a 37.5 s retry cannot be due within 5 s
    assert left["feeds"] == {"rate_limited": 1}
    assert len(server.hits("/limited.xml")) == 1


def test_run_once_exit_statuses_for_bad_usage_and_failure(redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """README's `run --once` statuses besides 0 and 3: 2 for bad usage, 1 for a failure (here a
    feed list with nothing usable in it)."""
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - http://[::1\n")
    base = ("--redis-url", redis_url, "--feeds", str(feeds), "run", "--once")
    assert cli(*base, "--no-such-option", timeout=60).returncode == 2
    assert cli(*base, timeout=60).returncode == 1
