"""Hostile and broken servers, one per named outcome, against the real poller, worker and Redis.

For each fault: the outcome is counted once, the dead letter says why (with the raw error page
where there is one), the server saw exactly the requests it should (never a retry storm), the
feed is not blamed, and the canary port is never touched.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import redis
import structlog.testing

from tests import pages
from tests.canary import Canary
from tests.fault_server import FaultServer
from tests.faults import CAP, DEADLINE, FAULTS, TEASER, Fault
from tests.helpers import KEYS, poll, register, settings_for, state, work
from tests.server import Route, TestServer


def suite_settings(server: TestServer):  # type: ignore[no-untyped-def]
    s = settings_for(server)
    return s.with_overrides(fetch={"timeout": DEADLINE, "max_bytes": CAP, "robots": True})


def changing_feed(link: str) -> Route:
    polls = {"n": 0}

    def feed(_headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        polls["n"] += 1  # a new body every poll, so the item is looked at again
        body = pages.rss(f"Faults {polls['n']}", [{"title": "A story", "link": link}])
        return 200, {"Content-Type": "application/rss+xml"}, body.encode()

    return Route(body=feed)


def counts(r: redis.Redis, family: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in r.hgetall(KEYS.counters(family)).items()}


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_each_fault_gets_its_named_outcome(
    fault: Fault, server: TestServer, r: redis.Redis, canary: Canary
) -> None:
    target = fault.install(server, canary.port)
    link = target if target.startswith("http") else server.url(target)
    server.routes["/faults.xml"] = changing_feed(link)
    (fid,) = register(r, server.url("/faults.xml"))
    settings = suite_settings(server)

    with structlog.testing.capture_logs() as logged:
        for _ in range(2):  # the second poll sees the item again and must not fetch it again
            poll(settings, r)
            work(settings, r)

    assert counts(r, "articles") == {fault.outcome: 1}
    # one line for the failure where it is dead-lettered (`article_failed` in the worker, or
    # `article_refused` in the poller), naming the feed, the article, the stage and the outcome
    lines = [e for e in logged if e["event"] in ("article_failed", "article_refused")]
    assert len(lines) == 1, [(e["event"], e.get("stage"), e.get("outcome")) for e in logged]
    assert lines[0]["outcome"] in (fault.outcome, fault.dead_reason), lines[0]
    assert lines[0]["feed_url"] == server.url("/faults.xml"), lines[0]
    assert lines[0]["article_id"] and lines[0]["stage"], lines[0]
    dead = r.xrange(KEYS.deadletter)
    assert len(dead) == 1
    entry = dead[0][1]
    assert entry[b"reason"].decode() == fault.dead_reason
    assert entry[b"url"].decode() in (link, server.url(urlsplit(link).path))
    assert (b"body_z" in entry) == fault.dead_body
    article_hits = [h for h in server.requests if h.path not in ("/faults.xml", "/robots.txt")]
    assert len(article_hits) == fault.hits, [h.path for h in article_hits]
    assert len(server.hits("/robots.txt")) <= 1
    st = state(r, fid)
    assert (st["health"], st["errors"]) == ("healthy", "0")  # the page's fault, not the feed's
    assert r.xlen(KEYS.articles) == 0
    assert canary.connections == 0


def test_rate_limited_article_waits_for_the_host_and_is_not_lost(
    server: TestServer, r: redis.Redis
) -> None:
    answers = [(429, {"Retry-After": "1"}, b"slow down")]

    def story(_headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if answers:
            return answers.pop()
        html = pages.article_page("Bolivia", pages.paragraphs(pages.BOLIVIA))
        return 200, {"Content-Type": "text/html; charset=utf-8"}, html.encode()

    server.routes["/story"] = Route(body=story)
    server.add("/f.xml", pages.rss("F", [{"title": "Bolivia", "link": server.url("/story")}]),
               "application/rss+xml", etag='"1"')  # fmt: skip
    register(r, server.url("/f.xml"))
    settings = suite_settings(server)
    poll(settings, r)
    assert work(settings, r) == [] and r.xlen(KEYS.deadletter) == 0
    pttl = r.pttl(KEYS.host_next("127.0.0.1"))
    assert 0 < pttl - 60_000 <= 1_000  # the host waits for its Retry-After
    import time

    time.sleep(1.1)
    poll(settings, r)  # validators were dropped, so the item is read again and fetched
    assert work(settings, r) == ["published"]
    assert len(server.hits("/story")) == 2
    assert "if-none-match" not in server.hits("/f.xml")[-1].headers


def test_mixed_run_publishes_every_healthy_article(
    server: TestServer, r: redis.Redis, canary: Canary
) -> None:
    # The hostile routes live in a process of their own (tests/fault_server.py): served from
    # this one, their endless bodies and drips starved the poller and the test failed 3 runs in 10.
    hostile = FaultServer(canary.port)
    try:
        items = [{"title": f.name, "link": hostile.targets[f.name]} for f in FAULTS]
        healthy = []
        for i, doc in enumerate([pages.BOLIVIA, pages.AUSTRIA, pages.WAR_REPORT]):
            server.add(f"/good{i}", pages.article_page(f"Good {i}", pages.paragraphs(doc)))
            healthy.append(server.url(f"/good{i}"))
            items.insert(i * 7, {"title": f"Good {i}", "link": server.url(f"/good{i}")})
        server.add("/mixed.xml", pages.rss("Mixed", items), "application/rss+xml")
        server.add("/not-a-feed.xml", "<html><body>I am a page</body></html>")
        good_feed, bad_feed = register(r, server.url("/mixed.xml"), server.url("/not-a-feed.xml"))
        # a looser deadline than the per-fault tests: two dozen fetches at once on a busy CI box
        settings = settings_for(server, hostile.allow).with_overrides(
            fetch={"timeout": 4.0, "max_bytes": CAP, "robots": True}
        )
        poll(settings, r)
        work(settings, r)
    finally:
        hostile.stop()
    published = sorted(json.loads(f[b"data"])["url"] for _id, f in r.xrange(KEYS.articles))
    assert published == sorted(healthy)
    assert state(r, bad_feed)["last_outcome"] == "malformed_feed"
    assert state(r, good_feed)["health"] == "healthy"
    assert canary.connections == 0


def test_deadletter_list_show_and_replay_after_a_settings_change(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import cli

    teaser = TEASER.replace(
        "Subscribe to read more.",
        "Subscribe to read more. " + "The vote "
        "was close and the budget grows by four percent next year. " * 2,
    )
    server.add("/locked", teaser)
    server.add("/f.xml", pages.rss("F", [{"title": "Budget", "link": server.url("/locked")}]),
               "application/rss+xml")  # fmt: skip
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {server.url('/f.xml')}\n")
    env = {"NEWS_INGEST_FETCH_ALLOW": server.allow, "NEWS_INGEST_POLL_HOST_RATE": "0"}
    base = ("--redis-url", redis_url)
    assert cli(*base, "--feeds", str(feeds), "run", "--once", env=env).returncode == 0
    assert r.xlen(KEYS.articles) == 0

    listed = [json.loads(x) for x in cli(*base, "deadletter", "list", "--reason", "paywall",
                                         env=env).stdout.splitlines()]  # fmt: skip
    assert [d["url"] for d in listed] == [server.url("/locked")] and listed[0]["body_bytes"] > 0
    shown = cli(*base, "deadletter", "show", listed[0]["id"], "--body", env=env)
    assert "isAccessibleForFree" in shown.stdout
    assert cli(*base, "deadletter", "list", "--reason", "timeout", env=env).stdout == ""
    why = json.loads(cli(*base, "explain", server.url("/locked"), env=env).stdout)
    assert why["verdict"].startswith("not published: paywall")
    assert why["deadletters"][0]["reason"] == "paywall"
    assert why["trace"]["extraction"]["gate"] == "paywall"

    # the operator decides a 100-character teaser is worth publishing, and replays
    looser = {**env, "NEWS_INGEST_EXTRACT_MIN_CHARS": "100"}
    first = cli(*base, "replay", "--reason", "paywall", env=looser)
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads(first.stdout.splitlines()[0])["now"] == "published"
    again = cli(*base, "replay", "--reason", "paywall", "--since", "1h", env=looser)
    assert json.loads(again.stdout.splitlines()[0])["now"] == "duplicate"  # idempotent
    assert r.xlen(KEYS.articles) == 1
