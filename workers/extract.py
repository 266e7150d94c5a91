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
from trafilatura.utils import load_html

from workers import metadata
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


RETRY_BELOW_CHARS = 500  # a precision extract this short may have cut the article: ask again


def _trafilatura(tree: Any, url: str, include_tables: bool, precision: bool) -> str:
    doc = trafilatura.bare_extraction(
        tree,
        url=url,
        include_comments=False,
        favor_precision=precision,
        include_tables=include_tables,
        with_metadata=False,
    )
    if doc is None:
        return ""
    get = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    return str(get.get("text") or "")


def from_page(html: str, url: str, include_tables: bool = True) -> Extracted:
    """The ladder's page steps. 1: trafilatura in precision mode, comments off, on a tree parsed
    once; metadata from what the page declares (workers.metadata), read before trafilatura
    prunes the tree. 2: when step 1 is short, trafilatura's balanced mode on a fresh tree, kept
    if it finds at least twice as much (precision mode sometimes keeps a notice and drops the
    story). The cleaner runs on whichever wins."""
    try:
        tree = load_html(html)
        if tree is None:
            return Extracted()
        meta = metadata.read(tree)
        raw = _trafilatura(tree, url, include_tables, precision=True)
        method = "trafilatura"
        if len(raw) < RETRY_BELOW_CHARS:
            second = load_html(html)
            wider = (
                _trafilatura(second, url, include_tables, precision=False)
                if second is not None
                else ""
            )
            if len(wider) >= 2 * max(len(raw), 1):
                raw, method = wider, "trafilatura_balanced"
    except (ValueError, etree.LxmlError, RecursionError):
        return Extracted()
    if not raw:
        return Extracted()
    text, removed = clean(raw)
    return Extracted(
        text=text,
        title=meta.title,
        authors=meta.authors,
        date=meta.date,
        site_name=meta.site_name,
        image=meta.image,
        canonical_url=meta.canonical_url,
        description=meta.description,
        language=meta.language,
        method=method,
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
