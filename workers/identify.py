"""Which article a page is: its canonical URL, its article id and the other ids it is known by
(the feed's link, the fetched URL), and a cross-site canonical claim (a syndicated copy, or a
page claiming to be one). Pure: workers/dedup.py decides what the ids and the claim are worth.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.core.job import ArticleJob
from ingest.core.seen import guid_field, tag
from ingest.core.urls import article_id, canonicalize, host_of, resolve_amp
from workers.dedup import Item
from workers.extract import Extracted


@dataclass(frozen=True)
class Identity:
    canonical: str  # the record's canonical_url
    claimed: str  # a rel=canonical/og:url on another site, canonicalised, or ""
    item: Item  # the ids and tags dedup reads; item.aid is the record's id

    @property
    def aid(self) -> str:
        return self.item.aid


def identify(payload: ArticleJob, ex: Extracted) -> Identity:
    feed, item, page = payload["feed"], payload["item"], payload["page"]
    link_id = payload["link_id"]
    declared = ex.canonical_url  # unreadable ("http://[oops/"): no canonical and no claim
    canonical = canonical_for(page["url"], declared)
    if payload.get("identity"):  # items sharing one link: told apart by their title
        aid, url_ids = link_id, [link_id]
    else:
        aid = article_id(canonical)
        url_ids = list(dict.fromkeys([aid, link_id, article_id(page["url"])]))
    claimed = cross_site_canonical(page["url"], declared)
    claim_id = article_id(claimed) if claimed and article_id(claimed) != aid else ""
    title_tag = tag((item.get("title") or "").strip())
    # the GUID mark and the item's version, as the publish script writes them: a re-run of a
    # published job is known by them (workers/dedup.py)
    guid = guid_field(feed["id"], payload["guid_hash"]) if payload.get("guid_hash") else b""
    version = bytes.fromhex(payload.get("item_version") or "")
    return Identity(canonical, claimed, Item(aid, url_ids, tag(feed["id"]), title_tag, claim_id,
                                             guid, version))  # fmt: skip


def same_site(a: str, b: str) -> bool:
    """Both hosts readable and one of them, or a subdomain of the other. Both are checked:
    with an empty host, `"evil.example.".endswith("." + "")` would be "same site"."""
    ha, hb = host_of(a).removeprefix("www."), host_of(b).removeprefix("www.")
    return bool(ha and hb) and (ha == hb or ha.endswith("." + hb) or hb.endswith("." + ha))


def _absolute(declared: str) -> bool:
    """An http(s) URL with a host we can read; a relative or unreadable one claims nothing."""
    return declared.startswith(("http://", "https://")) and bool(host_of(declared))


def cross_site_canonical(page_url: str, declared: str) -> str:
    """A rel=canonical/og:url naming another site, canonicalised, or "". Only a claim."""
    if _absolute(declared) and not same_site(declared, page_url):
        return canonicalize(declared)
    return ""


def canonical_for(page_url: str, declared: str) -> str:
    """The page's own canonical (rel=canonical/og:url) when it stays on the same site."""
    if _absolute(declared) and same_site(declared, page_url):
        return canonicalize(declared)
    return canonicalize(resolve_amp(page_url))
