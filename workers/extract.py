"""Article body and metadata from a page, with the feed item as a fallback and a second opinion.

The ladder: trafilatura (precision settings, comments off, URL passed) -> the boilerplate
cleaner -> a gate on length; when the page yields too little, the feed's own full content or
summary is used instead. `extraction` in the record says which step won and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import lxml.html
import trafilatura
from lxml import etree

from workers.clean import clean


@dataclass
class Extracted:
    text: str = ""
    title: str = ""
    authors: list[str] = field(default_factory=list)
    date: str | None = None
    site_name: str = ""
    image: str = ""
    canonical_url: str = ""
    description: str = ""
    language: str = ""
    method: str = "none"
    quality: dict[str, Any] = field(default_factory=dict)


def from_page(html: str, url: str, include_tables: bool = True) -> Extracted:
    try:
        doc = trafilatura.bare_extraction(
            html,
            url=url,
            include_comments=False,
            favor_precision=True,
            include_tables=include_tables,
            with_metadata=True,
        )
    except (ValueError, etree.LxmlError, RecursionError):
        return Extracted()
    if doc is None:
        return Extracted()
    get = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    text, removed = clean(get.get("text") or "")
    authors = [a.strip() for a in (get.get("author") or "").split(";") if a.strip()]
    return Extracted(
        text=text,
        title=get.get("title") or "",
        authors=authors,
        date=get.get("date"),
        site_name=get.get("sitename") or "",
        image=get.get("image") or "",
        canonical_url=get.get("url") or "",
        description=get.get("description") or "",
        language=get.get("language") or "",
        method="trafilatura",
        quality={"removed": len(removed)},
    )


_FREE_FALSE = re.compile(r'"isAccessibleForFree"\s*:\s*"?false"?', re.I)
_WALL_MARK = re.compile(
    r'(?:class|id)\s*=\s*"[^"]*(?:paywall|regwall|piano-(?:offer|template)|subscriber-only|'
    r'premium-(?:wall|content-lock)|meter(?:ed)?-wall|article-locked)[^"]*"',
    re.I,
)


def paywall_signal(html: str) -> str:
    """Why the page looks paywalled ('' if it does not): schema.org's isAccessibleForFree=false,
    which publishers set for search engines, or the class names of common wall widgets."""
    if _FREE_FALSE.search(html):
        return "isAccessibleForFree=false"
    match = _WALL_MARK.search(html)
    return f"wall markup ({match.group(0)[:60]})" if match else ""


def html_to_text(fragment: str) -> str:
    """Feed content (HTML) to plain text with paragraph breaks."""
    if not fragment.strip():
        return ""
    if "<" not in fragment:
        return fragment.strip()
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return fragment.strip()
    for bad in root.xpath("//script|//style|//iframe|//form"):
        bad.drop_tree()
    for block in root.xpath("//p|//br|//div|//li|//h1|//h2|//h3|//h4|//blockquote"):
        block.tail = "\n" + (block.tail or "")
    text = root.text_content()
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def choose(page: Extracted, feed_html: str, min_chars: int) -> Extracted:
    """Pick the body: the page when it passes the gate, else the feed's content when richer."""
    feed_text, _ = clean(html_to_text(feed_html))
    page.quality.update(page_chars=len(page.text), feed_chars=len(feed_text))
    if page.quality.get("paywall") and len(page.text) < min_chars:
        if len(feed_text) >= min_chars:  # the feed carries what the wall hides
            page.text, page.method = feed_text, "feed"
            page.quality["gate"] = "paywall_feed"
        else:
            page.quality["gate"] = "paywall"
            page.quality["page_outcome"] = "paywall"
            page.text = ""  # a teaser is not the article
        return page
    if len(page.text) >= min_chars or len(page.text) >= len(feed_text):
        page.quality["gate"] = "pass" if len(page.text) >= min_chars else "short"
        return page
    page.text = feed_text
    page.method = "feed"
    page.quality["gate"] = "page_too_short" if page.quality["page_chars"] else "page_failed"
    return page


def extract_body(html: str, url: str | None = None) -> str:
    """The body text alone (the scorer's and `news-ingest extract`'s entry point)."""
    return from_page(html, url or "").text
