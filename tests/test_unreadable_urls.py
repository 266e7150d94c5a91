"""URLs that urllib cannot read (`http://[oops/`, `http://a]b/`, a port that is not one), from
every place a hostile feed or page can put one: an item's link, a redirect's Location, a
rel=canonical, the feed's own URL, the command line. Each gets a named outcome, never a
traceback, and an empty host never passes for a host (a gate, a site, "same site")."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis

from ingest.core import counters, deadletters, outcomes
from ingest.core.urls import host_of, origin_of, resolve_amp
from ingest.net.fetch import Response
from ingest.net.robots import RobotsCache
from tests import pages
from tests.conftest import cli
from tests.helpers import KEYS, poll, register, settings_for, state, work
from tests.server import Route, TestServer
from tests.test_cli_errors import one_line_error
from tests.test_hostile import healthy, published
from workers.identify import canonical_for, cross_site_canonical, same_site

# urlsplit raises on the first three; the others raise when their port is read
UNREADABLE = ["http://[oops/", "http://[::1", "http://a]b/", "http://127.0.0.1:abc/x",
              "http://127.0.0.1:99999/x", "http://[::1]:80:80/"]  # fmt: skip


# ------------------------------------------------------------------ the pure functions


@pytest.mark.parametrize("url", [*UNREADABLE, "", "no scheme at all", "http://\u2100/"])
def test_host_of_an_unreadable_url_is_empty(url: str) -> None:
    assert host_of(url) == ""
    assert origin_of(url) == ""
    assert resolve_amp(url) == url  # as given, not a crash


def test_host_of_a_readable_url() -> None:
    assert host_of("HTTP://News.Example.COM:8080/a?b") == "news.example.com"
    assert host_of("http://[::1]:8080/") == "::1"
    assert origin_of("https://h/x") == "https://h:443"


@pytest.mark.parametrize("bad", UNREADABLE)
def test_an_unreadable_url_is_never_the_same_site(bad: str) -> None:
    for page in ("http://127.0.0.1/story", "http://news.example./story", bad):
        assert not same_site(bad, page)
        assert not same_site(page, bad)
    # a trailing-dot host ends with "." + "": it must not pass for a subdomain of no host
    assert not same_site("http://evil.example./x", bad)


@pytest.mark.parametrize("bad", UNREADABLE)
def test_an_unreadable_canonical_is_no_claim_and_not_the_canonical(bad: str) -> None:
    page = "http://127.0.0.1/story"
    assert cross_site_canonical(page, bad) == ""
    assert canonical_for(page, bad) == page
    assert cross_site_canonical(page, "http://other.example/s") == "http://other.example/s"


@pytest.mark.parametrize("bad", UNREADABLE)
def test_robots_check_of_an_unreadable_url_is_bad_url(bad: str, r: redis.Redis) -> None:
    asked: list[str] = []

    async def get(url: str) -> Response:
        asked.append(url)
        raise AssertionError("no robots.txt is fetched for a URL we cannot read")

    cache = RobotsCache(r, KEYS, "news-ingest/1")
    with pytest.raises(outcomes.BadURL):
        asyncio.run(cache.check(bad, get))
    assert asked == []


def test_a_letter_without_a_host_matches_no_site(r: redis.Redis) -> None:
    deadletters.refused(r, KEYS, "bad_url", url="http://[oops/", feed_url="http://127.0.0.1/f",
                        claim="c", detail="invalid URL")  # fmt: skip
    assert [x.url for x in deadletters.letters(r, KEYS)] == ["http://[oops/"]
    for site in ("www.", "www.x", "127.0.0.1"):
        assert list(deadletters.letters(r, KEYS, site=site)) == []


# ------------------------------------------------------------------ a hostile feed, served


def no_empty_host(r: redis.Redis) -> bool:
    """No host gate of the empty host was taken or deferred: every unreadable URL would share
    it (one 429 anywhere would hold them all), and it is no host to be polite to."""
    return not r.exists(KEYS.host_next(""), KEYS.host_inflight(""))


def test_items_linking_to_unreadable_urls_are_counted_and_the_feed_is_ok(
    server: TestServer, r: redis.Redis
) -> None:
    items = [{"title": f"Bad {n}", "link": bad} for n, bad in enumerate(UNREADABLE)]
    link = server.add("/good/story", pages.article_page("Breakwater good", pages.paragraphs(
        pages.BOLIVIA)))  # fmt: skip
    server.add("/bad.xml", pages.rss("bad", [*items, {"title": "Breakwater good", "link": link}]),
               "application/rss+xml")  # fmt: skip
    server.add("/bad.json", pages.json_feed("bad", items), "application/feed+json")
    rss, jf = register(r, server.url("/bad.xml"), server.url("/bad.json"))
    settings = settings_for(server)
    poll(settings, r)
    assert state(r, rss)["last_outcome"] == "ok"
    assert state(r, jf)["last_outcome"] == "ok"
    assert counters.read(r, KEYS, "articles")["no_link"] == 2 * len(UNREADABLE)
    work(settings, r)
    assert [rec["title"] for rec in published(r)] == ["Breakwater good"]
    assert no_empty_host(r)


@pytest.mark.parametrize("robots", [True, False])
def test_a_redirect_to_an_unreadable_url_is_bad_url(
    robots: bool, server: TestServer, r: redis.Redis
) -> None:
    server.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    items = [{"title": "Breakwater healthy", "link": server.url("/healthy/story")}]
    server.add("/healthy/story", pages.article_page("Breakwater healthy", pages.paragraphs(
        pages.BOLIVIA)))  # fmt: skip
    for n, bad in enumerate(UNREADABLE):
        server.routes[f"/go/{n}"] = Route(status=302, headers={"Location": bad})
        items.append({"title": f"Jump {n}", "link": server.url(f"/go/{n}")})
    server.add("/f.xml", pages.rss("f", items), "application/rss+xml")
    fid = register(r, server.url("/f.xml"))[0]
    settings = settings_for(server).with_overrides(poll={"robots": robots})
    poll(settings, r)
    assert state(r, fid)["last_outcome"] == "ok"  # nothing deferred, nothing crashed
    assert not r.exists(KEYS.feed_deferred(fid))
    work(settings, r)
    assert [rec["title"] for rec in published(r)] == ["Breakwater healthy"]
    letters = sorted((x.reason, x.url) for x in deadletters.letters(r, KEYS))
    assert letters == sorted(("bad_url", server.url(f"/go/{n}")) for n in range(len(UNREADABLE)))
    assert no_empty_host(r)


@pytest.mark.parametrize("bad", ["http://[oops/", "http://a]b/", "http://127.0.0.1:abc/"])
def test_a_page_whose_canonical_is_unreadable_is_its_own_canonical(
    bad: str, server: TestServer, r: redis.Redis
) -> None:
    link = server.add("/story", pages.article_page("A title", pages.paragraphs(pages.BOLIVIA),
                                                   canonical=bad))  # fmt: skip
    server.add("/f.xml", pages.rss("f", [{"title": "A title", "link": link}]),
               "application/rss+xml")  # fmt: skip
    register(r, server.url("/f.xml"))
    settings = settings_for(server)
    poll(settings, r)
    assert work(settings, r) == ["published"]
    (record,) = published(r)
    assert record["canonical_url"] == link
    assert record["site_name"] != ""


def test_a_feed_whose_own_url_is_unreadable_is_bad_url(
    server: TestServer, r: redis.Redis
) -> None:
    """Registered before URLs were checked (or straight into Redis): that feed fails with
    bad_url, the others are polled, and no host gate of the empty host is deferred."""
    server.routes["/moved.xml"] = Route(status=301, headers={"Location": "http://a]b/feed"})
    bad = register(r, "http://[oops/feed", "http://127.0.0.1:abc/feed", server.url("/moved.xml"))
    ok = register(r, healthy(server))[0]
    poller = poll(settings_for(server), r)
    # a URL never sent says nothing of our network: not a success at the origin ""
    assert "" not in {origin for _at, origin, _ok in poller.egress._events}
    for fid in bad:
        assert state(r, fid)["last_outcome"] == "bad_url", state(r, fid)
        assert "invalid URL" in state(r, fid)["last_error"]
    assert state(r, ok)["last_outcome"] == "ok"
    assert no_empty_host(r)


# ------------------------------------------------------------------ the command line


@pytest.mark.parametrize("bad", ["http://a]b/", "http://127.0.0.1:abc/"])
def test_the_cli_says_an_unreadable_url_is_not_one(bad: str, redis_url: str) -> None:
    for args in (["explain", bad], ["feeds", "add", "--no-check", bad]):
        out = cli("--redis-url", redis_url, *args, timeout=60)
        assert "not an http(s) URL" in one_line_error(out), args


def test_deadletters_site_is_a_host(redis_url: str, r: redis.Redis) -> None:
    deadletters.refused(r, KEYS, "bad_url", url="http://[oops/", feed_url="http://127.0.0.1/f",
                        claim="c", detail="invalid URL")  # fmt: skip
    base = ("--redis-url", redis_url, "deadletter", "list")
    everything = cli(*base, timeout=60)
    assert [json.loads(x)["url"] for x in everything.stdout.splitlines()] == ["http://[oops/"]
    at_site = cli(*base, "--site", "www.", timeout=60)  # "www." less its "www." is "": no host
    assert at_site.returncode == 0, at_site.stderr[-3000:]
    assert at_site.stdout == ""
