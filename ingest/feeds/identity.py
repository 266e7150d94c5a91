"""Which item is which: the identity of feed items, per feed, degrading automatically.

Most feeds give each item a stable GUID. Some repeat one GUID for every item, some leave it out,
some point several items at the same link (a homepage, a sponsor post and its "[Sponsor]" twin).
A feed's identity mode only ever degrades, from `guid` to `link` (GUIDs shared by different
links), so a broken feed cannot make new stories look already seen. Unstable GUIDs (a new GUID
for the same link on every poll) need no mode: the link is always checked as well.

Links shared by items of different titles are handled per link, not per feed: only the items
of such a link are told apart by their title (and their page is not fetched: it is not their
story); every other item of the feed is fetched as usual. Their per-feed key stays the GUID when
it is unique in the document, so an item keeps its identity when its twin leaves the feed.

Posts that are anchors of one page (a weblog's day page: `2017/06/24.html#a100601`,
`…#a040606`): the URL without its fragment is one article id for all of them, so without care
every post after the first of a day would be taken for the first. A page whose items point at
two or more of its fragments is handled like a shared link: its items are told apart by
fragment and title, their page is not fetched (it is the whole day, no one post's story), and
each is published from its feed text (tests/test_identity.py).

Feed furniture: lines that recur across a feed's items (a "Thank you for reading via RSS" footer,
a shared intro paragraph) say nothing about the story; `furniture` lists their keys so the
worker fingerprints the story without them (tests/test_identity.py).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections import Counter
from dataclasses import dataclass

from ingest.core.lines import line_key
from ingest.core.urls import article_id, short_hash
from ingest.feeds.feedparse import FeedItem, page_url

# link+title: the feed-wide mode of earlier releases, never entered now; a feed stored in it
# keeps link+title as its per-feed key (its marks were written so), its links fetched per link.
MODES = ("guid", "link", "link+title")
FURNITURE_MAX = 64  # recurring-line keys sent with each item (a feed's template is a few lines)
FURNITURE_SCAN = 8000  # characters read at each end of an item's text for recurring lines


@dataclass
class Candidate:
    item: FeedItem
    link: str
    link_id: str  # article id of the link (of link+title in that mode)
    guid_hash: str  # the per-feed identity key
    identity: str  # "" or the title hash that makes items sharing a link distinct
    version: bytes = b""  # what the feed says about the item now (a change means: re-fetch)
    claim: str = ""  # the fetch-claim key: the link id, or link id + version for a changed item
    furniture: tuple[str, ...] = ()  # line keys recurring across the feed's items

    def __post_init__(self) -> None:
        self.version = self.version or item_version(self.item)
        self.claim = self.claim or self.link_id


def item_version(item: FeedItem) -> bytes:
    """4 bytes that change when the feed changes what it says about the item (a correction)."""
    text = "\x00".join((item.title, item.published_at or "", item.summary, item.content))
    return hashlib.blake2b(text.encode(), digest_size=4).digest()


def item_link(item: FeedItem) -> str:
    if item.link:
        return item.link
    return page_url("", item.guid) if item.guid.startswith(("http://", "https://")) else ""


@dataclass(frozen=True)
class DocIdentity:
    """How this feed document's items are told apart."""

    mode: str = "guid"  # guid | link (| link+title, stored by earlier releases), whole feed
    shared: frozenset[str] = frozenset()  # links carried by items of different titles
    repeated_guids: frozenset[str] = frozenset()  # GUIDs on more than one item of the document
    furniture: tuple[str, ...] = ()  # keys of lines recurring across the items
    anchored: frozenset[str] = frozenset()  # article ids of pages whose items are its anchors


def identity_mode(items: list[FeedItem], current: str = "guid") -> str:
    """The weakest mode this document needs, never stronger than the feed's current mode."""
    return analyse(items, current).mode


def analyse(items: list[FeedItem], current: str = "guid") -> DocIdentity:
    level = MODES.index(current) if current in MODES else 0
    links_by_guid: dict[str, set[str]] = {}
    titles_by_link: dict[str, set[str]] = {}
    fragments_by_page: dict[str, set[str]] = {}
    guids: Counter[str] = Counter()
    for item in items:
        link = item_link(item)
        if link:
            fragments_by_page.setdefault(article_id(link), set()).add(fragment_of(link))
        if item.guid:
            guids[item.guid] += 1
        if item.guid and link:
            links_by_guid.setdefault(item.guid, set()).add(link)
        if link:
            titles_by_link.setdefault(link, set()).add(item.title.strip())
    if any(len(links) > 1 for links in links_by_guid.values()):
        level = max(level, 1)
    return DocIdentity(
        mode=MODES[level],
        shared=frozenset(link for link, titles in titles_by_link.items() if len(titles) > 1),
        repeated_guids=frozenset(g for g, n in guids.items() if n > 1),
        furniture=furniture(items),
        anchored=frozenset(page for page, frags in fragments_by_page.items() if len(frags) > 1),
    )


def fragment_of(link: str) -> str:
    return link.partition("#")[2]


def candidate(item: FeedItem, doc: DocIdentity | str) -> Candidate | None:
    if isinstance(doc, str):
        doc = DocIdentity(mode=doc)
    link = item_link(item)
    if not link:
        return None
    titled = link + "\x00" + item.title.strip()
    anchored = article_id(link) in doc.anchored
    if link in doc.shared or anchored:
        stable_guid = doc.mode == "guid" and item.guid and item.guid not in doc.repeated_guids
        suffix = short_hash(item.title.strip())[:12]  # the shared-link key of earlier releases
        if anchored:
            suffix = short_hash("#" + fragment_of(link) + "\x00" + item.title.strip())[:12]
        key = item.guid if stable_guid else titled
        # The URL's own id would be shared; the title tells the items apart.
        return Candidate(item, link, short_hash(article_id(link) + suffix), short_hash(key), suffix)
    keys = {"guid": item.guid or link, "link": link, "link+title": titled}
    key = keys.get(doc.mode, link)
    return Candidate(item, link, article_id(link), short_hash(key), "")


# ---------------------------------------------------------------- feed furniture

_BLOCK = re.compile(r"<(?:/?(?:p|div|li|h[1-6]|blockquote|tr|ul|ol|section)|br)\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]+>")



def text_lines(fragment: str) -> list[str]:
    """Feed content (HTML or text) split into its lines/paragraphs."""
    text = html.unescape(_TAG.sub(" ", _BLOCK.sub("\n", fragment)))
    return [line.strip() for line in text.splitlines() if line.strip()]


def furniture(items: list[FeedItem]) -> tuple[str, ...]:
    """Keys of the lines found in at least two items' feed text: the feed's template, not a
    story (a footer, a shared intro). Most frequent first, at most FURNITURE_MAX."""
    counts: Counter[str] = Counter()
    for item in items:
        text = item.content or item.summary
        if len(text) > 2 * FURNITURE_SCAN:  # a template sits at the ends: keep the loop quick
            text = text[:FURNITURE_SCAN] + "\n" + text[-FURNITURE_SCAN:]
        keys = {line_key(line) for line in text_lines(text)}
        counts.update(keys - {""})
    common = [(k, n) for k, n in counts.most_common(FURNITURE_MAX) if n >= 2]
    return tuple(k for k, _n in common)
