"""The balanced retry is gated (issue 19.3, 21.2): a short article inside heavy navigation is
published as its own short text, a page of chrome is never published, and a long story in the
same chrome is published whole. Through the real poller and workers."""

from __future__ import annotations

import json

import redis

from ingest.core.observe import read_trace
from ingest.core.urls import article_id
from tests import pages
from tests.helpers import KEYS, poll, register, settings_for, work
from tests.server import TestServer
from workers import extract

SECTIONS = ["World", "Politics", "Business", "Tech", "Science", "Health", "Sport", "Culture",
            "Opinion", "Video", "Podcasts", "Weather"]  # fmt: skip
TOWNS = ["Leeds", "Derby", "York", "Bath", "Hull", "Ely", "Ripon", "Wells", "Truro", "Exeter"]
PLANS = ["harbour", "bus", "school", "housing", "flood", "tram", "park", "bridge", "library", "fair"]
HEADLINES = [f"{t} council approves the new {p} plan after a long night of talks"
             for t, p in zip(TOWNS, PLANS, strict=True)]  # fmt: skip
SHORT = ("Crews on the island ferries called off Friday's strike after the operator agreed to "
         "restore the winter timetable and pay the overtime owed since March, the union said.")  # fmt: skip


def courier_page(title: str, body_html: str) -> str:
    """A news site's page as its CMS writes it: menus, a "Most read" box and a "More from"
    box of teasers around the story."""
    nav = "".join(f'<li><a href="/{s.lower()}">{s}</a></li>' for s in SECTIONS)
    most = "".join(f'<div class="teaser"><p><a href="/news/{i}">{h}</a></p></div>'
                   for i, h in enumerate(HEADLINES))  # fmt: skip
    more = "".join(f'<div class="teaser"><p><a href="/more/{i}">{h.replace("council", "mayor")}'
                   f"</a></p></div>" for i, h in enumerate(HEADLINES))  # fmt: skip
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{title} | The Courier</title></head><body><div class="page">
<div class="top"><a href="/subscribe">Subscribe</a> | <a href="/login">Sign in</a></div>
<div class="menu"><ul>{nav}</ul></div>
<div class="content"><h1>{title}</h1>
<div class="story">{body_html}</div>
<div class="box"><h2>Most read</h2>{most}</div>
<div class="box"><h2>More from The Courier</h2>{more}</div>
</div><div class="bottom"><ul>{nav}</ul></div></div></body></html>"""


def test_retry_that_finds_chrome_is_rejected() -> None:
    page = extract.from_page(courier_page("Ferry strike off", f"<p>{SHORT}</p>"), "http://x/a")
    assert page.text == SHORT and page.method == "trafilatura"
    assert page.quality["retry"] in ("rejected_links", "rejected_chrome")


def test_chrome_share_counts_menus_stubs_and_teasers() -> None:
    links = {"World", "Sign in", HEADLINES[0]}
    assert extract.chrome_share(f"World\nMost read\n{HEADLINES[0]}", links) == 1.0
    assert extract.chrome_share(SHORT, links) == 0.0
    verdict = extract.retry_verdict(f"{SHORT}\nWorld\nPolitics\nSport\nMost read\nSign in\n"
                                    "More from The Courier\nWeather", links, set())  # fmt: skip
    assert verdict == "taken"  # under half of the text: a story with a few stray menu lines


def test_short_articles_in_heavy_navigation_are_published(server: TestServer,
                                                          r: redis.Redis) -> None:  # fmt: skip
    long_story = pages.paragraphs(pages.WAR_REPORT)
    server.add("/news/ferry", courier_page("Ferry strike called off", f"<p>{SHORT}</p>"))
    # a section page: only menus and teasers, no story of its own
    server.add("/news/gallery", courier_page("In pictures", ""))
    # a long story in the same chrome: published whole, without the teasers
    notice = '<div class="notice"><p>This article is more than 2 years old.</p></div>'
    story_html = "".join(f'<div class="para"><span>{p}</span></div>' for p in long_story)
    server.add("/news/war", courier_page("Prisoners flown to Qatar", notice + story_html))
    feed = pages.rss("The Courier", [
        {"title": "Ferry strike called off", "link": server.url("/news/ferry"), "summary": SHORT},
        {"title": "In pictures", "link": server.url("/news/gallery")},
        {"title": "Prisoners flown to Qatar", "link": server.url("/news/war")},
    ])  # fmt: skip
    server.add("/rss.xml", feed, "application/rss+xml")
    settings = settings_for(server).with_overrides(fetch={"timeout": 15, "connect_timeout": 10})
    register(r, server.url("/rss.xml"))
    poll(settings, r)
    outcomes = work(settings, r)
    records = {json.loads(f[b"data"])["url"]: json.loads(f[b"data"])
               for _id, f in r.xrange("news:articles")}  # fmt: skip

    ferry = records[server.url("/news/ferry")]
    assert ferry["text"] == SHORT and ferry["extraction"]["method"] == "trafilatura"
    assert ferry["extraction"]["gate"] == "short"

    assert server.url("/news/gallery") not in records  # never navigation
    trace = read_trace(r, KEYS, article_id(server.url("/news/gallery")))
    assert trace["outcome"] == "not_article"

    war = records[server.url("/news/war")]
    for para in long_story:
        assert para.replace("\xad", "") in war["text"].replace("\xad", "")
    assert not any(h in war["text"] for h in HEADLINES)
    assert sorted(outcomes) == ["not_article", "published", "published"]


def test_a_short_body_holding_the_feeds_text_is_a_short_article() -> None:
    """The feed's summary is the same story plus its own debris: the page's short body wins."""
    page = extract.Extracted(text=SHORT, method="trafilatura", quality={"link_share": 0.0})
    feed = f"<p>Ferry strike called off</p><p>{SHORT}</p>"  # its headline, then the story
    chosen = extract.choose(page, feed, 250)
    assert (chosen.method, chosen.text, chosen.quality["gate"]) == ("trafilatura", SHORT, "short")
    other = extract.choose(extract.Extracted(text="Ferry news in brief.", method="trafilatura",
                                             quality={"link_share": 0.0}), feed, 250)  # fmt: skip
    assert other.method == "feed"  # a short body that is not the feed's story still yields
