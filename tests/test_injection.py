"""Terminal, markup and XML injection (issue 15.6): strings from outside (a server's header line,
feed and item titles, page bodies) are escaped or cleaned where they meet a terminal, Rich markup
or XML. Each attack as it was found: a hostile route, the real CLI, a real Valkey."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import redis
from lxml import etree

from ingest.core import escape
from tests import pages
from tests.conftest import ROOT, cli
from tests.faults import TEASER
from tests.helpers import KEYS, poll, register, settings_for
from tests.server import Route, TestServer

# what an attacker puts in a title: set the window title (OSC 0), erase the line and forge
# another (CSI 2K + CR), a C1 CSI (U+009B), a bidi override, a bell
HOSTILE = "\x1b]0;pwned\x07\x1b[2K\rFORGED ok line\x9b31m red\u202e txet desrever\x07"
RAW = ("\x1b", "\x07", "\r", "\x9b", "\u202e")


def assert_clean(text: str) -> None:
    found = [c for c in RAW if c in text]
    assert not found, f"raw control characters reached the terminal: {found!r}"


def test_escape_functions() -> None:
    shown = escape.terminal(HOSTILE)
    assert_clean(shown)
    assert "\\x1b]0;pwned\\x07" in shown and "\\u202e" in shown
    assert escape.terminal("a\nb") == "a\\x0ab" and escape.terminal("a\nb", lines=True) == "a\nb"
    assert escape.markup("[/] [bold]x") == "\\[/] \\[bold]x"
    assert escape.xml_text("T\x01it\x1ble\ud800\ufffe") == "Title"
    doc = json.dumps({"t": HOSTILE}, ensure_ascii=False)
    assert json.loads(escape.json_line(doc)) == {"t": HOSTILE}
    assert_clean(escape.json_line(doc))


def _bad_header(h: BaseHTTPRequestHandler) -> None:
    """A feed server whose header line is malformed, with Rich markup in it."""
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                  b"X-Evil[/]: [bold red]boom[/] \x1b[2J\r\nContent-Length: 5\r\n\r\nhello")  # fmt: skip


def test_status_survives_markup_and_escapes_in_a_feed_error(
    server: TestServer, r: redis.Redis, redis_url: str
) -> None:
    server.routes["/evil.xml"] = Route(raw=_bad_header)
    (fid,) = register(r, server.url("/evil.xml"))
    env = {"NEWS_INGEST_FETCH_ALLOW": server.allow, "COLUMNS": "400"}
    poll(settings_for(server), r)
    error = r.hget(KEYS.feed(fid), "last_error").decode()  # type: ignore[union-attr]
    assert "[/]" in error  # the attack is in place

    out = cli("--redis-url", redis_url, "status", env=env)
    assert out.returncode == 1  # not ready (no worker), and no crash
    assert "Traceback" not in out.stderr and "MarkupError" not in out.stderr
    assert "X-Evil[/]: [bold red]boom[/]" in out.stdout, out.stdout  # shown as written
    assert_clean(out.stdout)

    listed = cli("--redis-url", redis_url, "feeds", "list", env=env)
    assert listed.returncode == 0 and "[bold red]boom[/]" in listed.stdout
    r.hset(KEYS.feed(fid), mapping={"last_error": HOSTILE})  # a stored hostile value
    for args in (("feeds", "list"), ("status",), ("status", "--json"), ("feeds", "list", "--json")):
        shown = cli("--redis-url", redis_url, *args, env=env)
        assert "Traceback" not in shown.stderr, args
        assert_clean(shown.stdout)
        assert "pwned" in shown.stdout, args


def test_titles_with_escapes_never_reach_the_terminal_raw(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    page = pages.article_page("Story", pages.paragraphs(pages.BOLIVIA)).replace(
        "<p class=\"byline\">", f"<p>{HOSTILE}</p><p class=\"byline\">")  # fmt: skip
    server.add("/story", page)
    server.add("/locked", TEASER.replace("<h1>Budget</h1>", f"<h1>Budget</h1><p>{HOSTILE}</p>"))
    feed = pages.json_feed(f"Feed {HOSTILE}", [
        {"title": f"Title {HOSTILE}", "link": server.url("/story")},
        {"title": "Budget", "link": server.url("/locked")}])  # fmt: skip
    server.add("/f.json", feed, "application/feed+json")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {server.url('/f.json')}\n")
    env = {"NEWS_INGEST_FETCH_ALLOW": server.allow, "NEWS_INGEST_POLL_HOST_RATE": "0"}
    base = ("--redis-url", redis_url)
    run = cli(*base, "--feeds", str(feeds), "run", "--once", env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    (entry,) = r.xrange(KEYS.articles)
    assert "\x1b]0;pwned" in json.loads(entry[1][b"data"])["title"]  # stored as sent

    tail = cli(*base, "tail", "--from-start", env=env)
    assert tail.returncode == 0 and "Title \\x1b]0;pwned\\x07" in tail.stdout
    assert_clean(tail.stdout)
    assert "\rFORGED" not in tail.stdout
    as_json = cli(*base, "tail", "--from-start", "--json", env=env)
    assert_clean(as_json.stdout)
    assert json.loads(as_json.stdout)["title"].startswith("Title \x1b]0;pwned")  # same value

    why = cli(*base, "explain", server.url("/story"), env=env)
    assert why.returncode == 0
    assert_clean(why.stdout)
    listed = cli(*base, "deadletter", "list", env=env).stdout
    assert_clean(listed)
    (letter,) = [json.loads(x) for x in listed.splitlines()]
    shown = cli(*base, "deadletter", "show", letter["id"], env=env)
    assert_clean(shown.stdout)

    # --body: the stored page as it came into a pipe, its escapes shown on a terminal
    piped = subprocess.run([sys.executable, "-m", "ingest.cli", *base, "deadletter", "show",
                            letter["id"], "--body"], cwd=ROOT, capture_output=True)  # fmt: skip
    assert HOSTILE.encode() in piped.stdout
    on_tty = _run_on_a_terminal([sys.executable, "-m", "ingest.cli", *base, "deadletter", "show",
                                 letter["id"], "--body"])  # fmt: skip
    assert b"pwned" in on_tty and b"\x1b]0;" not in on_tty and b"\x07" not in on_tty


def _run_on_a_terminal(argv: list[str]) -> bytes:
    """Run `argv` with stdout on a pseudo-terminal; what it wrote there."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWS_INGEST_", "REDIS_URL"))}
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=slave, stderr=subprocess.DEVNULL, env=env)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other side closed
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=60)
    os.close(master)
    return out


def test_feeds_export_with_control_characters_in_a_title(
    server: TestServer, r: redis.Redis, redis_url: str
) -> None:
    server.add("/f.json", pages.json_feed("Evil\x01Feed\x1b[31m\x0c", []),
               "application/feed+json")  # fmt: skip
    env = {"NEWS_INGEST_FETCH_ALLOW": server.allow}
    added = cli("--redis-url", redis_url, "feeds", "add", server.url("/f.json"), env=env)
    assert added.returncode == 0, added.stderr
    assert_clean(added.stdout)
    (fid,) = [x.decode() for x in r.smembers(KEYS.feeds)]
    assert r.hget(KEYS.feed(fid), "title") == b"Evil\x01Feed\x1b[31m\x0c"
    r.hset(KEYS.feed(fid), "tags", json.dumps(["a\x02b"]))

    out = cli("--redis-url", redis_url, "feeds", "export", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    root = etree.fromstring(out.stdout.encode())
    (outline,) = root.iter("outline")
    assert outline.get("title") == "EvilFeed[31m" and outline.get("category") == "ab"
    assert outline.get("xmlUrl") == server.url("/f.json")


def test_console_logs_show_escapes_in_values() -> None:
    """On a console (`--log-console`, a TTY), log values from outside are shown, not obeyed;
    JSON logs escape them as JSON does."""
    code = ("import sys, structlog; from ingest.core import logs; logs.configure('info', sys.argv[1] == 'json');"
            "structlog.get_logger('t').warning('article_failed', detail=sys.argv[2])")  # fmt: skip
    # structlog's console repr()s a value with white space (\r too) in it, not one without
    bare = "x\x1b]0;pwned\x07\x9b31m\u202e"
    for mode, value in (("console", bare), ("console", HOSTILE),
                        ("json", HOSTILE)):  # fmt: skip
        out = subprocess.run([sys.executable, "-c", code, mode, value], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert "pwned" in out.stderr, out.stderr
        # the console renderer colours with its own escapes; the attacker's must not pass
        for raw in ("\x1b]0;pwned", "\x07", "\rFORGED", "\x9b", "\u202e"):
            assert raw not in out.stderr, (mode, raw)
