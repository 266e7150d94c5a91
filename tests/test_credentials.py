"""A password in a feed's URL (`http://user:secret@host/feed.xml`, a private feed) is the
operator's secret: it is used to poll the feed and kept in the registry, and nothing a consumer
or an operator's screen reads shows it (records, dead letters, traces, `explain`, logs)."""

from __future__ import annotations

import contextlib
import json

import redis
import structlog.testing

from ingest.core import bodies
from ingest.core.logs import redact_credentials
from tests import pages
from tests.conftest import cli
from tests.helpers import KEYS, poll, register, settings_for, work
from tests.server import TestServer

SECRET = b"s3cr3tpw"


def everything_stored(r: redis.Redis, skip: set[str]) -> list[tuple[str, bytes]]:
    """Every value in the database, packed bodies and RQ's job data unpacked: what any reader
    could see."""
    out: list[tuple[str, bytes]] = []
    for raw_key in r.scan_iter(count=1000):
        key = raw_key.decode()
        if key in skip:
            continue
        kind = r.type(raw_key).decode()
        values: list[bytes] = []
        if kind == "string":
            values = [r.get(raw_key) or b""]
        elif kind == "hash":
            values = [v for kv in r.hgetall(raw_key).items() for v in kv]
        elif kind == "stream":
            values = [v for _id, f in r.xrange(raw_key) for kv in f.items() for v in kv]
        elif kind == "list":
            values = r.lrange(raw_key, 0, -1)
        elif kind in ("set", "zset"):
            values = list(r.smembers(raw_key)) if kind == "set" else r.zrange(raw_key, 0, -1)
        for value in values:
            with contextlib.suppress(bodies.Unreadable):  # zstd (ours) or zlib (RQ's job data)
                value = bodies.unpack(value)
            out.append((key, value))
    return out


def test_a_password_in_a_feed_url_reaches_no_record_letter_trace_or_log(
    server: TestServer, r: redis.Redis, redis_url: str
) -> None:
    good = pages.article_page("A good story", pages.paragraphs(pages.BOLIVIA))
    server.add("/private/good", good)
    server.add("/private/gone", "<html><body>Gone</body></html>", status=410)
    items = [
        {"title": "A good story", "link": "/private/good"},  # relative: resolved on the feed URL
        {"title": "Gone", "link": server.url("/private/gone")},
        {"title": "Metadata", "link": "http://169.254.169.254/latest/meta-data/"},  # refused
    ]
    server.add("/private/feed.xml", pages.rss("Private", items), "application/rss+xml")
    feed_url = f"http://reader:{SECRET.decode()}@{server.netloc}/private/feed.xml"
    (fid,) = register(r, feed_url)
    settings = settings_for(server)
    with structlog.testing.capture_logs() as logs:
        poll(settings, r)
        outcomes = work(settings, r)
    assert "published" in outcomes and len(r.xrange(KEYS.articles)) == 1
    assert server.hits("/private/feed.xml"), "the feed was polled with its credentials"
    assert len(r.xrange(KEYS.deadletter)) == 2  # the gone page and the refused address
    registry = {KEYS.feed(fid)}
    assert SECRET in b"".join(r.hgetall(KEYS.feed(fid)).values())  # kept where it is needed
    leaks = [key for key, value in everything_stored(r, registry) if SECRET in value]
    assert leaks == [], [v for k, v in everything_stored(r, registry) if SECRET in v][:3]
    # capture_logs keeps the events before the processors: pass them through the redaction
    # every configured logger runs (ingest.core.logs.configure; top-level values)
    shown_logs = [redact_credentials(None, "", dict(event)) for event in logs]
    assert SECRET.decode() not in json.dumps(shown_logs, default=str)
    record = json.loads(r.xrange(KEYS.articles)[0][1][b"data"])
    assert record["feed"]["url"] == feed_url.replace(SECRET.decode(), "***")
    assert record["feed"]["id"] == fid  # the feed's identity is still its real URL's
    for link in (record["url"], server.url("/private/gone")):
        shown = cli("--redis-url", redis_url, "explain", link)
        assert shown.returncode in (0, 1), shown.stderr
        assert "reader:***@" in shown.stdout and SECRET.decode() not in shown.stdout + shown.stderr


def test_an_at_sign_in_a_feed_urls_path_is_not_a_password() -> None:
    """Mastodon's feeds are `https://host/@user.rss`: shown and stored as they are."""
    from ingest.core.urls import redact_url, without_userinfo

    for url in ("https://mastodon.social/@Gargron.rss", "http://h:8080/feed?from=a@b#c@d"):
        assert redact_url(url) == url and without_userinfo(url) == url
    assert redact_url("http://u:pw@h/@x.rss") == "http://u:***@h/@x.rss"
    assert without_userinfo("http://u:pw@h/@x.rss") == "http://h/@x.rss"
    # an unencoded "/" in a password ends the authority early: hidden all the same
    assert redact_url("redis://u:pa/ss@h:6379/0") == "redis://u:***@h:6379/0"


def test_a_letter_written_before_the_redaction_is_replayed_without_the_password() -> None:
    """Letters of earlier releases hold the feed's real URL in their job: replay (the one way
    an old letter re-enters the pipeline) hands the worker the redacted one, same feed id."""
    from ingest.core.deadletters import DeadLetter

    feed = {"id": "f1", "url": f"http://u:{SECRET.decode()}@h/feed", "title": "", "tags": [],
            "language": "", "topic": ""}  # fmt: skip
    letter = DeadLetter(id="1-0", at=0.0, reason="not_article", url="http://h/a",
                        feed_url=feed["url"], article_id="ab" * 8, job={"feed": feed})  # fmt: skip
    replayed = letter.payload()["feed"]
    assert replayed["url"] == "http://u:***@h/feed" and replayed["id"] == "f1"
    assert SECRET.decode() in feed["url"]  # the letter itself is not changed
