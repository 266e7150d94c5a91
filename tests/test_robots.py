"""robots.txt as an attacker (or a broken site) serves it (issue 15, items 3, 7 and 8): failures
defer the articles instead of losing them, IPv6 literals work, and every redirect hop's target
is asked. Real poller, real Valkey, hostile routes on real loopback servers."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
import redis

from ingest.core.urls import article_id
from tests.helpers import KEYS, poll, register, settings_for, state, work
from tests.server import Route, TestServer
from tests.test_deferral import published, story

CAP = 200_000  # fetch.max_bytes here
DEADLINE = 1.0  # fetch.timeout here
DISALLOW_PRIVATE = b"User-agent: *\nDisallow: /private/\n"


def _robots_bomb(h: BaseHTTPRequestHandler) -> None:
    body = zlib.compress(b"Disallow: /x\n" * (20 * CAP // 13), 9)  # 4 MB of rules in a few KB
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: deflate\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip


ROBOTS_FAILURES = {
    "http_500": Route(status=500, body=b"<h1>Internal error</h1>"),
    "timeout": Route(body=DISALLOW_PRIVATE, delay=DEADLINE + 1.5),
    "over_the_cap": Route(body=b"# " + b"x" * (CAP + 10), headers={"Content-Type": "text/plain"}),
    "compression_bomb": Route(raw=_robots_bomb),
    "http_429": Route(status=429, body=b"slow down"),  # Google reads 429 as 5xx: not "allow all"
}


@pytest.fixture
def other() -> Iterator[TestServer]:
    """A second origin (another port) with no robots.txt at all: everything allowed."""
    srv = TestServer().start()
    yield srv
    srv.stop()


def settings(server: TestServer, *allow: str, **poll: object):  # type: ignore[no-untyped-def]
    base = settings_for(server, *allow, **poll)
    return base.with_overrides(
        fetch={"timeout": DEADLINE, "max_bytes": CAP, "robots": True, "robots_retry": 1}
    )


@pytest.mark.parametrize("failure", ROBOTS_FAILURES, ids=str)
def test_robots_failure_defers_the_article_until_robots_answers(
    failure: str, server: TestServer, other: TestServer, r: redis.Redis
) -> None:
    server.routes["/robots.txt"] = ROBOTS_FAILURES[failure]
    server.add("/story/1", story(1))
    other.add("/story/2", story(2))
    items = [{"title": "Here", "link": server.url("/story/1")},
             {"title": "There", "link": other.url("/story/2")}]  # fmt: skip
    from tests import pages

    server.add("/f.xml", pages.rss("F", items), "application/rss+xml", etag='"v1"')
    (fid,) = register(r, server.url("/f.xml"))
    s = settings(server, other.allow)

    poller = poll(s, r)
    assert server.hits("/story/1") == []  # robots.txt did not answer: not fetched ...
    assert poller.stats.deferred == {"robots_unavailable": 1}  # ... but deferred, and counted
    assert int(r.hget(KEYS.counters("deferred"), "robots_unavailable") or 0) == 1
    assert not r.exists(KEYS.inflight(article_id(server.url("/story/1"))))  # no refusal kept
    assert r.xlen(KEYS.deadletter) == 0
    st = state(r, fid)
    assert (st["last_outcome"], st["deferred_items"]) == ("deferred", "1")
    assert st["body_hash"] == "" and st["etag"] == ""  # the feed is read again, not "unchanged"
    assert work(s, r) == ["published"]  # the other origin's story did not wait
    assert published(r) == [other.url("/story/2")]

    # robots.txt recovers; after robots_retry the deferred story arrives
    server.routes["/robots.txt"] = Route(
        body=DISALLOW_PRIVATE, headers={"Content-Type": "text/plain"}
    )
    time.sleep(1.1)
    poll(s, r)
    assert "if-none-match" not in server.hits("/f.xml")[-1].headers
    assert len(server.hits("/story/1")) == 1 and len(other.hits("/story/2")) == 1
    assert work(s, r) == ["published"]
    assert published(r) == sorted([server.url("/story/1"), other.url("/story/2")])
    assert state(r, fid)["deferred_items"] == "0"


def test_ipv6_literal_article_is_fetched_with_its_robots_txt(
    server: TestServer, r: redis.Redis
) -> None:
    """`http://[::1]:PORT/...` used to give `http://::1:PORT/robots.txt` → bad_url, remembered
    as a refusal of the article for 30 days."""
    v6 = TestServer("::1").start()
    try:
        v6.routes["/robots.txt"] = Route(
            body=DISALLOW_PRIVATE, headers={"Content-Type": "text/plain"}
        )
        v6.add("/story/1", story(1))
        v6.add("/private/2", story(2))
        from tests import pages

        items = [{"title": "Six", "link": v6.url("/story/1")},
                 {"title": "Hidden", "link": v6.url("/private/2")}]  # fmt: skip
        server.add("/f.xml", pages.rss("F", items), "application/rss+xml")
        register(r, server.url("/f.xml"))
        s = settings(server, v6.allow)
        assert v6.url("/story/1").startswith("http://[::1]:")

        poll(s, r)
        assert len(v6.hits("/robots.txt")) == 1  # asked at the bracketed URL, and answered
        assert work(s, r) == ["published"]
        assert published(r) == [v6.url("/story/1")]
        assert v6.hits("/private/2") == []  # its rules apply: disallowed, refused
        assert r.get(KEYS.inflight(article_id(v6.url("/private/2")))) == b"robots_disallowed"
        assert r.get(KEYS.inflight(article_id(v6.url("/story/1")))) != b"bad_url"
        assert [f[b"reason"] for _id, f in r.xrange(KEYS.deadletter)] == [b"robots_disallowed"]
    finally:
        v6.stop()


def test_redirect_into_a_disallowed_path_is_not_fetched_nor_published(
    server: TestServer, other: TestServer, r: redis.Redis
) -> None:
    from tests import pages

    text = {"Content-Type": "text/plain"}
    server.routes["/robots.txt"] = Route(body=DISALLOW_PRIVATE, headers=text)
    other.routes["/robots.txt"] = Route(body=DISALLOW_PRIVATE, headers=text)
    server.add("/private/1", story(1))
    other.add("/private/2", story(2))
    server.add("/story/3", story(3))
    server.add("/story/4", story(4))
    # allowed path -> disallowed path, same origin; allowed -> another origin's disallowed path
    server.routes["/go/1"] = Route(status=302, headers={"Location": "/private/1"})
    server.routes["/go/2"] = Route(status=302, headers={"Location": other.url("/private/2")})
    server.routes["/go/3"] = Route(status=301, headers={"Location": "/story/3"})  # allowed hop
    # ... and into an origin whose robots.txt hangs: deferred, not a timeout of the article
    slow = TestServer().start()
    slow.routes["/robots.txt"] = Route(body=b"", delay=DEADLINE + 1.5)
    slow.add("/story/5", story(5))
    server.routes["/go/5"] = Route(status=302, headers={"Location": slow.url("/story/5")})
    items = [{"title": f"Item {n}", "link": server.url(f"/go/{n}")} for n in (1, 2, 3, 5)]
    items.append({"title": "Plain", "link": server.url("/story/4")})  # the next healthy one
    server.add("/f.xml", pages.rss("F", items), "application/rss+xml")
    register(r, server.url("/f.xml"))
    # one request in flight per host: the hop's robots.txt must not wait for the article's slot
    s = settings(server, other.allow, slow.allow, host_inflight=1)

    poller = poll(s, r)
    slow.stop()
    assert server.hits("/private/1") == [] and other.hits("/private/2") == []
    assert slow.hits("/story/5") == [] and poller.stats.deferred == {"robots_unavailable": 1}
    assert len(other.hits("/robots.txt")) == 1  # the target origin's own rules were read
    assert sorted(work(s, r)) == ["published", "published"]
    assert published(r) == sorted([server.url("/story/3"), server.url("/story/4")])
    dead = sorted((f[b"reason"], f[b"url"].decode()) for _id, f in r.xrange(KEYS.deadletter))
    assert dead == [(b"robots_disallowed", server.url("/go/1")),
                    (b"robots_disallowed", server.url("/go/2"))]  # fmt: skip
    assert json.loads(r.xrange(KEYS.articles)[0][1][b"data"])["url"].startswith(server.base)


def test_an_ipv6_origin_keeps_its_brackets() -> None:
    from ingest.core.urls import origin_of

    assert origin_of("http://[::1]:8080/a?b") == "http://[::1]:8080"
    assert origin_of("https://[2001:db8::1]/x") == "https://[2001:db8::1]:443"
    assert origin_of("http://Example.com/x") == "http://example.com:80"


def test_a_robots_url_our_fetcher_rejects_defers_and_is_never_a_refusal(r: redis.Redis) -> None:
    """Our own bug (the IPv6 one was such) must cost a delay, not 30 days of refusals."""
    import asyncio

    from ingest.core import outcomes
    from ingest.net.fetch import Response
    from ingest.net.robots import RobotsCache

    asked: list[str] = []

    async def get(url: str) -> Response:
        asked.append(url)
        raise outcomes.BadURL("invalid URL", url=url)

    cache = RobotsCache(r, KEYS, "news-ingest/0.1", retry_s=600)
    with pytest.raises(outcomes.RobotsUnavailable) as caught:
        asyncio.run(cache.check("http://[::1]:8080/story", get))
    assert asked == ["http://[::1]:8080/robots.txt"]
    assert isinstance(caught.value.retry_after, float) and caught.value.retry_after == 600
    assert not isinstance(caught.value, outcomes.RobotsDisallowed | outcomes.BadScheme)
    with pytest.raises(outcomes.BadScheme):  # the article's own scheme is still its fault
        asyncio.run(cache.check("ftp://example.org/story", get))
