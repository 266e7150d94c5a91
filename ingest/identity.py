"""Which item is which: the identity of feed items, per feed, degrading automatically.

Most feeds give each item a stable GUID. Some repeat one GUID for every item, some leave it out,
some point every item at the same link (a homepage). A feed's identity mode only ever degrades,
from `guid` to `link` (GUIDs shared by different links) to `link+title` (one link for different
titles), so a broken feed cannot make new stories look already seen. Unstable GUIDs (a new GUID
for the same link on every poll) need no mode: the link is always checked as well.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ingest.feedparse import FeedItem
from ingest.urls import article_id, short_hash

MODES = ("guid", "link", "link+title")


@dataclass
class Candidate:
    item: FeedItem
    link: str
    link_id: str  # article id of the link (of link+title in that mode)
    guid_hash: str  # the per-feed identity key
    identity: str  # "" or the title hash that makes items sharing a link distinct
    version: bytes = b""  # what the feed says about the item now (a change means: re-fetch)
    claim: str = ""  # the fetch-claim key: the link id, or link id + version for a changed item

    def __post_init__(self) -> None:
        self.version = self.version or item_version(self.item)
        self.claim = self.claim or self.link_id


@dataclass
class ItemsResult:
    mode: str = "guid"
    new: int = 0
    deferred_for: float = 0.0  # >0: some items wait for a busy host, poll again within this
    deferred: dict[str, int] = field(default_factory=dict)  # items left for later, by reason
    waiting: dict[str, FeedItem] = field(default_factory=dict)  # those items, by link id


def item_version(item: FeedItem) -> bytes:
    """4 bytes that change when the feed changes what it says about the item (a correction)."""
    text = "\x00".join((item.title, item.published_at or "", item.summary, item.content))
    return hashlib.blake2b(text.encode(), digest_size=4).digest()


def item_link(item: FeedItem) -> str:
    if item.link:
        return item.link
    return item.guid if item.guid.startswith(("http://", "https://")) else ""


def identity_mode(items: list[FeedItem], current: str = "guid") -> str:
    """The weakest mode this document needs, never stronger than the feed's current mode."""
    level = MODES.index(current) if current in MODES else 0
    links_by_guid: dict[str, set[str]] = {}
    titles_by_link: dict[str, set[str]] = {}
    for item in items:
        link = item_link(item)
        if item.guid and link:
            links_by_guid.setdefault(item.guid, set()).add(link)
        if link:
            titles_by_link.setdefault(link, set()).add(item.title.strip())
    if any(len(links) > 1 for links in links_by_guid.values()):
        level = max(level, 1)
    if any(len(titles) > 1 for titles in titles_by_link.values()):
        level = max(level, 2)
    return MODES[level]


def candidate(item: FeedItem, mode: str) -> Candidate | None:
    link = item_link(item)
    if not link:
        return None
    if mode == "link+title":
        suffix = short_hash(item.title.strip())[:12]
        key = link + "\x00" + item.title.strip()
        # The URL's own id would be shared; the title tells the items apart.
        return Candidate(item, link, short_hash(article_id(link) + suffix), short_hash(key), suffix)
    key = item.guid if (mode == "guid" and item.guid) else link
    return Candidate(item, link, article_id(link), short_hash(key), "")
