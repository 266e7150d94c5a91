"""Feed lists on disk: our YAML format and OPML (nested outlines; folders become tags).

One bad entry (not an http(s) URL, an unparseable one such as `http://[::1`) is skipped with a
warning and the rest of the list is kept; a list with no usable entry at all is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog
import yaml
from lxml import etree

from ingest.core.escape import xml_text
from ingest.core.urls import feed_id

log = structlog.get_logger("ingest.feeds.feedlist")


class FeedListError(ValueError):
    pass


@dataclass
class FeedSpec:
    url: str
    title: str = ""
    tags: list[str] = field(default_factory=list)
    language: str = ""
    topic: str = ""  # a configured IPTC code: a prior for the classifier

    @property
    def id(self) -> str:
        return feed_id(self.url)


def one_line(text: str) -> str:
    return " ".join(text.split())


def check_url(url: Any, where: str) -> str:
    try:
        parts = urlsplit(url.strip()) if isinstance(url, str) else None
        ok = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port if parts is not None else None  # a port that is not one raises
    except ValueError:  # `http://[::1`, `http://h:99999/`
        ok = False
    if not ok:
        raise FeedListError(f"{where}: not an http(s) URL: {url!r}")
    return str(url).strip()


def _skipped(specs: list[FeedSpec], errors: list[str], name: str) -> list[FeedSpec]:
    """The list without its bad entries, each logged; an error when nothing usable is left."""
    for error in errors:
        log.warning("feed_list_entry_skipped", stage="feeds", outcome="bad_url", error=error)
    if errors and not specs:
        raise FeedListError(
            errors[0] if len(errors) == 1 else f"{name}: no usable feed ({errors[0]}, ...)"
        )
    return specs


def load(path: str | Path) -> list[FeedSpec]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FeedListError(f"cannot read {path}: {exc}") from exc
    head = data.lstrip()[:200].lower()
    if path.suffix.lower() in (".opml", ".xml") or head.startswith(b"<?xml") or b"<opml" in head:
        return load_opml(data, str(path))
    return load_yaml(data, str(path))


def load_yaml(data: bytes, name: str = "feeds.yaml") -> list[FeedSpec]:
    try:
        doc = yaml.safe_load(data) or {}
    except yaml.YAMLError as exc:
        raise FeedListError(f"{name}: invalid YAML: {exc}") from exc
    entries = doc.get("feeds", []) if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise FeedListError(f"{name}: expected a list under 'feeds'")
    specs: list[FeedSpec] = []
    errors: list[str] = []
    for n, entry in enumerate(entries, 1):
        where = f"{name}: feed #{n}"
        if isinstance(entry, str):
            entry = {"url": entry}
        if not isinstance(entry, dict):
            errors.append(f"{where}: expected a mapping or a URL")
            continue
        try:
            url = check_url(entry.get("url"), where)
        except FeedListError as exc:
            errors.append(str(exc))
            continue
        tags = entry.get("tags") or []
        specs.append(
            FeedSpec(
                url=url,
                title=str(entry.get("title") or ""),
                tags=[str(t) for t in tags] if isinstance(tags, list) else [str(tags)],
                language=str(entry.get("language") or ""),
                topic=str(entry.get("topic") or ""),
            )
        )
    return _skipped(specs, errors, name)


def load_opml(data: bytes, name: str = "feeds.opml") -> list[FeedSpec]:
    """An OPML file's feeds. Refused whole (FeedListError) when it declares entities (a billion
    laughs was read as "0 feeds") or is not well-formed: lxml's recovery mode silently cut
    `xmlUrl="http://a/&bogus;"` down to `http://a/`, a feed nobody asked for, so a URL is only
    ever read from a document parsed without recovery (tests/test_found.py)."""
    from ingest.feeds.feedparse import declares_entities  # feedparser: not on every CLI start

    if declares_entities(data):
        raise FeedListError(f"{name}: the document type declares entities (refused: entity expansion)")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise FeedListError(f"{name}: invalid OPML: {one_line(str(exc))}") from exc
    if root is None or root.find("body") is None:
        raise FeedListError(f"{name}: no OPML <body>")
    specs: list[FeedSpec] = []
    errors: list[str] = []

    def walk(node: Any, folders: list[str]) -> None:
        for outline in node.findall("outline"):
            url = outline.get("xmlUrl") or outline.get("xmlurl")
            label = outline.get("title") or outline.get("text") or ""
            if url:
                try:
                    checked = check_url(url, name)
                except FeedListError as exc:
                    errors.append(str(exc))  # one bad outline does not sink the list
                    continue
                cats = [c.strip(" /") for c in (outline.get("category") or "").split(",")]
                specs.append(
                    FeedSpec(
                        url=checked,
                        title=label,
                        tags=folders + [c for c in cats if c],
                        language=outline.get("language") or "",
                    )
                )
            walk(outline, folders + ([label] if not url and label else []))

    walk(root.find("body"), [])
    return _skipped(specs, errors, name)


def dump_opml(specs: list[FeedSpec]) -> str:
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = "news-ingest feeds"
    body = etree.SubElement(root, "body")
    for spec in specs:
        attrs = {"type": "rss", "text": spec.title or spec.url, "xmlUrl": spec.url}
        if spec.title:
            attrs["title"] = spec.title
        if spec.tags:
            attrs["category"] = ",".join(spec.tags)
        # titles and tags come from feeds: drop what XML cannot hold (lxml raises on it)
        etree.SubElement(body, "outline", {k: xml_text(str(v)) for k, v in attrs.items()})
    data: bytes = etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")
    return data.decode()
