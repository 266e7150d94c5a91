"""`feeds add` checks before it registers: fetch the URL (through the same guard and limits as the
poller), parse it, and when it is an HTML page follow its feed autodiscovery link once."""

from __future__ import annotations

from dataclasses import dataclass

import lxml.html
from lxml import etree

from ingest.core import outcomes
from ingest.core.settings import FetchSettings
from ingest.feeds import feedparse
from ingest.net.fetch import Fetcher, classify_status

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json",
              "application/json", "application/rdf+xml")  # fmt: skip


@dataclass
class Probe:
    url: str  # the feed's URL (the discovered one when the given URL was a page)
    format: str  # feedparser's version string (rss20, atom10, ...) or json1
    title: str
    items: int
    language: str
    discovered_from: str = ""


def discover(html: bytes, base: str) -> list[str]:
    """Feed URLs a page announces with <link rel="alternate" type="application/rss+xml" ...>."""
    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return []
    found = []
    for link in root.xpath("//link[@href]"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").lower().split(";")[0].strip()
        if "alternate" in rel and kind in FEED_TYPES:
            url = feedparse.page_url(base, link.get("href"))  # http(s) only; `http://[::1` is ""
            if url:
                found.append(url)
    return list(dict.fromkeys(found))


async def probe(url: str, settings: FetchSettings, max_items: int = 200) -> Probe:
    """The feed at `url`; raises the FetchError outcome that stops it being one."""
    fetcher = Fetcher(settings, per_origin=2)
    try:
        resp = await fetcher.get(url)
        classify_status(resp)
        try:
            parsed = feedparse.parse(resp.body, resp.url, resp.content_type, max_items)
            return _result(resp.url, parsed)
        except outcomes.MalformedFeed:
            candidates = discover(resp.body, resp.url) if b"<" in resp.body[:2048] else []
            if not candidates:
                raise
        page = resp.url
        resp = await fetcher.get(candidates[0])
        classify_status(resp)
        parsed = feedparse.parse(resp.body, resp.url, resp.content_type, max_items)
        return _result(resp.url, parsed, discovered_from=page)
    finally:
        await fetcher.aclose()


def _result(url: str, parsed: feedparse.ParsedFeed, discovered_from: str = "") -> Probe:
    return Probe(url, parsed.format, parsed.title, len(parsed.items), parsed.language,
                 discovered_from)  # fmt: skip
