"""What an attacker and a new user found, each rebuilt as it was found (a hostile route in the
test server, the real CLI or poller, a real Valkey) and asserting what must happen instead."""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import redis

from ingest.core import counters, deadletters, escape
from ingest.core.embedded import free_port
from ingest.feeds import feedparse
from ingest.once import added
from tests import pages
from tests.conftest import ELSEWHERE, cli
from tests.helpers import KEYS, poll, register, settings_for, state, work
from tests.server import Route, TestServer
from tests.test_cli_errors import one_line_error


def story_feed(server: TestServer, name: str, stories: list[int]) -> str:
    """A feed at /<name>.xml listing distinct stories (each its own page); its URL."""
    items = []
    for n in stories:
        link = server.add(f"/{name}/{n}", pages.article_page(f"Story {n}", pages.distinct_story(n)))
        items.append({"title": f"Story {n}", "link": link})
    return server.add(f"/{name}.xml", pages.rss(name, items), "application/rss+xml")


def once_env(server: TestServer) -> dict[str, str]:
    return {"NEWS_INGEST_FETCH_ALLOW": server.allow, "NEWS_INGEST_POLL_HOST_RATE": "0",
            "NEWS_INGEST_RUN_ONCE_DEADLINE": "2", "NEWS_INGEST_WORKER_COUNT": "1"}  # fmt: skip


def summary_of(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode == 0, done.stderr[-3000:]
    doc: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return doc


# ---------------------------------------------------------- 1: run --once reports this run


def test_run_once_reports_this_runs_articles_not_all_time(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {story_feed(server, 'f', [1, 2])}\n")
    base = ("--redis-url", redis_url, "--feeds", str(feeds), "run", "--once")
    assert summary_of(cli(*base, env=once_env(server)))["articles"] == {"published": 2}
    story_feed(server, "f", [1, 2, 3])  # one story more
    assert summary_of(cli(*base, env=once_env(server)))["articles"] == {"published": 1}
    assert summary_of(cli(*base, env=once_env(server)))["articles"] == {}  # nothing new
    assert counters.read(r, KEYS, "articles")["published"] == 3  # the all-time figure


def test_added_is_what_moved() -> None:
    assert added({"published": 4, "duplicate": 1}, {"published": 6, "duplicate": 1,
                                                    "blocked": 2}) == {"blocked": 2, "published": 2}  # fmt: skip
    assert added({}, {}) == {}


# ---------------------------------------------------------- 2: OPML entities and recovery

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<opml version="2.0"><body><outline text="&lol3;" xmlUrl="http://127.0.0.1:9/&lol3;"/>
<outline text="ok" xmlUrl="http://127.0.0.1:9/ok.xml"/></body></opml>"""
MANGLED = b"""<?xml version="1.0"?><opml version="2.0"><body>
<outline text="a" xmlUrl="http://127.0.0.1:9/&bogus;"/>
<outline text="ok" xmlUrl="http://127.0.0.1:9/ok.xml"/></body></opml>"""


def test_opml_with_entities_or_broken_markup_is_refused(
    tmp_path: Path, r: redis.Redis, redis_url: str
) -> None:
    for name, body, said in (("laughs", LAUGHS, "declares entities"),
                             ("mangled", MANGLED, "invalid OPML")):  # fmt: skip
        path = tmp_path / f"{name}.opml"
        path.write_bytes(body)
        out = cli("--redis-url", redis_url, "feeds", "import", str(path))
        assert said in one_line_error(out)  # was "0 feeds read" (laughs), rc 0
        # nothing registered: no `http://127.0.0.1:9/` that recovery cut the URL down to
        assert r.scard(KEYS.feeds) == 0
        ran = cli("--redis-url", redis_url, "--feeds", str(path), "run", "--once")
        assert said in one_line_error(ran)


# ------------------------------------------ 3: a redirect to an integer host is bad_url


def test_a_redirect_to_an_integer_host_is_bad_url_not_deferred(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    server.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    feed = story_feed(server, "f", [1])
    body = pages.rss("f", [{"title": "Story 1", "link": server.url("/f/1")},
                           {"title": "Jump", "link": server.url("/go")}])  # fmt: skip
    server.add("/f.xml", body, "application/rss+xml")
    for host in ("2130706433", "127.1", "017700000001"):  # 127.0.0.1 in legacy notations
        server.routes["/go"] = Route(status=302, headers={"Location": f"http://{host}:{server.port}/x"})
        r.flushdb()
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(f"feeds:\n  - {feed}\n")
        for _ in range(2):  # the second run has nothing left either: it was not deferred
            done = cli("--redis-url", redis_url, "--feeds", str(feeds), "run", "--once",
                       env=once_env(server))  # fmt: skip
            summary = summary_of(done)  # exit 0: nothing left (was 3, run after run)
            assert summary["deferred"] == {}, summary
            assert "robots_url_error" not in done.stderr
        letters = [(x.reason, x.url) for x in deadletters.letters(r, KEYS)]
        assert letters == [("bad_url", server.url("/go"))], host
        assert not server.hits("/x")


# ----------------------------------------------------- 4: passwords in feed URLs


def test_a_password_in_a_feed_url_is_never_shown(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    story_feed(server, "f", [1])
    secret = server.url("/f.xml").replace("://", "://reader:s3cr3t-pw@")
    broken = server.url("/missing.xml").replace("://", "://reader:s3cr3t-pw@")  # logs its error
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {secret}\n  - {broken}\n")
    base = ("--redis-url", redis_url)
    run = cli(*base, "--feeds", str(feeds), "run", "--once", env=once_env(server))
    assert summary_of(run)["articles"] == {"published": 1}
    polled = [json.loads(x) for x in run.stderr.splitlines() if '"feed_polled"' in x]
    assert {p["feed_url"] for p in polled} == {secret.replace("s3cr3t-pw", "***"),
                                               broken.replace("s3cr3t-pw", "***")}  # fmt: skip
    for args in (("feeds", "list"), ("feeds", "list", "--json"), ("status",), ("status", "--json")):
        out = cli(*base, *args)
        assert out.returncode == 0 or args[0] == "status", out.stderr[-2000:]  # 1: no workers
        assert "reader:" in out.stdout, args
        assert "s3cr3t-pw" not in out.stdout + out.stderr, args
        assert "reader:***@" in out.stdout or args[0] == "status", args
    assert "s3cr3t-pw" not in run.stderr
    # the export is the user's own copy of the registry: the URL as registered (README says so)
    assert secret in cli(*base, "feeds", "export").stdout


def test_redact_text_hides_every_password_in_a_line() -> None:
    from ingest.core.urls import redact_text

    line = "GET https://u:p4ss@a.example/x?to=b@c.d failed; retry http://tok@b.example/ now"
    assert redact_text(line) == ("GET https://u:***@a.example/x?to=b@c.d failed; "
                                 "retry http://***@b.example/ now")  # fmt: skip
    assert redact_text("mail me at a@b.example") == "mail me at a@b.example"


# ------------------------------------------------ 5, 6: JSON Feed types, RSS GUIDs as written

CONFUSED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": ["a", "list"],
    "home_page_url": {"not": "a url"},
    "language": 7,
    "items": [
        {"id": 1, "url": 12345, "title": "Numbers"},  # no link: not an item we can fetch
        {"id": {"x": 1}, "url": "/typed/1", "title": {"x": 1}, "summary": ["s"],
         "content_html": 5, "tags": ["ok", 3, {"t": 1}], "authors": [{"name": ["n"]}],
         "date_published": 20190101, "image": True},
    ],
}


def test_json_feed_fields_of_the_wrong_type_are_absent(server: TestServer, r: redis.Redis) -> None:
    parsed = feedparse.parse(json.dumps(CONFUSED).encode(), url="http://host/feed.json")
    assert (parsed.title, parsed.language, parsed.link) == ("", "", "http://host/feed.json")
    numbers, typed = parsed.items
    assert numbers.guid == "1" and numbers.link == ""  # was http://host/12345
    assert typed.link == "http://host/typed/1"
    assert (typed.guid, typed.title, typed.summary, typed.content, typed.image) == ("",) * 5
    assert typed.tags == ["ok"] and typed.authors == [] and typed.published_at is None

    # through the poller: no "{'x': 1}" title anywhere
    server.add("/typed/1", pages.article_page("Typed", pages.distinct_story(7)))
    fid = register(r, server.add("/c.json", json.dumps(CONFUSED), "application/feed+json"))[0]
    settings = settings_for(server)
    poll(settings, r)
    assert state(r, fid)["last_outcome"] == "ok" and state(r, fid).get("title", "") == ""
    assert server.hits("/12345") == []
    work(settings, r)
    records = [json.loads(f[b"data"]) for _id, f in r.xrange(KEYS.articles)]
    assert [x["url"] for x in records] == [server.url("/typed/1")]
    assert "{'x': 1}" not in json.dumps(records)


def test_an_rss_guid_is_kept_as_the_feed_wrote_it(server: TestServer, r: redis.Redis) -> None:
    server.add("/s/1", pages.article_page("Story 1", pages.distinct_story(1)))
    server.add("/s/2", pages.article_page("Story 2", pages.distinct_story(2)))
    body = pages.rss("g", [{"title": "Story 1", "link": server.url("/s/1"), "guid": "bad1"},
                           {"title": "Story 2", "link": server.url("/s/2"), "guid": "/rel/2"}])  # fmt: skip
    register(r, server.add("/g.xml", body, "application/rss+xml"))
    settings = settings_for(server)
    poll(settings, r)
    work(settings, r)
    records = [json.loads(f[b"data"]) for _id, f in r.xrange(KEYS.articles)]
    assert sorted(x["guid"] for x in records) == ["/rel/2", "bad1"]  # was http://host/bad1
    # a GUID standing in for a missing link is still a page URL
    (alone,) = feedparse.parse(b'<rss version="2.0"><channel><title>t</title><item><title>x'
                               b"</title><guid>/a/1</guid></item></channel></rss>",
                               url="http://host/feed.xml").items  # fmt: skip
    assert (alone.guid, alone.link) == ("/a/1", "http://host/a/1")


# ----------------------------------------------------- 7: feeds list --json is typed

TEXT_FIELDS = {"id", "url", "title", "etag", "last_modified", "body_hash", "last_error"}


def test_feeds_list_json_types_every_number(server: TestServer, r: redis.Redis,
                                            redis_url: str) -> None:  # fmt: skip
    link = server.add("/s/1", pages.article_page("Story 1", pages.distinct_story(1)))
    body = pages.rss("h", [{"title": "One", "link": link}, {"title": "Two", "link": link}])
    register(r, server.add("/h.xml", body, "application/rss+xml"))
    poll(settings_for(server), r)
    out = cli("--redis-url", redis_url, "feeds", "list", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    (view,) = [json.loads(x) for x in out.stdout.splitlines()]
    assert view["shared_links"] == 1 and view["deferred_items"] == 0  # were "1" and "0"
    numeric = [k for k, v in view.items() if isinstance(v, str) and k not in TEXT_FIELDS
               and re.fullmatch(r"-?\d+(\.\d+)?", v)]  # fmt: skip
    assert numeric == [], view


# ------------------------------------------------- 8: tail escapes format characters


def test_every_format_character_is_escaped() -> None:
    cf = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    shown = escape.terminal("".join(cf))
    assert not [c for c in shown if unicodedata.category(c) == "Cf"]
    assert json.loads(escape.json_line(json.dumps("".join(cf), ensure_ascii=False))) == "".join(cf)


def test_tail_shows_a_zero_width_space_as_its_escape(
    server: TestServer, r: redis.Redis, redis_url: str
) -> None:
    title = "Pay\u200bPal\u2060 login \u202e"
    link = server.add("/s/1", pages.article_page("Story 1", pages.distinct_story(1)))
    register(r, server.add("/z.json", pages.json_feed("z", [{"title": title, "link": link}]),
                           "application/feed+json"))  # fmt: skip
    settings = settings_for(server)
    poll(settings, r)
    work(settings, r)
    for args in ((), ("--json",)):
        out = cli("--redis-url", redis_url, "tail", "--from-start", "--count", "1", *args)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "\\u200b" in out.stdout and "\\u2060" in out.stdout and "\\u202e" in out.stdout
        assert not [c for c in out.stdout if unicodedata.category(c) == "Cf"], out.stdout
    assert json.loads(out.stdout)["title"] == title  # the same JSON value


# ------------------------------------- 9: poll / worker say at once what they wait for


def test_poll_and_worker_say_at_once_what_they_wait_for(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWS_INGEST_", "REDIS_URL"))}
    env.update(NEWS_INGEST_REDIS_DATA_DIR=str(tmp_path / "var"), NEWS_INGEST_RUN_SERVER_WAIT="30",
               NEWS_INGEST_REDIS_EMBEDDED_PORT=str(free_port()))  # fmt: skip
    for role in (("poll", "--once"), ("worker", "--burst")):
        proc = subprocess.Popen([sys.executable, "-m", "ingest.cli", "--log-json", *role],
                                cwd=ELSEWHERE, env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            started = time.monotonic()
            assert proc.stderr is not None
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stderr, selectors.EVENT_READ)
                assert sel.select(timeout=15), f"{role}: silent"  # was silent for the whole wait
                line = json.loads(proc.stderr.readline())
            assert time.monotonic() - started < 15 and proc.poll() is None  # still waiting
            assert line["event"] == "redis_waiting" and line["wait_s"] == 30
            assert "news-ingest server" in line["waiting_for"]
            assert line["data_dir"] == str(tmp_path / "var")
        finally:
            proc.kill()
            proc.wait()
