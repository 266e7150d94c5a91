"""Page metadata from what publishers declare for search engines and social cards.

`<link rel=canonical>`, OpenGraph, `<meta>` and schema.org JSON-LD say the canonical URL, title,
authors, date, site name and image of nearly every news page. Reading them is a few XPath
lookups; trafilatura's own metadata pass (with_metadata) also searches the whole page for dates
and costs about 40% of extraction time, most of which the feed item already tells us.
"""

from __future__ import annotations

import email.utils
import html
import json
import re
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from lxml import html as lxml_html

from ingest.core.timefmt import iso_utc

ARTICLE_TYPES = {
    "newsarticle",
    "article",
    "reportagenewsarticle",
    "blogposting",
    "analysisnewsarticle",
    "opinionnewsarticle",
    "webpage",
    "report",
}
DATE_METAS = (
    "article:published_time",
    "datepublished",
    "date",
    "pubdate",
    "publishdate",
    "dc.date.issued",
    "dc.date",
    "sailthru.date",
    "parsely-pub-date",
    "og:published_time",
    "article.published",
)


_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_NETWORKS = (r"(?:whatsapp|facebook|twitter|x|linkedin|e-?mail|messenger|pinterest|reddit"
             r"|telegram|bluesky|threads|print)")  # fmt: skip
_LEAD_DEBRIS = re.compile(
    rf"^(?:(?:share|partager|teilen)(?: this| cet| diesen)?(?: article| story| post| artikel)?"
    rf"(?: (?:on|via|with|sur|auf|per|über))? {_NETWORKS}\b|(?:share|partager|teilen)"
    rf"(?: this(?: article| story)?)?\s*[:|]|(?:{_NETWORKS}\s*[|,/·•]\s*){{2,}}{_NETWORKS}\b)"
    r"[\s:|,./·•…-]*",
    re.I,
)
_TAIL_DEBRIS = re.compile(
    r"(?:\s*(?:\[(?:…|\.\.\.)\]|(?:read more|continue reading|read the full (?:story|article)"
    r"|lire la suite|lire plus|weiterlesen|mehr lesen)\s*(?:[»›→…]|\.\.\.|&raquo;)?"
    r"|the post .{1,300}? appeared first on .{1,120}?\.?)\s*)$",
    re.I,
)


def text_field(value: str | None, decode: bool = True) -> str:
    """A title, summary or description as plain text: HTML entities decoded once (a feed that
    escaped its titles twice sends "Plugins &amp;amp; Addons"; one decoding gives the "&" it
    meant, and a literal "&amp;amp;" becomes "&amp;", not "&"), whitespace collapsed within
    lines, and share-bar ("Share on WhatsApp") and "Read more" / "[…]" / "The post … appeared
    first on …" debris taken off the ends. `decode=False` for a text an HTML parser has
    already decoded."""
    if not value:
        return ""
    text = html.unescape(value) if decode and _ENTITY.search(value) else value
    lines = [" ".join(line.split()) for line in text.replace("\u00a0", " ").splitlines()]
    text = "\n".join(line for line in lines if line)
    for _ in range(4):  # a share bar is several debris runs in a row
        trimmed = _TAIL_DEBRIS.sub("", _LEAD_DEBRIS.sub("", text)).strip()
        if trimmed == text:
            break
        text = trimmed
    return text


def iso_date(value: str | None) -> str | None:
    """A page's declared date in the one form the service prints everywhere (the stream,
    `extract`, `explain`): ISO 8601 in UTC to the second with a `Z`, "2019-11-19T10:00:00Z".
    Takes ISO forms (fractions, offsets) and the RFC 2822 dates some CMSs put in their metas;
    None when unreadable (a date without a zone is taken as UTC)."""
    if not value or not value.strip():
        return None
    iso = iso_utc(value.strip())
    if iso:
        return iso
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return iso_utc(when.astimezone(UTC).isoformat())


@dataclass
class PageMeta:
    canonical_url: str = ""
    title: str = ""
    authors: list[str] = field(default_factory=list)
    date: str | None = None
    site_name: str = ""
    image: str = ""
    description: str = ""
    language: str = ""


def _metas(tree: lxml_html.HtmlElement) -> dict[str, str]:
    """First value of each <meta> by lower-cased property/name/itemprop."""
    out: dict[str, str] = {}
    for meta in tree.iter("meta"):
        key = meta.get("property") or meta.get("name") or meta.get("itemprop")
        value = meta.get("content")
        if key and value and value.strip():
            out.setdefault(key.strip().lower(), value.strip())
    return out


def _json_ld(tree: lxml_html.HtmlElement) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        try:
            data = json.loads(script.text or "")
        except (ValueError, TypeError):
            continue  # broken JSON-LD is common; it is only a hint
        stack = data if isinstance(data, list) else [data]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict):
                stack.extend(v for k, v in node.items() if k == "@graph")
                kinds = node.get("@type")
                kinds = kinds if isinstance(kinds, list) else [kinds]
                if any(isinstance(k, str) and k.lower() in ARTICLE_TYPES for k in kinds):
                    found.append(node)
    return found


def _names(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    names = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str) and name.strip() and not name.startswith("http"):
            names.append(name.strip())
    return names


def _first_str(*values: Any) -> str:
    for value in values:
        if isinstance(value, dict):
            value = value.get("url") or value.get("name")
        if isinstance(value, list) and value:
            value = value[0]
            if isinstance(value, dict):
                value = value.get("url")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def read(tree: lxml_html.HtmlElement) -> PageMeta:
    metas = _metas(tree)
    ld = _json_ld(tree)
    art: dict[str, Any] = ld[0] if ld else {}
    canonical = ""
    for link in tree.xpath('//link[@rel="canonical"][@href]'):
        canonical = link.get("href", "").strip()
        break
    authors = _names(art.get("author")) or [
        a.strip() for a in metas.get("author", "").split(",") if a.strip()
    ]
    date = art.get("datePublished") if isinstance(art.get("datePublished"), str) else None
    if not date:
        date = next((metas[k] for k in DATE_METAS if k in metas), None)
    if not date:
        times = tree.xpath("//time[@datetime]/@datetime")
        date = str(times[0]) if times else None
    titles = tree.xpath("//title/text()")
    return PageMeta(
        canonical_url=canonical or metas.get("og:url", ""),
        title=text_field(_first_str(
            metas.get("og:title"),
            art.get("headline"),
            metas.get("twitter:title"),
            titles[0] if titles else "",
        )),
        authors=authors[:10],
        date=iso_date(date),
        site_name=_first_str(
            metas.get("og:site_name"), art.get("publisher"), metas.get("application-name")
        ),
        image=_first_str(metas.get("og:image"), metas.get("twitter:image"), art.get("image")),
        description=text_field(
            _first_str(metas.get("og:description"), metas.get("description"))
        ),
        language=(tree.get("lang") or metas.get("og:locale", "")).replace("_", "-")[:12],
    )
