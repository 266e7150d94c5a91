"""Feed documents to items: RSS 0.9x/1.0/2.0 and Atom through feedparser, JSON Feed by our adapter.

Both paths produce the same `FeedItem`, so everything after parsing is format-blind. feedparser
never resolves external entities (its SAX parser has external general entities off), and a
document it cannot read at all is `malformed_feed`, not an exception.

Hostile documents (docs/security.md): feedparser is only ever handed a file-like object of the
bytes we fetched (given bytes or str it opens them as a path or fetches them as a URL when they
look like one); a DTD that declares entities is refused before any parser sees it (no real feed
needs one, and nested internal entities expand to hundreds of MB or GB within expat's ratio
limit: tests/test_hostile.py::test_nested_entities_are_refused_with_bounded_memory); item
links are http(s) or nothing, in every format, before any id is derived from them.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from feedparser.mixin import _FeedParserMixin as _Mixin

from ingest.core import timefmt
from ingest.core.outcomes import MalformedFeed
from ingest.core.urls import without_userinfo

# An item's GUID as the feed wrote it: feedparser resolves a permalink GUID (the RSS default)
# or an Atom id against the document's URL, so `<guid>bad1</guid>` came out as http://host/bad1,
# an identifier nobody wrote. Taken off its list of relative URIs (both of its parsers read
# it); a GUID standing in for a missing link is still made absolute, by `page_url` below
# (tests/test_found.py::test_an_rss_guid_is_kept_as_the_feed_wrote_it).
_Mixin.can_be_relative_uri = (
    _Mixin.can_be_relative_uri - {"id"}
)


@dataclass
class FeedItem:
    guid: str = ""
    link: str = ""
    title: str = ""
    authors: list[str] = field(default_factory=list)
    published_at: str | None = None
    tags: list[str] = field(default_factory=list)
    summary: str = ""
    content: str = ""  # full content (content:encoded, Atom content, content_html), HTML
    image: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ParsedFeed:
    title: str = ""
    link: str = ""
    language: str = ""
    ttl_minutes: float | None = None
    items: list[FeedItem] = field(default_factory=list)
    format: str = ""
    bozo: str = ""  # a recoverable problem feedparser noticed




def _lang(value: Any) -> str:
    return str(value or "").replace("_", "-").split("-")[0].strip().lower()[:3]


def looks_like_json(body: bytes, content_type: str) -> bool:
    return "json" in content_type.lower() or body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


_DOCTYPE = re.compile(rb"<!DOCTYPE", re.I)
_ENTITY = re.compile(rb"<!ENTITY", re.I)


def declares_entities(body: bytes) -> bool:
    """Does the document carry a DTD that declares entities (general or parameter)?

    Searched from the DOCTYPE to the end, not just to the apparent end of the internal subset:
    an entity value, comment or processing instruction in it may contain `]>` or `<p`. The price:
    a feed with a DOCTYPE *and* the literal text `<!ENTITY` in a CDATA section is refused too
    (rare; the safe side). UTF-16/32 documents are searched with their zero bytes taken out (the
    markup is ASCII); every ASCII-compatible charset spells it as is."""
    if b"\x00" in body[:4]:
        body = body.replace(b"\x00", b"")
    doctype = _DOCTYPE.search(body)
    return doctype is not None and _ENTITY.search(body, doctype.end()) is not None


def page_url(base: str, link: str) -> str:
    """An item's link made absolute, when it is an http(s) URL with a host; else "".

    Decided before any id is derived: a `x://host/path` must not become the scheme-blind id of
    `http://host/path` (a refusal stored under it would censor that story for every feed)."""
    link = link.strip()
    if not link:
        return ""
    try:
        absolute = urljoin(base, link)
        parts = urlsplit(absolute)
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # raises on a port that is not a number or out of range
    except ValueError:  # `http://[::1`, bad ports: not a URL we could fetch
        return ""
    return absolute if ok else ""


def _base(url: str, link: Any) -> str:
    try:
        return urljoin(url, str(link or "")) or url
    except ValueError:
        return url


def parse(body: bytes, url: str = "", content_type: str = "", max_items: int = 200) -> ParsedFeed:
    """`url`: the document's location, the base of relative links. Its user info (a private
    feed's password) is left out: the credentials are the feed's, not its articles' (they would
    be sent to every page and shown in every record, tests/test_credentials.py)."""
    url = without_userinfo(url)
    if not body.strip():
        raise MalformedFeed("empty document", url=url)
    try:
        if looks_like_json(body, content_type):
            return parse_json_feed(body, url, max_items)
        return parse_xml_feed(body, url, content_type, max_items)
    except RecursionError as exc:  # JSON nested thousands deep, and any parser's twin of it
        raise MalformedFeed("document nested too deeply", url=url) from exc


def parse_xml_feed(body: bytes, url: str, content_type: str, max_items: int) -> ParsedFeed:
    headers = {"content-type": content_type} if content_type else {}
    if declares_entities(body):
        raise MalformedFeed("the document type declares entities (refused: entity expansion)",
                            url=url)  # fmt: skip
    if url:
        # The document's own location is the base for relative links (RFC 4287 / RFC 3986):
        # feedparser resolves every link against xml:base where given, else against this.
        headers["content-location"] = url
    try:
        # A stream, never the bytes: feedparser opens bytes that name a file as that file.
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=False)
    except Exception as exc:  # feedparser is robust, but a parser bug must not kill a poll
        raise MalformedFeed(f"feedparser failed: {exc}", url=url) from exc
    version = parsed.get("version", "")
    entries = parsed.get("entries", [])
    if not version and not entries:
        reason = str(parsed.get("bozo_exception", "")) or "not a feed"
        head = body[:512].lower()
        if b"<html" in head or b"<!doctype html" in head:
            reason = "an HTML page where a feed was expected"
        raise MalformedFeed(reason, url=url)
    feed = parsed.get("feed", {})
    # Never the feed's home link: `<link href="blog/"/>` with entries `blog/2013/...` would
    # resolve to blog/blog/2013/... (tests/test_identity.py::test_relative_links_resolve_...).
    items = [_xml_item(entry, url) for entry in entries[:max_items]]
    ttl = feed.get("ttl")
    return ParsedFeed(
        title=feed.get("title", ""),
        link=feed.get("link", ""),
        language=_lang(feed.get("language")),
        ttl_minutes=float(ttl) if isinstance(ttl, str) and ttl.strip().isdigit() else None,
        items=items,
        format=version or "unknown",
        bozo=str(parsed.get("bozo_exception", "")) if parsed.get("bozo") else "",
    )


def _xml_item(entry: Any, base: str) -> FeedItem:
    link = entry.get("link", "") or ""
    if not link:
        for candidate in entry.get("links", []):
            if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
                link = candidate["href"]
                break
    link = page_url(base, str(link))  # tag: URIs and the like are identifiers, not pages
    contents = entry.get("content") or []
    content = max((c.get("value", "") for c in contents), key=len, default="")
    authors = [a.get("name", "") for a in entry.get("authors", []) if a.get("name")]
    if not authors and entry.get("author"):
        authors = [entry["author"]]
    image = ""
    for media in entry.get("media_content", []) + entry.get("media_thumbnail", []):
        if media.get("url"):
            image = media["url"]
            break
    return FeedItem(
        guid=(entry.get("id") or entry.get("guid") or "").strip(),
        link=link,
        title=(entry.get("title") or "").strip(),
        authors=authors,
        published_at=timefmt.from_struct(entry.get("published_parsed") or entry.get("updated_parsed")),
        tags=[t.get("term", "") for t in entry.get("tags", []) if t.get("term")],
        summary=entry.get("summary", "") or "",
        content=content,
        image=image,
    )


def parse_json_feed(body: bytes, url: str, max_items: int) -> ParsedFeed:
    """JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1). A field of the wrong JSON type
    is absent, never its Python repr: `"title": {"x": 1}` is no title (it was "{'x': 1}"),
    `"url": 12345` no link (it was http://host/12345); only an item's `id` is coerced from a
    number, as the specification asks (tests/test_found.py, tests/test_properties.py)."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except RecursionError as exc:  # arrays nested thousands deep
        raise MalformedFeed("invalid JSON: nested too deeply", url=url) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedFeed(f"invalid JSON: {exc}", url=url) from exc
    if not isinstance(doc, dict) or not _text(doc.get("version")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise MalformedFeed("JSON document is not a JSON Feed", url=url)
    raw_items = doc.get("items")
    if not isinstance(raw_items, list):
        raise MalformedFeed("JSON Feed without an items list", url=url)
    # home_page_url is the site, not a base: relative item URLs resolve against the document.
    items = [_json_item(it, url) for it in raw_items[:max_items] if isinstance(it, dict)]
    return ParsedFeed(
        title=_text(doc.get("title")),
        link=_base(url, _text(doc.get("home_page_url"))),
        language=_lang(_text(doc.get("language"))),
        items=items,
        format="json" + _text(doc["version"]).rsplit("/", 1)[-1],
    )


def _text(obj: Any) -> str:
    """A JSON string as is; any other type (object, list, number, boolean, null) is absent."""
    return obj if isinstance(obj, str) else ""


def _json_id(obj: Any) -> str:
    """JSON Feed 1.1: an id given as a number must be coerced to a string; nothing else is."""
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return str(obj)
    return _text(obj)


def _list(obj: Any) -> list[Any]:
    return obj if isinstance(obj, list) else []


def _names(obj: Any) -> list[str]:
    name = _text(obj.get("name")) if isinstance(obj, dict) else ""
    return [name] if name else []


def _json_item(item: dict[str, Any], base: str) -> FeedItem:
    link = page_url(base, _text(item.get("url")) or _text(item.get("external_url")))
    authors: list[str] = []
    for author in _list(item.get("authors")):
        authors += _names(author)
    authors = authors or _names(item.get("author"))
    html = _text(item.get("content_html"))
    text = _text(item.get("content_text"))
    date = _text(item.get("date_published")) or _text(item.get("date_modified"))
    return FeedItem(
        guid=_json_id(item.get("id")),
        link=link,
        title=_text(item.get("title")),
        authors=authors,
        published_at=timefmt.iso_utc(date) if date else None,
        tags=[t for t in _list(item.get("tags")) if isinstance(t, str) and t],
        summary=_text(item.get("summary")),
        content=html or text,
        image=_text(item.get("image")) or _text(item.get("banner_image")),
    )
