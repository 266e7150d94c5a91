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

from ingest.core import bodies
from ingest.core.job import ArticleJob
from workers import limits, metadata
from workers.clean import clean
from workers.decode import decode


@dataclass
class Extracted(metadata.PageMeta):
    """What the page declares (title, authors, date...) and the body extracted from it."""

    text: str = ""
    method: str = "none"
    quality: dict[str, Any] = field(default_factory=dict)


RETRY_BELOW_CHARS = 500  # a precision extract this short may have cut the article: ask again


def _trafilatura(tree: Any, url: str, include_tables: bool, precision: bool) -> str:
    # Both passes run without trafilatura's fallback extractors (readability, jusText): they are
    # a third of its time, and on the benchmark pages they changed no score in either pass
    # (F1 0.971 with or without them in the balanced retry; docs/benchmarks.md).
    doc = trafilatura.bare_extraction(
        tree,
        url=url,
        include_comments=False,
        fast=True,
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
        links = link_texts(tree)
        anchors = {text for text in links if len(text) >= 12}
        raw = _trafilatura(tree, url, include_tables, precision=True)
        method = "trafilatura"
        retry = ""
        if len(raw) < RETRY_BELOW_CHARS:
            second = load_html(html)
            wider = (
                _trafilatura(second, url, include_tables, precision=False)
                if second is not None
                else ""
            )
            if len(wider) >= 2 * max(len(raw), 1):
                retry = retry_verdict(wider, links, anchors)
                if retry == "taken":
                    raw, method = wider, "trafilatura_balanced"
    except (ValueError, etree.LxmlError, RecursionError):
        return Extracted()
    if not raw:
        if retry.startswith("rejected"):  # nothing but the chrome the retry found: an index page
            share = max(link_share(wider, anchors), chrome_share(wider, links))
            return Extracted(**vars(meta), quality={"retry": retry, "link_share": round(share, 2)})
        return Extracted()
    text, removed = clean(raw, links=links, title=meta.title)
    quality: dict[str, Any] = {"removed": len(removed),
                               "link_share": round(link_share(text, anchors), 2)}  # fmt: skip
    if retry:
        quality["retry"] = retry
    return Extracted(**vars(meta), text=text, method=method, quality=quality)


CHROME_LIMIT = 0.5  # more of a retry's text than this in link texts and stubs: the page's chrome
STUB_WORDS = 3  # a line of at most this many words is a section name or a menu entry, not prose


def chrome_share(text: str, links: set[str]) -> float:
    """Share of the text's characters in lines that are any link text of the page (menus, "most
    read" teasers) or stubs of at most STUB_WORDS words (section names, "Sign in")."""
    lines = [" ".join(ln.split()) for ln in text.splitlines() if ln.strip()]
    total = sum(len(ln) for ln in lines)
    if not total:
        return 0.0
    chrome = sum(len(ln) for ln in lines if ln in links or len(ln.split()) <= STUB_WORDS)
    return chrome / total


def retry_verdict(wider: str, links: set[str], anchors: set[str]) -> str:
    """Whether the balanced retry's text may replace the precision pass's: "taken", or why not.
    A retry that is mostly menus, section names and teaser links found the page's chrome, not
    a longer article (precision mode's short text is then the article, or nothing is)."""
    if link_share(wider, anchors) > LINK_LIMIT:
        return "rejected_links"
    if chrome_share(wider, links) > CHROME_LIMIT:
        return "rejected_chrome"
    return "taken"


_FREE_FALSE = re.compile(rb'"isAccessibleForFree"\s*:\s*"?false"?', re.I)
WALL_WORDS = (b"paywall", b"regwall", b"piano-offer", b"piano-template", b"subscriber-only",
              b"premium-wall", b"premium-content-lock", b"meter-wall", b"metered-wall",
              b"article-locked")  # fmt: skip


# One scan per shared root instead of one per marker (five "...wall" markers, one scan of the
# page for "wall"): each scan of a 140 KB page costs about 50 us.
_ROOTS = (b"wall", b"piano-", b"subscriber-only", b"content-lock", b"article-locked")
_ROOT_OF = {w: next(r for r in _ROOTS if r in w) for w in WALL_WORDS}


def _in_class_or_id(html: bytes, at: int) -> bool:
    """Is position `at` inside a class="..." or id="..." attribute value?"""
    quote = html.rfind(b'"', max(0, at - 200), at)
    if quote < 0 or any(c in html[quote + 1 : at] for c in b"<>"):
        return False
    head = html[max(0, quote - 20) : quote].rstrip()
    return head.endswith(b"=") and head[:-1].rstrip().lower().endswith((b"class", b"id"))


def paywall_signal(page: bytes | str) -> str:
    """Why the page looks paywalled ('' if it does not): schema.org's isAccessibleForFree=false,
    which publishers set for search engines, or the class names of common wall widgets.
    Scans the raw bytes: every marker is ASCII, and bytes lower-case and search ten times
    faster than a decoded page."""
    raw = page.encode("utf-8", "replace") if isinstance(page, str) else page
    if b"isAccessibleForFree" in raw and _FREE_FALSE.search(raw):
        return "isAccessibleForFree=false"
    low = raw.lower()
    roots = {root for root in _ROOTS if root in low}
    for word in WALL_WORDS:  # literal scans (fast), then a local look at the context
        if _ROOT_OF[word] not in roots:
            continue
        at = low.find(word)
        while at >= 0:
            if _in_class_or_id(low, at):
                return f"wall markup ({word.decode()})"
            at = low.find(word, at + len(word))
    return ""


def html_to_text(fragment: str) -> str:
    """Feed content (HTML) to plain text with paragraph breaks."""
    if not fragment.strip():
        return ""
    if "<" not in fragment:
        return fragment.strip()
    try:
        root = lxml.html.fragment_fromstring(limits.bounded_html(fragment), create_parent="div")
    except (etree.ParserError, ValueError):
        return fragment.strip()
    for bad in root.xpath("//script|//style|//iframe|//form"):
        bad.drop_tree()
    for block in root.xpath("//p|//br|//div|//li|//h1|//h2|//h3|//h4|//blockquote"):
        block.tail = "\n" + (block.tail or "")
    text = root.text_content()
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def link_texts(tree: Any) -> set[str]:
    """Every link text of the page, whitespace collapsed (read before trafilatura prunes)."""
    out = set()
    for a in tree.iter("a"):
        text = " ".join((a.text_content() or "").split())
        if text:
            out.add(text)
    return out


def anchor_texts(tree: Any) -> set[str]:
    """The page's link texts long enough to be headlines (read before trafilatura prunes)."""
    return {text for text in link_texts(tree) if len(text) >= 12}


def link_share(text: str, anchors: set[str]) -> float:
    """Share of the body's characters in lines that are link texts of the page: an index page,
    gallery or ticker extracted as if it were one article is mostly its teasers' links."""
    lines = [" ".join(ln.split()) for ln in text.splitlines() if ln.strip()]
    total = sum(len(ln) for ln in lines)
    if not total or not anchors:
        return 0.0
    return sum(len(ln) for ln in lines if ln in anchors) / total


def feed_overlap(page_text: str, feed_text: str) -> float | None:
    """How much of the feed's own words the page body contains (None when the feed says too
    little to judge): a wrong body (another story, a cookie wall) shares almost none."""
    feed_words = {w for w in words_of(feed_text) if len(w) > 3}
    if len(feed_words) < 8:
        return None
    page_words = set(words_of(page_text))
    return len(feed_words & page_words) / len(feed_words)


def words_of(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


LINK_LIMIT = 0.5  # more of the body in link texts than this: an index page, not an article
OVERLAP_FLOOR = 0.2  # the page shares less of the feed's words than this: not this story
CONTAINS_FEED = 0.9  # the page holds this much of the feed's words: the same story, however short


def choose(page: Extracted, feed_html: str, min_chars: int) -> Extracted:
    """The ladder's gate and last step: keep the page's body when it passes, else the feed's.

    Scores (recorded in `extraction`): page and feed lengths, the share of the body that is the
    page's own link texts (index pages), the overlap with the feed's own words. A page that fails because it is an index page and a
    feed with nothing to offer give `not_article`, never a glued-together body."""
    feed_text, _ = clean(html_to_text(feed_html))
    links = float(page.quality.get("link_share", 0.0))
    overlap = feed_overlap(page.text, feed_text) if page.text else None
    page.quality.update(page_chars=len(page.text), feed_chars=len(feed_text),
                        feed_overlap=None if overlap is None else round(overlap, 2))  # fmt: skip
    feed_usable = len(feed_text) >= min_chars
    if page.quality.get("paywall") and len(page.text) < min_chars:
        if feed_usable:  # the feed carries what the wall hides
            page.text, page.method = feed_text, "feed"
            page.quality["gate"] = "paywall_feed"
        else:
            page.quality["gate"] = "paywall"
            page.quality["page_outcome"] = "paywall"
            page.text = ""  # a teaser is not the article
        return page
    failed = ""
    if links > LINK_LIMIT:
        failed = "index_page"
    elif overlap is not None and overlap < OVERLAP_FLOOR and feed_usable:
        failed = "off_topic"
    elif len(page.text) < min_chars and len(page.text) < len(feed_text) and not (
        overlap is not None and overlap >= CONTAINS_FEED
    ):  # a short body holding the feed's own text is a short article, not a failed page
        failed = "page_too_short" if page.text else "page_failed"
    if not failed:
        page.quality["gate"] = "pass" if len(page.text) >= min_chars else "short"
        return page
    page.quality["gate"] = failed
    if feed_text and (feed_usable or failed in ("page_too_short", "page_failed")):
        page.text, page.method = feed_text, "feed"
    elif failed == "index_page":
        page.quality["page_outcome"] = "not_article"
        page.text = ""
    return page


def extract_body(html: str, url: str | None = None) -> str:
    """The body text alone (the scorer's and `news-ingest extract`'s entry point)."""
    return from_page(html, url or "").text


HTML_TYPES = ("html", "xml", "text/plain")
PAGE_STEPS = ("trafilatura", "trafilatura_balanced")  # the methods that took the body from the page


def extract_payload(
    payload: ArticleJob, min_chars: int, include_tables: bool = True,
    max_tags: int = 0, cpu_s: float = 0,
) -> Extracted:  # fmt: skip
    page = payload["page"]
    item = payload["item"]
    ex = Extracted()
    try:
        packed = page.get("html_z")
        body = bodies.unpack(packed) if packed else b""
    except bodies.Unreadable:  # the feed's own content still makes the article
        body, page["outcome"] = b"", "body_unreadable"
    ctype = (page.get("content_type") or "").lower()
    if body and (not ctype or any(t in ctype for t in HTML_TYPES)):
        try:  # workers/limits.py: a page too costly to extract is `too_complex`
            limits.check_markup(body, max_tags)
            with limits.cpu_limit(cpu_s):
                html, charset = decode(body, ctype)
                ex = from_page(html, page["url"], include_tables)
            ex.quality["charset"] = charset
        except limits.TooComplex as exc:
            ex = Extracted(quality={"page_outcome": "too_complex"})
            page["error"] = page.get("error") or str(exc)
        wall = paywall_signal(body)
        if wall:
            ex.quality["paywall"] = wall
    elif body:
        ex.quality["page_outcome"] = "not_html"
    if page.get("outcome", "ok") != "ok":
        ex.quality["page_outcome"] = page["outcome"]
    return choose(ex, item.get("content") or item.get("summary") or "", min_chars)
