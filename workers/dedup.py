"""Dedup: what a text is, given what is remembered. `read` fetches everything a decision needs
from the seen store in one round trip (one script: URL marks, content owner, band candidates
and their marks, ingest/core/seen.py); `decide` is a pure function of what was read.

Rules, in order:
1. Its own URL was seen: the same text is a `duplicate`, a material change an `updated`,
   unless this very version of the feed item is what was published (its GUID mark holds it):
   then it is its job run again, a `duplicate` whatever its text now reads (below, `decide`).
2. Another URL of the story (the link, the final URL) was seen: `duplicate`.
3. Its cross-site `rel=canonical` names an article already known (published): a `duplicate` of
   it. A canonical naming an article not known is only recorded (`duplicate_of` on the record,
   and a `c` claim mark), never honoured: a hostile page must not be able to claim someone
   else's story. When the named article arrives, it is a `duplicate` of the copy only if its
   text is the copy's (SimHash within `near_max_distance`): the story is out already; any other
   text is published as itself (docs/security.md).
4. The same text under another article: a `duplicate` of it (content hash).
5. A near-copy (MinHash bands + SimHash) of an earlier article: `near_duplicate`. Only a text
   with at least `near_min_shingles` shingles of its own (feed furniture removed) is matched or
   indexed: a one-line post or a footer-dominated teaser is no evidence of copying.
Never dropped as a copy: an item of the same feed as the earlier article whose title differs
(its GUID differs too, or the poller would have known it): a distinct post, published with
`possible_duplicate_of` (tests/test_identity.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ingest.core.lines import line_key
from ingest.core.seen import SeenStore, UrlMark, claim_field, hash_field, url_field
from ingest.core.settings import DedupSettings
from workers import fingerprint

CANDIDATES = 5  # band candidates checked per article, most shared bands first


@dataclass(frozen=True)
class Fingerprints:
    content_hash: str  # of the whole text
    simhash: int  # of the story's own lines (feed furniture removed)
    bands: list[int]  # empty when the story is too short to be matched as a near-copy
    words: int
    shingles: int = 0  # of the story's own lines

    @classmethod
    def of(
        cls, text: str, furniture: Iterable[str] = (), min_shingles: int = 0,
        titles: Iterable[str] = (),
    ) -> Fingerprints:  # fmt: skip
        """`furniture`: line keys of the feed's template; `titles`: the headlines the text may
        start with (a copy's headline differs, and one template shows it, another not)."""
        toks = fingerprint.words(text)  # normalised once for all
        skip = set(furniture) | {line_key(t) for t in titles} - {""}
        story = story_tokens(text, skip)
        digests = fingerprint.digests_of(story)
        shingles = fingerprint.shingle_count(len(story))
        bands = fingerprint.minhash_bands(digests) if shingles >= min_shingles else []
        return cls(fingerprint.hash_of(toks), fingerprint.simhash_of(digests), bands, len(toks),
                   shingles)  # fmt: skip


# A syndication credit ("This story originally appeared on ...") is the copy's, not the story's.
NOTE = re.compile(
    r"\b(?:(?:originally|first) (?:appeared|published|ran|posted) (?:on|in|at|by) (?!\d)|"
    r"(?:republished|reprinted|reproduced) (?:here )?(?:with|by) (?:kind )?permission)",
    re.I,
)
NOTE_MAX_WORDS = 40  # a longer line mentioning it is part of the story


def story_tokens(text: str, skip: set[str]) -> list[str]:
    """The tokens of the text's own lines: not the feed's furniture, not a headline, not a
    syndication note."""
    out: list[str] = []
    for line in text.splitlines():
        if line_key(line) in skip:
            continue
        toks = fingerprint.words(line)
        if len(toks) <= NOTE_MAX_WORDS and NOTE.search(line):
            continue
        out += toks
    return out


@dataclass(frozen=True)
class Item:
    """Who asks: the article's ids and what tells a distinct post of the same feed apart."""

    aid: str
    url_ids: list[str]
    feed_tag: str = ""
    title_tag: str = ""
    canonical_id: str = ""  # article id of a cross-site rel=canonical, "" when none
    guid: bytes = b""  # the feed item's GUID mark field (seen.guid_field), b"" when none
    version: bytes = b""  # the item's version in this job (its GUID mark's value), b"" unknown


@dataclass
class Known:
    own: bytes | None = None  # the own URL's mark
    others: list[bytes | None] = field(default_factory=list)  # marks of url_ids[1:]
    canonical: bytes | None = None  # the mark under the cross-site canonical's id
    claimed_by: str = ""  # a published copy elsewhere naming this article as its canonical
    owner: str = ""  # the article holding the same content hash
    shared: list[tuple[str, int]] = field(default_factory=list)  # band candidates, bands shared
    marks: dict[str, UrlMark] = field(default_factory=dict)  # of the owner and the candidates
    version: bytes | None = None  # the GUID mark: the item's version last published


@dataclass(frozen=True)
class Decision:
    event: str  # created | updated | duplicate | near_duplicate
    why: str = ""  # which mark hit, and the article it points to
    expected: bytes = b""  # the own-URL mark read (compare-and-set in the publish script)
    duplicate_of: str | None = None
    cluster_id: str | None = None
    possible_duplicate_of: str | None = None  # a like post of the same feed: flagged, kept
    check_owner: bool = True  # publish only if no other article holds the content hash


def read(seen: SeenStore, item: Item, fp: Fingerprints) -> Known:
    """Everything `decide` needs, in one round trip (SeenStore.lookup_ranked): the URL marks,
    the content owner, a claim naming this article, the canonical's mark, the CANDIDATES
    articles sharing most bands, and the own-URL marks of the owner, the claimant and the
    candidates (tests/test_dedup_decide.py counts the round trips)."""
    fields = [url_field(u) for u in item.url_ids] + [hash_field(fp.content_hash)]
    fields.append(claim_field(item.aid))
    if item.canonical_id:
        fields.append(url_field(item.canonical_id))
    if item.guid:
        fields.append(item.guid)
    n = len(item.url_ids)
    found = seen.lookup_ranked(fields, fp.bands, item.aid, CANDIDATES, resolve=(n, n + 1))
    values = found.values
    known = Known(own=values[0], others=values[1:n], shared=found.shared, marks=found.marks)
    owner, claimed = values[n], values[n + 1]
    known.owner = owner.hex() if owner else ""
    known.claimed_by = claimed.hex() if claimed else ""
    if item.canonical_id:
        known.canonical = values[n + 2]
    if item.guid:
        known.version = values[-1]
    return known


def trace_fields(d: Decision, item: Item, fp: Fingerprints, claimed: str = "") -> dict[str, Any]:
    """The decision as the trace (`explain`) shows it; `claimed`: the cross-site canonical."""
    out: dict[str, Any] = {"decision": d.event, "hit": d.why, "keys": item.url_ids,
                           "content_hash": fp.content_hash, "simhash": f"{fp.simhash:016x}",
                           "shingles": fp.shingles}  # fmt: skip
    if d.possible_duplicate_of:
        out["possible_duplicate_of"] = d.possible_duplicate_of
    if claimed:
        out["canonical_claim"] = claimed
    return out


def material_change(old_sim: int, old_words: int, sim: int, words: int, max_bits: int) -> bool:
    """A correction worth republishing, not a changed timestamp or view count: the text moved
    by more than `max_bits` SimHash bits, or grew or shrank by at least 10 words and 3%."""
    delta = abs(words - old_words)
    return fingerprint.distance(old_sim, sim) > max_bits or (
        delta >= 10 and delta >= 0.03 * max(words, old_words)
    )


def distinct_post(mark: UrlMark | None, item: Item) -> bool:
    """The earlier article is another post of the same feed: same feed, another title."""
    return (
        mark is not None
        and bool(mark.feed_tag)
        and mark.feed_tag == item.feed_tag
        and mark.title_tag != item.title_tag
    )


def decide(known: Known, item: Item, fp: Fingerprints, settings: DedupSettings) -> Decision:
    aid = item.aid
    own = known.own
    if own is not None and len(own) == 8:  # the URL is another URL of a published story
        return Decision("duplicate", f"url:{bytes(own).hex()}", duplicate_of=bytes(own).hex())
    if own is not None:
        old = UrlMark.unpack(bytes(own))
        if old.content_hash == fp.content_hash[:16]:
            return Decision("duplicate", f"url:{aid}")
        if item.version and known.version == item.version:
            # This job's version of the item is out already: the job is running again (RQ
            # delivers at least once: a killed worker, an abandoned job). Its text can differ
            # from the published one without the page changing, the site's template having
            # learned shared lines since (workers/template.py): no correction, and never a
            # second copy in the stream (tests/test_crashes.py).
            return Decision("duplicate", f"item-version:{aid}")
        if not material_change(
            old.simhash, old.words, fp.simhash, fp.words, settings.simhash_max_distance
        ):
            return Decision("duplicate", f"url-trivial-change:{aid}")
        return Decision("updated", expected=bytes(own), cluster_id=old.cluster_id)
    for uid, other in zip(item.url_ids[1:], known.others, strict=True):
        if other:
            return Decision("duplicate", f"url:{uid}")
    if item.canonical_id and known.canonical:
        return Decision("duplicate", f"canonical:{item.canonical_id}",
                        duplicate_of=item.canonical_id)  # fmt: skip
    copy = known.marks.get(known.claimed_by) if known.claimed_by else None
    if copy is not None and copy.article_id != aid and (
        fingerprint.distance(copy.simhash, fp.simhash) <= settings.near_max_distance
    ):  # published first elsewhere, naming us as its original, with our text: the story is out
        return Decision("duplicate", f"canonical-claim:{copy.article_id}",
                        duplicate_of=copy.article_id)  # fmt: skip
    flagged: str | None = None
    if known.owner and known.owner != aid:
        if not distinct_post(known.marks.get(known.owner), item):
            return Decision("duplicate", f"content:{known.owner}", duplicate_of=known.owner)
        flagged = known.owner
    if flagged is None and fp.shingles >= settings.near_min_shingles:
        for candidate, n in known.shared:
            mark = known.marks.get(candidate)
            if mark is None:
                continue
            close = fingerprint.distance(mark.simhash, fp.simhash) <= settings.near_max_distance
            if n >= settings.near_min_bands or close:
                if distinct_post(mark, item):
                    flagged = mark.article_id
                    break
                return Decision(
                    "near_duplicate", f"near:{mark.article_id}", duplicate_of=mark.article_id,
                    cluster_id=mark.cluster_id,
                )  # fmt: skip
    claim = item.canonical_id or None  # recorded, not honoured (rule 3)
    if flagged is not None:
        return Decision("created", f"possible_duplicate:{flagged}", duplicate_of=claim,
                        possible_duplicate_of=flagged, check_owner=False)  # fmt: skip
    if claim:
        return Decision("created", f"canonical_unverified:{claim}", duplicate_of=claim)
    return Decision("created")
