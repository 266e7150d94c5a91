"""Titles, summaries and descriptions are text (entities decoded once, whitespace collapsed,
share-bar and "read more" debris gone), and every date is one ISO 8601 UTC form with a Z, to the
second: in the stream, in `extract` and in `explain`."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import jsonschema
import pytest
import redis

from tests import pages
from tests.conftest import ROOT, cli
from tests.helpers import poll, register, settings_for, work
from tests.server import TestServer
from workers.metadata import iso_date, text_field

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SCHEMA = json.loads((ROOT / "docs" / "article.schema.json").read_text())


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("Plugins &amp; Addons", "Plugins & Addons"),  # a feed that escaped its titles twice
        ("I&#039;m A Guest!", "I'm A Guest!"),
        ("Why you should write &amp;amp; in HTML", "Why you should write &amp; in HTML"),  # once
        ("AT&T buys a network", "AT&T buys a network"),  # no entity: nothing to decode
        ("  Tom &amp;\n  Jerry  ", "Tom &\nJerry"),
        ("Share this on WhatsApp Share on Facebook The council voted to close the bridge.",
         "The council voted to close the bridge."),
        ("Share: Facebook | Twitter | Email The council voted.", "The council voted."),
        ("Partager sur Facebook Le conseil a voté.", "Le conseil a voté."),
        ("The council voted to close the bridge. Read more »", "The council voted to close the bridge."),
        ("The council voted to close the bridge [&#8230;]", "The council voted to close the bridge"),
        ("Die Brücke wird gesperrt. Weiterlesen", "Die Brücke wird gesperrt."),
        ("The bridge closes. The post Bridge closes appeared first on Riverside Chronicle.",
         "The bridge closes."),
        ("Facebook, Twitter and others face EU fines", "Facebook, Twitter and others face EU fines"),
        ("Share prices fell on Monday", "Share prices fell on Monday"),
        ("", ""),
    ],
)  # fmt: skip
def test_text_field(raw: str, text: str) -> None:
    assert text_field(raw) == text


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2019-11-19T10:32:59.403Z", "2019-11-19T10:32:59Z"),
        ("2019-11-19T11:32:59+01:00", "2019-11-19T10:32:59Z"),
        ("2019-11-19T10:32:59+00:00", "2019-11-19T10:32:59Z"),
        ("Tue, 19 Nov 2019 10:32:59 GMT", "2019-11-19T10:32:59Z"),
        ("2019-11-19", "2019-11-19T00:00:00Z"),
        ("last Tuesday", None),
        ("", None),
    ],
)
def test_one_date_form(raw: str, iso: str | None) -> None:
    assert iso_date(raw) == iso


def story_page(title: str, date: str) -> str:
    body = pages.article_page(title, pages.paragraphs(pages.BOLIVIA), boilerplate=False)
    meta = (f'<meta property="article:published_time" content="{date}">'
            f'<meta property="og:description" content="Share on WhatsApp Share on Twitter '
            f'Three people died in Bolivia [&amp;#8230;]">')  # fmt: skip
    return body.replace("</head>", meta + "</head>")


def test_titles_summaries_and_dates_through_the_workers(server: TestServer, r: redis.Redis,
                                                        redis_url: str, tmp_path: Path) -> None:  # fmt: skip
    server.add("/a", story_page("Plugins & Addons", "2019-11-19T10:32:59.403Z"))
    # no feed date: the page's own (fractions of a second, an offset) is used
    feed = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>
<title>Riverside</title><link>http://127.0.0.1/</link><description>d</description>
<item><title>Plugins &amp;amp; Addons</title><link>{a}</link><guid>{a}</guid>
<description>Share this on WhatsApp Share on Facebook Three people died in Bolivia &amp;#8230;
Read more &amp;raquo;</description></item></channel></rss>""".format(a=server.url("/a"))
    server.add("/rss.xml", feed, "application/rss+xml")
    settings = settings_for(server).with_overrides(fetch={"timeout": 15, "connect_timeout": 10})
    register(r, server.url("/rss.xml"))
    poll(settings, r)
    assert work(settings, r) == ["published"]
    rec = json.loads(r.xrange("news:articles")[0][1][b"data"])
    jsonschema.validate(rec, SCHEMA)
    assert rec["title"] == "Plugins & Addons"
    assert rec["summary"] == "Three people died in Bolivia …"
    assert rec["published_at"] == "2019-11-19T10:32:59Z"
    assert ISO.match(rec["fetched_at"])

    page = tmp_path / "a.html.gz"
    page.write_bytes(gzip.compress(story_page("I&#039;m A Guest!", "2019-11-19T11:32:59+01:00")
                                   .encode()))  # fmt: skip
    out = cli("extract", str(page))
    assert out.returncode == 0, out.stderr[-2000:]
    shown = json.loads(out.stdout)
    assert shown["title"] == "I'm A Guest!"
    assert shown["published_at"] == "2019-11-19T10:32:59Z"
    assert shown["description"] == "Three people died in Bolivia"

    why = json.loads(cli("--redis-url", redis_url, "explain", server.url("/a")).stdout)
    assert ISO.match(why["trace"]["at"]) and ISO.match(why["trace"]["listed_at"])


def test_a_summary_is_decoded_once() -> None:
    from workers.record import summary_text

    assert summary_text("<p>Use &amp;amp; in HTML</p>") == "Use &amp; in HTML"  # lxml decoded
    assert summary_text("Use &amp;amp; in HTML") == "Use &amp; in HTML"  # no tags: decoded here
    assert summary_text("<p>Share on WhatsApp Tom &amp; Jerry</p><p>Read more</p>") == "Tom & Jerry"
