"""The poller against a real HTTP server and a real Valkey: what the server saw is the proof."""

from __future__ import annotations

import asyncio
import email.utils
import json
import socket
import time

import pytest
import redis
from rq import Queue

from ingest.core.urls import article_id
from ingest.feeds.feedlist import FeedSpec
from ingest.net.hosts import DEFER
from ingest.poller import Poller
from tests import pages
from tests.helpers import KEYS, due_in, poll, register, settings_for, state, work
from tests.server import Route, TestServer


def empty_feed(title: str = "quiet") -> str:
    return pages.rss(title, [])


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_pushes_out_the_feed_and_its_host(
    server: TestServer, r: redis.Redis, form: str
) -> None:
    value = "120" if form == "seconds" else email.utils.formatdate(time.time() + 120, usegmt=True)
    server.add("/busy.xml", "slow down", status=429, headers={"Retry-After": value})
    server.add("/other.xml", empty_feed(), "application/rss+xml")
    busy, other = register(r, server.url("/busy.xml"), server.url("/other.xml"))
    settings = settings_for(server, min_interval=30, default_interval=30)

    poll(settings, r, only=[busy])
    st = state(r, busy)
    assert st["last_outcome"] == "rate_limited"
    assert st["errors"] == "0" and st["health"] == "healthy"  # a 429 is not the feed's fault
    # 1.25 blocks (±10 % jitter): after the work the block deferred, which comes back at 1
    assert 130 < due_in(r, busy) < 170
    assert 100_000 < r.pttl(KEYS.host_next("127.0.0.1")) - 60_000 <= 121_000

    # Another feed on the same host waits for the same Retry-After: no request reaches it.
    poll(settings, r, only=[other])
    assert server.hits("/other.xml") == []
    assert state(r, other)["last_outcome"] == "host_deferred"
    assert 100 < due_in(r, other) < 140
    assert len(server.hits("/busy.xml")) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_errors_back_off_exponentially_then_recover(
    server: TestServer, r: redis.Redis, status: int
) -> None:
    answers = [status, status, status, 200]

    def feed(_headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        code = answers.pop(0)
        return code, {"Content-Type": "application/rss+xml"}, empty_feed().encode()

    server.routes["/flaky.xml"] = Route(body=feed)
    (fid,) = register(r, server.url("/flaky.xml"))
    settings = settings_for(server, default_interval=600, min_interval=120)

    expected = {1: ("degraded", 600), 2: ("degraded", 1200), 3: ("failing", 2400)}
    for attempt in (1, 2, 3):
        poll(settings, r)
        st = state(r, fid)
        assert st["errors"] == str(attempt)
        assert st["health"] == expected[attempt][0]
        assert st["last_outcome"] == "http_error"
        assert 0.85 * expected[attempt][1] < due_in(r, fid) < 1.15 * expected[attempt][1]
    poll(settings, r)
    st = state(r, fid)
    assert (st["health"], st["errors"], st["last_outcome"]) == ("healthy", "0", "ok")
    assert len(server.hits("/flaky.xml")) == 4  # one request per due time, never a retry storm


def test_gone_feed_is_marked_but_still_probed(server: TestServer, r: redis.Redis) -> None:
    server.add("/dead.xml", "gone", status=410)
    (fid,) = register(r, server.url("/dead.xml"))
    settings = settings_for(server, max_backoff=7200)
    for _ in range(3):
        poll(settings, r)
    st = state(r, fid)
    assert st["health"] == "gone" and st["last_outcome"] == "gone"
    assert 0 < due_in(r, fid) <= 7200 * 1.1  # never given up for good: a capped recovery probe


def test_hanging_server_costs_one_deadline(server: TestServer, r: redis.Redis) -> None:
    server.add("/hang.xml", empty_feed(), "application/rss+xml", delay=10)
    (fid,) = register(r, server.url("/hang.xml"))
    started = time.monotonic()
    poll(settings_for(server), r)
    assert time.monotonic() - started < 6
    assert state(r, fid)["last_outcome"] == "timeout"


def test_conditional_get_and_unchanged_body_cost_no_item_work(
    server: TestServer, r: redis.Redis
) -> None:
    server.add("/a1", pages.article_page("Bolivia", pages.paragraphs(pages.BOLIVIA)))
    feed = pages.rss("F", [{"title": "Bolivia", "link": server.url("/a1")}])
    server.add("/etag.xml", feed, "application/rss+xml", etag='"v1"',
               headers={"Last-Modified": "Tue, 19 Nov 2019 10:00:00 GMT"})  # fmt: skip
    server.add("/noetag.xml", feed, "application/rss+xml")
    with_etag, without = register(r, server.url("/etag.xml"), server.url("/noetag.xml"))
    settings = settings_for(server)
    poll(settings, r)
    assert len(server.hits("/a1")) == 1  # one story in two feeds: fetched once
    before = len(server.requests)
    poll(settings, r)
    again = server.requests[before:]
    assert sorted(h.path for h in again) == ["/etag.xml", "/noetag.xml"]
    sent = next(h for h in again if h.path == "/etag.xml").headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == "Tue, 19 Nov 2019 10:00:00 GMT"
    assert state(r, with_etag)["last_outcome"] == "not_modified"
    assert state(r, without)["last_outcome"] == "unchanged"  # same body: detected by its hash
    counts = {k.decode(): int(v) for k, v in r.hgetall(KEYS.counters("polls")).items()}
    assert counts == {"ok": 2, "not_modified": 1, "unchanged": 1}


def test_one_host_is_never_burst_even_by_two_pollers(server: TestServer, r: redis.Redis) -> None:
    urls = []
    for f in range(6):
        items = []
        for a in range(3):
            path = f"/f{f}/a{a}"
            server.add(path, pages.article_page(f"Story {f}-{a}", pages.paragraphs(pages.BOLIVIA)),
                       delay=0.05)  # fmt: skip
            items.append({"title": f"Story {f}-{a}", "link": server.url(path)})
        server.add(f"/f{f}.xml", pages.rss(f"Feed {f}", items), "application/rss+xml", delay=0.05)
        urls.append(server.url(f"/f{f}.xml"))
    ids = register(r, *urls)
    settings = settings_for(server, host_rate=10, host_inflight=2)

    async def two_pollers() -> None:
        a, b = Poller(settings, r), Poller(settings, r)
        try:
            await asyncio.gather(a.run_once(ids[:3]), b.run_once(ids[3:]))
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(two_pollers())
    assert len([h for h in server.requests if h.path != "/robots.txt"]) == 6 + 18
    assert 1 <= len(server.hits("/robots.txt")) <= 2  # once per poller process at most
    starts = sorted(h.at for h in server.requests)
    # 10 requests/s at most across both pollers: any 5 consecutive requests span >= 0.4 s, less
    # the jitter between reserving a slot and the request arriving (up to ~0.1 s on a loaded
    # machine); twice the rate would be 0.2 s
    spans = [b - a for a, b in zip(starts, starts[4:], strict=False)]
    assert min(spans) >= 0.25, spans
    assert starts[-1] - starts[0] >= 23 * 0.1 * 0.9
    assert server.max_inflight <= 2
    assert r.zcard(KEYS.host_inflight("127.0.0.1")) == 0  # every lease returned


def test_feed_identity_degrades_for_shared_guids_and_links(
    server: TestServer, r: redis.Redis
) -> None:
    for i in range(3):
        server.add(f"/s{i}", pages.article_page(f"Story {i}", pages.paragraphs(
            [pages.BOLIVIA, pages.AUSTRIA, pages.WAR_REPORT][i])))  # fmt: skip
    shared_guid = pages.rss("One GUID", [
        {"title": f"Story {i}", "link": server.url(f"/s{i}"), "guid": "same-for-all"}
        for i in range(3)
    ])  # fmt: skip
    notices = [
        "Council approves the new budget for schools, roads and the harbour after a long debate.",
        "The ferry timetable changes on Monday: the early crossing moves to half past six.",
        "Water supply in the old town will be interrupted on Thursday for pipe repairs.",
    ]
    shared_link = pages.rss("One link", [
        {"title": f"Notice {i}", "link": server.url("/home"), "guid": "x", "summary": text}
        for i, text in enumerate(notices)
    ])  # fmt: skip
    server.add("/home", "<html><body>home</body></html>")
    server.add("/guid.xml", shared_guid, "application/rss+xml")
    server.add("/link.xml", shared_link, "application/rss+xml")
    g, link = register(r, server.url("/guid.xml"), server.url("/link.xml"))
    settings = settings_for(server)
    poll(settings, r)
    assert state(r, g)["guid_mode"] == "link"
    # links shared by different titles are told apart per link, not by a feed-wide mode
    assert (state(r, link)["guid_mode"], state(r, link)["shared_links"]) == ("guid", "1")
    assert sorted(h.path for h in server.requests if h.path.startswith("/s")) == [
        "/s0",
        "/s1",
        "/s2",
    ]
    assert server.hits("/home") == []  # a link shared by every item is not the story
    outcomes = work(settings, r)
    assert outcomes.count("published") == 6, outcomes
    titles = sorted(json.loads(f[b"data"])["title"] for _id, f in r.xrange(KEYS.articles))
    assert titles == ["Notice 0", "Notice 1", "Notice 2", "Story 0", "Story 1", "Story 2"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_our_own_egress_failure_is_not_charged_to_feeds(server: TestServer, r: redis.Redis) -> None:
    ports = [closed_port() for _ in range(4)]
    urls = [f"http://127.0.0.1:{p}/feed.xml" for p in ports]
    ids = register(r, *urls)
    settings = settings_for(server, *(f"127.0.0.1:{p}" for p in ports))
    poll(settings, r)
    for fid in ids:
        st = state(r, fid)
        assert st["last_outcome"] == "egress_down", st
        assert st["errors"] == "0" and st["health"] == "healthy"
        assert due_in(r, fid) < 200  # retried soon, not backed off

    # One dead origin among working ones is that feed's problem.
    r.flushall()
    server.add("/ok1.xml", empty_feed(), "application/rss+xml")
    server.add("/ok2.xml", empty_feed(), "application/rss+xml")
    dead, *_ = register(r, urls[0], server.url("/ok1.xml"), server.url("/ok2.xml"))
    poll(settings, r)
    st = state(r, dead)
    assert (st["last_outcome"], st["errors"], st["health"]) == ("connect_error", "1", "degraded")


def test_items_left_for_a_busy_host_are_read_again(server: TestServer, r: redis.Redis) -> None:
    server.add("/b1", pages.article_page("Bolivia", pages.paragraphs(pages.BOLIVIA)))
    feed_body = pages.rss("F", [{"title": "Bolivia", "link": server.url("/b1")}]).encode()
    url = r.connection_pool.connection_kwargs
    side = redis.Redis(host=url["host"], port=url["port"])
    defer = side.register_script(DEFER)

    def feed(_headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        # Another poller meets a Retry-After on this host while we read the feed.
        if len(server.hits("/busy-host.xml")) == 1:
            defer(keys=[KEYS.host_next("127.0.0.1")], args=[60_000])
        return 200, {"Content-Type": "application/rss+xml", "ETag": '"e"'}, feed_body

    server.routes["/busy-host.xml"] = Route(body=feed)
    (fid,) = register(r, server.url("/busy-host.xml"))
    settings = settings_for(server, min_interval=30)
    poll(settings, r)
    assert server.hits("/b1") == []
    st = state(r, fid)
    assert st["etag"] == "" and st["body_hash"] == ""  # validators dropped: re-read next time
    assert 0 < due_in(r, fid) < 80
    assert not r.exists(KEYS.inflight(article_id(server.url("/b1"))))

    r.delete(KEYS.host_next("127.0.0.1"))
    poll(settings, r)
    assert "if-none-match" not in server.hits("/busy-host.xml")[-1].headers
    assert len(server.hits("/b1")) == 1
    side.close()


def test_quiet_feed_is_flagged_stale_in_status_and_metrics(
    server: TestServer, r: redis.Redis
) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from ingest.metrics import RedisCollector
    from ingest.status import gather

    server.add("/quiet.xml", empty_feed(), "application/rss+xml")
    server.add("/lively.xml", empty_feed(), "application/rss+xml")
    quiet, lively = register(r, server.url("/quiet.xml"), server.url("/lively.xml"))
    settings = settings_for(server)
    poll(settings, r)
    interval = float(state(r, quiet)["interval"])
    # quiet for 5 learned intervals (k = 4 by default); the other one for 3
    r.hset(KEYS.feed(quiet), "last_new_at", f"{time.time() - 5 * interval:.0f}")
    r.hset(KEYS.feed(lively), "last_new_at", f"{time.time() - 3 * interval:.0f}")
    assert gather(settings, r)["feeds"]["stale"] == [server.url("/quiet.xml")]
    registry = CollectorRegistry()
    registry.register(RedisCollector(settings, r))
    assert 'news_ingest_feeds{health="stale"} 1.0' in generate_latest(registry).decode()


def test_backpressure_pauses_claiming_until_downstream_drains(
    server: TestServer, r: redis.Redis
) -> None:
    server.add("/bp.xml", empty_feed(), "application/rss+xml")
    register(r, server.url("/bp.xml"))
    r.zadd(KEYS.due, {FeedSpec(server.url("/bp.xml")).id: 0})
    settings = settings_for(server, queue_high_water=1, lag_high_water=2)
    queue = Queue(settings.stream.queue, connection=r)
    for _ in range(2):
        queue.enqueue("builtins.len", "x")  # two jobs waiting: over the high-water mark

    async def run_for(seconds: float) -> Poller:
        poller = Poller(settings, r)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        try:
            await poller.run_forever(stop)
        finally:
            await poller.aclose()
        return poller

    asyncio.run(run_for(1.5))
    assert server.hits("/bp.xml") == []  # paused: the due feed was not even claimed

    queue.empty()
    for i in range(3):  # now a consumer group three entries behind
        r.xadd(KEYS.articles, {"n": i})
    r.xgroup_create(KEYS.articles, "slow", id="0")
    asyncio.run(run_for(1.5))
    assert server.hits("/bp.xml") == []

    r.xgroup_setid(KEYS.articles, "slow", id="$")
    asyncio.run(run_for(1.5))
    assert len(server.hits("/bp.xml")) == 1  # drained: polling resumes


def feed_route(title: str, item: dict[str, str]) -> Route:
    """A feed whose one item the test edits in place."""
    return Route(body=lambda _h: (200, {"Content-Type": "application/rss+xml"},
                                  pages.rss(title, [item]).encode()))  # fmt: skip


@pytest.mark.parametrize("drop", [True, False])
def test_syndicated_story_on_two_sites_arrives_once_and_its_correction_as_updated(
    server: TestServer, r: redis.Redis, redis_url: str, drop: bool
) -> None:
    other = TestServer().start()
    try:
        paras = pages.paragraphs(pages.BOLIVIA)
        copy = [*paras[:-1], "Reporting by the wire desk; editing by the night team."]
        sites = {  # url -> (server, path, title, paragraphs, feed item)
            server.url("/world/bolivia"): (server, "/world/bolivia", "Morales supporters killed",
                                           paras),
            other.url("/wire/2019/bolivia-clashes"): (other, "/wire/2019/bolivia-clashes",
                                                      "Bolivia: clashes leave supporters dead", copy),
        }  # fmt: skip
        items = {}
        for url, (srv, path, title, body) in sites.items():
            srv.add(path, pages.article_page(title, body))
            items[url] = {"title": title, "link": url, "summary": "Clashes in Bolivia."}
            srv.routes["/feed.xml"] = feed_route(title, items[url])
        register(r, server.url("/feed.xml"), other.url("/feed.xml"))
        settings = settings_for(server, other.allow).with_overrides(
            dedup={"drop_near_duplicates": drop}
        )
        poll(settings, r)
        outcomes = sorted(work(settings, r))
        records = [json.loads(f[b"data"]) for _id, f in r.xrange(KEYS.articles)]
        if drop:
            assert outcomes == ["near_duplicate", "published"]
            assert len(records) == 1
        else:
            assert outcomes == ["near_duplicate_published", "published"]
            first, second = sorted(records, key=lambda rec: rec["duplicate_of"] is not None)
            assert second["duplicate_of"] == first["id"]
            assert second["cluster_id"] == first["cluster_id"] == first["id"]
        # whichever copy was processed first is the story's record
        original = next(rec for rec in records if rec["duplicate_of"] is None)
        if drop:  # explain says why the other copy is not in the stream, and which one it matched
            from tests.conftest import cli

            copy_url = next(u for u in sites if u != original["url"])
            shown = json.loads(cli("--redis-url", redis_url, "explain", copy_url).stdout)
            assert shown["verdict"] == f"not published: near_duplicate (near:{original['id']})"
            assert shown["trace"]["dedup"]["decision"] == "near_duplicate"
            assert shown["trace"]["extraction"]["method"] == "trafilatura"
            assert shown["trace"]["fetch"]["status"] == 200
        srv, path, title, body = sites[original["url"]]

        # it is corrected: new paragraphs on the page, new words in its feed item
        fixed = body[:2] + ["Officials later revised the death toll and named the victims."] * 3
        srv.add(path, pages.article_page(title, fixed + body[2:]))
        items[original["url"]]["summary"] = "Clashes in Bolivia; death toll revised."
        poll(settings, r)
        assert work(settings, r) == ["updated"]
        events = [(f[b"event"], json.loads(f[b"data"])["id"]) for _id, f in r.xrange(KEYS.articles)]
        assert events[-1] == (b"updated", original["id"])

        # a trivial change (the feed's words change, the text does not) publishes nothing
        items[original["url"]]["summary"] = "Clashes in Bolivia; death toll revised. 2 comments"
        poll(settings, r)
        assert work(settings, r) == ["duplicate"]
        assert r.xlen(KEYS.articles) == len(events)
    finally:
        other.stop()
