"""`feeds add` checks the URL and detects the format; `feeds list` shows per-feed state."""

from __future__ import annotations

import json

from tests import pages
from tests.conftest import cli
from tests.server import TestServer


def test_feeds_add_checks_detects_and_discovers(server: TestServer, redis_url: str) -> None:
    server.add("/atom.xml", """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom News</title><id>urn:x</id>
<updated>2026-11-27T10:00:00Z</updated>
<entry><title>One</title><id>urn:1</id><link href="http://127.0.0.1/1"/>
<updated>2026-11-27T10:00:00Z</updated></entry></feed>""", "application/atom+xml")  # fmt: skip
    server.add("/home", '<html><head><link rel="alternate" type="application/rss+xml" '
               'href="/rss.xml"></head><body>news</body></html>')  # fmt: skip
    server.add("/rss.xml", pages.rss("Home RSS", []), "application/rss+xml")
    server.add("/plain", "<html><body>no feed here</body></html>")
    env = {"NEWS_INGEST_FETCH_ALLOW": server.allow}

    added = cli("--redis-url", redis_url, "feeds", "add", server.url("/atom.xml"), env=env)
    assert added.returncode == 0, added.stderr
    assert "atom10 feed, 1 items" in added.stdout

    found = cli("--redis-url", redis_url, "feeds", "add", server.url("/home"), env=env)
    assert found.returncode == 0, found.stderr
    assert f"announces the feed {server.url('/rss.xml')}" in found.stdout
    assert "rss20 feed" in found.stdout

    bad = cli("--redis-url", redis_url, "feeds", "add", server.url("/plain"), env=env)
    assert bad.returncode != 0
    assert "not a usable feed: malformed_feed" in bad.stderr

    blocked = cli("--redis-url", redis_url, "feeds", "add", server.url("/atom.xml"))  # no allow
    assert blocked.returncode != 0 and "blocked_address" in blocked.stderr

    rows = [json.loads(line) for line in
            cli("--redis-url", redis_url, "feeds", "list", "--json").stdout.splitlines()]  # fmt: skip
    assert sorted(row["url"] for row in rows) == [server.url("/atom.xml"), server.url("/rss.xml")]
    assert {row["title"] for row in rows} == {"Atom News", "Home RSS"}
    assert [h.path for h in server.requests].count("/plain") == 1
