"""The whole pipeline against a real HTTP server on 127.0.0.1 and a real Valkey server."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import redis

from tests import pages
from tests.canary import Canary
from tests.conftest import ROOT, cli
from tests.server import TestServer

SCHEMA = json.loads((ROOT / "docs" / "article.schema.json").read_text())


def stream_records(r: redis.Redis) -> list[tuple[str, dict]]:
    return [(f[b"event"].decode(), json.loads(f[b"data"])) for _id, f in r.xrange("news:articles")]


def setup_site(server: TestServer, canary_port: int) -> Path:
    war = pages.ground_truth(pages.WAR_REPORT)
    war_title = "Three Taliban prisoners flown to Qatar for hostage swap"
    server.add(
        "/world/taliban-hostage-swap",
        pages.article_page(war_title, pages.paragraphs(pages.WAR_REPORT)),
    )
    server.add(
        "/world/bolivia",
        pages.article_page("Morales supporters killed in Bolivia", pages.paragraphs(pages.BOLIVIA)),
    )
    server.add(
        "/europe/austria",
        pages.article_page(
            "Hitler's birthplace to become police station", pages.paragraphs(pages.AUSTRIA)
        ),
    )
    feed1 = pages.rss("Example World", [
        {"title": war_title, "link": server.url("/world/taliban-hostage-swap?utm_source=rss&utm_medium=feed")},
        {"title": "Morales supporters killed in Bolivia", "link": server.url("/world/bolivia")},
        {"title": "Internal admin page", "link": f"http://127.0.0.1:{canary_port}/admin"},
    ])  # fmt: skip
    feed2 = pages.json_feed("Example Europe", [
        {"title": war_title, "link": server.url("/world/taliban-hostage-swap?utm_campaign=x&fbclid=abc")},
        {"title": "Hitler's birthplace to become police station", "link": server.url("/europe/austria")},
    ])  # fmt: skip
    server.add("/feeds/world.xml", feed1, "application/rss+xml", etag='"w1"')
    server.add("/feeds/europe.json", feed2, "application/feed+json", etag='"e1"')
    assert war["url"]
    return Path()


def test_run_once_publishes_each_story_once(server: TestServer, r: redis.Redis, redis_url: str,
                                            tmp_path: Path) -> None:  # fmt: skip
    canary = Canary()
    try:
        setup_site(server, canary.port)
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(f"feeds:\n  - url: {server.url('/feeds/world.xml')}\n"
                         f"  - url: {server.url('/feeds/europe.json')}\n")  # fmt: skip
        env = {
            "NEWS_INGEST_FETCH_ALLOW": server.allow,
            "NEWS_INGEST_WORKER_COUNT": "2",
            "NEWS_INGEST_POLL_HOST_RATE": "100",
        }
        first = cli("--redis-url", redis_url, "--feeds", str(feeds), "run", "--once", env=env)
        assert first.returncode == 0, first.stderr[-3000:]

        records = stream_records(r)
        urls = sorted(rec["canonical_url"] for _event, rec in records)
        assert urls == sorted(
            server.url(p)
            for p in ("/world/taliban-hostage-swap", "/world/bolivia", "/europe/austria")
        )
        assert {event for event, _ in records} == {"created"}
        for _event, rec in records:
            jsonschema.validate(rec, SCHEMA)

        war = next(rec for _e, rec in records if "taliban" in rec["canonical_url"])
        for para in (
            pages.paragraphs(pages.WAR_REPORT)[:3] + pages.paragraphs(pages.WAR_REPORT)[-1:]
        ):
            assert para[:60] in war["text"]
        for junk in (
            "Leave a Reply",
            "will not be published",
            "Required fields",
            "Share this",
            "All rights reserved",
            "Save my name",
            "Post Comment",
            "Privacy Policy",
        ):
            assert junk not in war["text"], junk
        assert war["language"] == "en"
        codes = [t["code"] for t in war["topics"]]
        assert {"medtop:16000000", "medtop:11000000"} & set(codes), war["topics"]
        assert war["extraction"]["method"] == "trafilatura"

        # the private-address item was refused and counted, never connected to
        assert int(r.hget("news:metrics:articles", "blocked") or 0) == 1
        assert canary.connections == 0
        dead = r.xrange("news:deadletter")
        assert [f[b"reason"] for _id, f in dead] == [b"blocked_address"]

        # explain: a published article and a refused one, with their reasons
        shown = json.loads(
            cli("--redis-url", redis_url, "explain", server.url("/world/bolivia")).stdout
        )
        assert shown["verdict"].startswith("published (created")
        refused = json.loads(
            cli("--redis-url", redis_url, "explain", f"http://127.0.0.1:{canary.port}/admin").stdout
        )
        assert refused["verdict"].startswith("not published: blocked_address")

        # second run: conditional requests, nothing new
        before = len(server.requests)
        second = cli("--redis-url", redis_url, "--feeds", str(feeds), "run", "--once", env=env)
        assert second.returncode == 0, second.stderr[-3000:]
        assert len(stream_records(r)) == 3
        feed_hits = [h for h in server.requests[before:] if h.path.startswith("/feeds/")]
        assert len(feed_hits) == 2
        assert {h.headers.get("if-none-match") for h in feed_hits} == {'"w1"', '"e1"'}
        assert not [h for h in server.requests[before:] if not h.path.startswith("/feeds/")]
        assert canary.connections == 0
    finally:
        canary.close()


def test_tail_json_prints_records(server: TestServer, r: redis.Redis, redis_url: str,
                                  tmp_path: Path) -> None:  # fmt: skip
    server.add("/a", pages.article_page("Bolivia", pages.paragraphs(pages.BOLIVIA)))
    server.add("/feed.xml", pages.rss("F", [{"title": "Bolivia", "link": server.url("/a")}]),
               "application/rss+xml")  # fmt: skip
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {server.url('/feed.xml')}\n")
    env = {"NEWS_INGEST_FETCH_ALLOW": server.allow, "NEWS_INGEST_POLL_HOST_RATE": "100"}
    assert (
        cli("run", "--once", "--feeds", str(feeds), "--redis-url", redis_url, env=env).returncode
        == 0
    )
    out = cli("--redis-url", redis_url, "tail", "--json", "--from-start", "--count", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["canonical_url"] == server.url("/a")
    jsonschema.validate(rec, SCHEMA)
    # through a consumer group: the entry is delivered and acknowledged
    grp = cli("--redis-url", redis_url, "tail", "--json", "--from-start", "--count", "1",
              "--group", "g1", "--consumer", "c1")  # fmt: skip
    assert json.loads(grp.stdout)["id"] == rec["id"]
    assert r.xpending("news:articles", "g1")["pending"] == 0
