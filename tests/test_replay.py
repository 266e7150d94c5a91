"""Dead letters keep the original fetch facts, and replay re-runs only what a fix can change,
idempotently (issue 18.9). Through the real CLI, a real Valkey and real HTTP on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from ingest.core import bodies, counters
from ingest.core.deadletters import DeadLetter, Fetch
from tests import pages
from tests.conftest import cli
from tests.faults import CHALLENGE, TEASER
from tests.helpers import KEYS
from tests.server import Route, TestServer

# An error page a careless replay would publish: a whole article's worth of text
ERROR_500 = pages.article_page("Internal error", pages.paragraphs(pages.BOLIVIA))
WALL_403 = pages.article_page("Checking your browser", pages.paragraphs(pages.AUSTRIA)).replace(
    "</body>", CHALLENGE + "</body>"
)
GONE_410 = pages.article_page("This page is gone", pages.paragraphs(pages.WAR_REPORT))
TEASER_PLUS = TEASER.replace(
    "Subscribe to read more.",
    "Subscribe to read more. "
    + "The vote was close and the budget grows by four percent next year. " * 2,
)


def letters(r: redis.Redis) -> dict[str, DeadLetter]:
    """The dead letters by the path of their URL."""
    out = {}
    for entry_id, raw in r.xrange(KEYS.deadletter):
        letter = DeadLetter.from_entry(entry_id, raw)
        out[letter.url.rsplit("/", 1)[-1]] = letter
    return out


def _site_counts(r: redis.Redis) -> dict[bytes, dict[bytes, bytes]]:
    return {k: r.hgetall(k) for k in r.keys("news:metrics:sites:*")}  # type: ignore[misc]


def trace(r: redis.Redis, letter: DeadLetter) -> dict[bytes, bytes]:
    return r.hgetall(KEYS.k("trace", letter.article_id))  # type: ignore[return-value]


def state(r: redis.Redis) -> tuple[Any, ...]:
    """Everything a replay that publishes nothing must leave as it was."""
    return (r.xlen(KEYS.deadletter), r.xlen(KEYS.articles),
            r.hgetall(KEYS.counters("articles")),
            {k: r.hgetall(k) for k in sorted(r.keys("news:trace:*"))})  # fmt: skip


def setup_run(server: TestServer, redis_url: str, tmp_path: Path) -> tuple[tuple[str, ...],
                                                                        dict[str, str]]:  # fmt: skip
    server.add("/broken", ERROR_500, status=500)
    server.routes["/wall"] = Route(body=WALL_403.encode(), status=403,
                                   headers={"Content-Type": "text/html; charset=utf-8",
                                            "cf-mitigated": "challenge"})  # fmt: skip
    server.add("/removed", GONE_410, status=410)
    server.add("/locked", TEASER_PLUS)
    server.routes["/go"] = Route(status=302, headers={"Location": "/locked"})
    server.add("/nav", "<html><body><nav><a href='/a'>A</a><a href='/b'>B</a></nav></body></html>")
    items = [{"title": t, "link": server.url(p)} for t, p in
             [("Budget", "/go"), ("Broken", "/broken"), ("Wall", "/wall"), ("Removed", "/removed"),
              ("Menu", "/nav")]]  # fmt: skip
    server.add("/f.xml", pages.rss("F", items), "application/rss+xml")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {server.url('/f.xml')}\n")
    env = {"NEWS_INGEST_FETCH_ALLOW": server.allow, "NEWS_INGEST_POLL_HOST_RATE": "0"}
    base = ("--redis-url", redis_url)
    run = cli(*base, "--feeds", str(feeds), "run", "--once", env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    return base, env


def test_dead_letters_keep_the_fetch_facts_and_replay_publishes_no_error_page(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    base, env = setup_run(server, redis_url, tmp_path)
    assert r.xlen(KEYS.articles) == 0
    dead = letters(r)
    assert sorted(dead) == ["broken", "go", "nav", "removed", "wall"]
    facts = {name: (d.reason, d.fetch.outcome, d.fetch.status) for name, d in dead.items()}
    assert facts == {"broken": ("http_error", "http_error", 500),
                     "wall": ("bot_wall", "bot_wall", 403), "removed": ("gone", "gone", 410),
                     "go": ("paywall", "ok", 200), "nav": ("not_article", "ok", 200)}  # fmt: skip
    assert dead["go"].fetch.final_url == server.url("/locked")  # after the redirect
    assert dead["go"].fetch.content_type == "text/html; charset=utf-8"
    assert b"Internal error" in bodies.unpack(dead["broken"].body_z or b"")
    shown = json.loads(cli(*base, "deadletter", "show", dead["broken"].id, env=env).stdout)
    assert shown["fetch"]["status"] == 500 and shown["fetch"]["outcome"] == "http_error"
    before = {name: trace(r, d) for name, d in dead.items()}

    sites = _site_counts(r)
    # the operator lowers the bar for short texts and replays everything
    looser = {**env, "NEWS_INGEST_EXTRACT_MIN_CHARS": "100"}
    first = cli(*base, "replay", env=looser)
    assert first.returncode == 0, first.stderr[-2000:]
    summary = json.loads(first.stderr.strip().splitlines()[-1])
    assert summary["skipped"] == {"http_error": 1, "bot_wall": 1, "gone": 1}
    assert summary["replayed"] == 2
    now = {json.loads(x)["url"].rsplit("/", 1)[-1]: json.loads(x)["now"]
           for x in first.stdout.splitlines()}  # fmt: skip
    assert now == {"go": "published", "nav": "not_article"}
    published = [json.loads(f[b"data"]) for _id, f in r.xrange(KEYS.articles)]
    assert [p["url"] for p in published] == [server.url("/locked")]
    assert counters.published_since(r, KEYS, 60) == 1  # the publish script's 10 s bucket
    # the replay's wait is the operator's: not an end-to-end latency of the pipeline
    assert not r.exists(KEYS.k("metrics", "stage", "end_to_end"))
    assert sites == _site_counts(r)  # nor a second extraction sample of the site
    assert not any("Internal error" in p["text"] or "Checking your browser" in p["text"]
                   for p in published)  # fmt: skip
    assert r.xlen(KEYS.deadletter) == 5  # no new letter
    for name in ("broken", "wall", "removed", "nav"):  # a replay that did not publish: untouched
        assert trace(r, dead[name]) == before[name], name
    why = json.loads(cli(*base, "explain", server.url("/broken"), env=env).stdout)
    assert (why["trace"]["fetch"]["status"], why["trace"]["fetch"]["outcome"]) == (500, "http_error")
    assert why["verdict"].startswith("not published: http_error")

    # replayed again: nothing changes (the paywalled story is found published)
    held = state(r)
    again = cli(*base, "replay", env=looser)
    assert again.returncode == 0, again.stderr[-2000:]
    now = {json.loads(x)["url"].rsplit("/", 1)[-1]: json.loads(x)["now"]
           for x in again.stdout.splitlines()}  # fmt: skip
    assert now == {"go": "duplicate", "nav": "not_article"}
    assert state(r) == held


def test_replay_refuses_reasons_no_fix_can_change(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    base, env = setup_run(server, redis_url, tmp_path)
    held = state(r)
    for reason in ("gone", "http_error", "bot_wall", "timeout"):
        refused = cli(*base, "replay", "--reason", reason, env=env)
        assert refused.returncode == 2, refused.stdout
        assert "failed fetches" in refused.stderr and "Traceback" not in refused.stderr
        assert refused.stdout == ""
    dry = cli(*base, "replay", "--dry-run", env=env)
    assert [json.loads(x)["reason"] for x in dry.stdout.splitlines()] == ["paywall", "not_article"]
    assert json.loads(dry.stderr.strip().splitlines()[-1])["skipped"] == {
        "http_error": 1, "bot_wall": 1, "gone": 1}  # fmt: skip
    assert state(r) == held


def test_a_letter_rebuilds_the_payload_it_was_made_from() -> None:
    payload = {
        "feed": {"id": "f1", "url": "http://news.test/f.xml", "title": "F", "tags": ["x"],
                 "language": "en", "topic": ""},
        "item": {"guid": "g1", "link": "http://news.test/a", "title": "A", "authors": [],
                 "published_at": None, "tags": [], "summary": "s", "content": "", "image": ""},
        "link": "http://news.test/a", "link_id": "00aa", "guid_hash": "11bb", "identity": "",
        "item_version": "0a0b0c0d", "claim": "00aa:0a0b0c0d", "discovered_at": 5.0,
        "page": {"url": "http://news.test/a-final", "status": 500, "content_type": "text/html",
                 "outcome": "http_error", "error": "HTTP 500", "html_z": None,
                 "error_z": bodies.pack(b"<h1>Internal error</h1>")},
    }  # fmt: skip
    letter = DeadLetter.of_payload(payload, "http_error", "HTTP 500")
    stored = DeadLetter.from_entry("1-0", {k.encode(): v if isinstance(v, bytes) else
                                           str(v).encode() for k, v in letter.fields().items()})
    assert stored.fetch == Fetch("http_error", 500, "text/html", "http://news.test/a-final",
                                 "HTTP 500")  # fmt: skip
    again = stored.payload()
    assert again["page"]["status"] == 500 and again["page"]["outcome"] == "http_error"
    assert again["page"]["html_z"] is None  # the error page is never given as the article's
    assert again["page"]["error_z"] == payload["page"]["error_z"]  # type: ignore[index]
    for k in ("feed", "item", "guid_hash", "item_version", "claim", "link_id"):
        assert again[k] == payload[k], k
    assert again["replay"] == "1-0"

    old = DeadLetter.from_entry("2-0", {b"reason": b"gone", b"url": b"http://news.test/b",
                                        b"article_id": b"00cc:01020304", b"at": b"1"})  # fmt: skip
    assert (old.fetch.outcome, old.fetch.status, old.article_id) == ("gone", None, "00cc")
    assert old.payload()["page"]["html_z"] is None
