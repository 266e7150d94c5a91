"""The article path, one payload at a time: extract -> canonical URL -> fingerprint -> dedup ->
classify -> publish. Each stage is a plain function of the record; this module wires them and
turns every failure into a named, counted outcome (and a dead letter when there is a body).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any

import redis
import structlog

from ingest import counters
from ingest.feedparse import iso_utc
from ingest.keys import Keys
from ingest.settings import Settings
from ingest.urls import article_id, canonicalize, host_of, resolve_amp
from workers import classify, extract, fingerprint
from workers.decode import decode
from workers.publish import Publisher, parse_url_value

log = structlog.get_logger("workers.pipeline")

SCHEMA = 1
HTML_TYPES = ("html", "xml", "text/plain")


@dataclass
class Context:
    settings: Settings
    r: redis.Redis
    keys: Keys
    publisher: Publisher
    lexicon: classify.Lexicon

    @classmethod
    def build(cls, settings: Settings, r: redis.Redis) -> Context:
        keys = Keys(settings.redis.prefix)
        ttl = int(settings.dedup.window_days * 86400)
        return cls(
            settings=settings,
            r=r,
            keys=keys,
            publisher=Publisher(r, keys, ttl, settings.stream.maxlen),
            lexicon=classify.cached_lexicon(settings.classify.taxonomy),
        )


def same_site(a: str, b: str) -> bool:
    ha, hb = host_of(a).removeprefix("www."), host_of(b).removeprefix("www.")
    return bool(ha) and (ha == hb or ha.endswith("." + hb) or hb.endswith("." + ha))


def canonical_for(page_url: str, declared: str) -> str:
    """The page's own canonical (rel=canonical/og:url) when it stays on the same site."""
    if declared and declared.startswith(("http://", "https://")) and same_site(declared, page_url):
        return canonicalize(declared)
    return canonicalize(resolve_amp(page_url))


def extract_payload(
    payload: dict[str, Any], min_chars: int, include_tables: bool = True
) -> extract.Extracted:
    page = payload["page"]
    item = payload["item"]
    body = zlib.decompress(page["html_z"]) if page.get("html_z") else b""
    ex = extract.Extracted()
    ctype = (page.get("content_type") or "").lower()
    if body and (not ctype or any(t in ctype for t in HTML_TYPES)):
        html, charset = decode(body, ctype)
        ex = extract.from_page(html, page["url"], include_tables)
        ex.quality["charset"] = charset
        wall = extract.paywall_signal(html)
        if wall:
            ex.quality["paywall"] = wall
    elif body:
        ex.quality["page_outcome"] = "not_html"
    if page.get("outcome", "ok") != "ok":
        ex.quality["page_outcome"] = page["outcome"]
    return extract.choose(ex, item.get("content") or item.get("summary") or "", min_chars)


def process(ctx: Context, payload: dict[str, Any]) -> str:
    started = time.monotonic()
    feed, _item, page = payload["feed"], payload["item"], payload["page"]
    link_id = payload["link_id"]
    logctx = {"feed_url": feed["url"], "article_id": link_id}
    ex = extract_payload(
        payload, ctx.settings.extract.min_chars, ctx.settings.extract.include_tables
    )
    if len(fingerprint.words(ex.text)) < 5:
        reason = ex.quality.get("page_outcome") or "not_article"
        return finish(ctx, payload, reason, logctx, detail=page.get("error", ""))

    canonical = canonical_for(page["url"], ex.canonical_url)
    if payload.get("identity"):  # items sharing one link: told apart by their title
        aid = link_id
        url_ids = [link_id]
    else:
        aid = article_id(canonical)
        url_ids = list(dict.fromkeys([aid, link_id, article_id(page["url"])]))
    words = len(fingerprint.words(ex.text))
    chash = fingerprint.content_hash(ex.text)
    sim = fingerprint.simhash(ex.text)
    logctx["article_id"] = aid

    for _attempt in range(3):
        decision = decide(ctx, aid, url_ids, chash, sim, words)
        if decision[0] == "duplicate":
            return finish(ctx, payload, "duplicate", logctx, detail=decision[1])
        event, expected, duplicate_of = decision
        record = build_record(ctx, payload, ex, canonical, aid, chash, sim, duplicate_of)
        guid_keys = [ctx.keys.seen_guid(feed["id"], payload["guid_hash"])]
        result = ctx.publisher.publish(
            record, url_ids=url_ids, guid_keys=guid_keys, expected=expected, event=event
        )
        if result.outcome == "published":
            outcome = "published" if event == "created" else "updated"
            elapsed = time.monotonic() - started
            ctx.r.delete(ctx.keys.inflight(link_id))
            counters.incr(ctx.r, ctx.keys, "articles", outcome)
            log.info("article_published", **logctx, stage="publish", outcome=outcome,
                     stream_id=result.detail, method=ex.method, ms=round(elapsed * 1000))  # fmt: skip
            return outcome
        if result.outcome in ("duplicate", "duplicate_content"):
            return finish(ctx, payload, "duplicate", logctx, detail=result.detail)
        # conflict: another worker changed the URL key between our read and the script; re-decide
    return finish(ctx, payload, "failed", logctx, detail="publish conflict")


def material_change(old_sim: int, old_words: int, sim: int, words: int, max_bits: int) -> bool:
    """A correction worth republishing, not a changed timestamp or view count: the text moved
    by more than `max_bits` SimHash bits, or grew or shrank by at least 10 words and 3%."""
    delta = abs(words - old_words)
    return fingerprint.distance(old_sim, sim) > max_bits or (
        delta >= 10 and delta >= 0.03 * max(words, old_words)
    )


def decide(
    ctx: Context, aid: str, url_ids: list[str], chash: str, sim: int, words: int
) -> tuple[str, str, str | None]:
    """('created', expected, None) | ('updated', expected, None) | ('duplicate', why, None)."""
    pipe = ctx.r.pipeline(transaction=False)
    for uid in url_ids:
        pipe.get(ctx.keys.seen_url(uid))
    pipe.get(ctx.keys.seen_hash(chash))
    *url_values, hash_owner = [v.decode() if v else "" for v in pipe.execute()]
    own = url_values[0]
    if own:
        _aid, old_hash, old_sim, old_words = parse_url_value(own)
        if old_hash == chash:
            return "duplicate", f"url:{aid}", None
        if not material_change(
            old_sim, old_words, sim, words, ctx.settings.dedup.simhash_max_distance
        ):
            return "duplicate", f"url-trivial-change:{aid}", None
        return "updated", own, None
    for other in url_values[1:]:
        if other:
            return "duplicate", f"url:{parse_url_value(other)[0]}", None
    if hash_owner and hash_owner != aid:
        return "duplicate", f"content:{hash_owner}", None
    return "created", "", None


def build_record(
    ctx: Context, payload: dict[str, Any], ex: extract.Extracted, canonical: str, aid: str,
    chash: str, sim: int, duplicate_of: str | None,
) -> dict[str, Any]:  # fmt: skip
    feed, item, page = payload["feed"], payload["item"], payload["page"]
    title = item.get("title") or ex.title
    cfg = ctx.settings.classify
    lang = classify.language(ex.text, declared=feed.get("language", ""),
                             allowed=tuple(cfg.languages))  # fmt: skip
    topics = classify.topics(
        ctx.lexicon, title, ex.text, tags=item.get("tags") or [], prior=feed.get("topic", ""),
        max_topics=cfg.max_topics, min_score=cfg.min_score,
    )  # fmt: skip
    published = item.get("published_at") or iso_utc(ex.date)
    return {
        "schema": SCHEMA,
        "id": aid,
        "url": page["url"],
        "canonical_url": canonical,
        "feed": {"id": feed["id"], "url": feed["url"], "title": feed.get("title", "")},
        "guid": item.get("guid", ""),
        "title": title,
        "authors": item.get("authors") or ex.authors,
        "published_at": published,
        "fetched_at": payload["fetched_at"],
        "language": lang,
        "topics": topics,
        "text": ex.text,
        "summary": extract.html_to_text(item.get("summary") or "")[:2000],
        "site_name": ex.site_name or host_of(page["url"]),
        "image": item.get("image") or ex.image,
        "tags": item.get("tags") or [],
        "word_count": len(fingerprint.words(ex.text)),
        "content_hash": chash,
        "simhash": f"{sim:016x}",
        "duplicate_of": duplicate_of,
        "cluster_id": duplicate_of or aid,
        "extraction": {
            "method": ex.method,
            # Feed and page both describe the story; the feed wins where it says something
            # (it is what the publisher meant to syndicate), the page fills the gaps.
            "title_source": "feed" if item.get("title") else "page",
            "authors_source": "feed" if item.get("authors") else "page",
            "date_source": "feed" if item.get("published_at") else "page",
            **ex.quality,
        },
    }


def finish(
    ctx: Context, payload: dict[str, Any], outcome: str, logctx: dict[str, Any], detail: str = ""
) -> str:
    """A terminal outcome other than publication: counted, remembered, dead-lettered if failed."""
    ttl = int(ctx.settings.dedup.window_days * 86400)
    pipe = ctx.r.pipeline()
    pipe.set(ctx.keys.inflight(payload["link_id"]), outcome, ex=ttl)
    counters.incr(pipe, ctx.keys, "articles", outcome)
    if outcome != "duplicate":
        counters.deadletter(pipe, ctx.keys, outcome, url=payload["page"]["url"],
                            feed_url=payload["feed"]["url"], article_id=payload["link_id"],
                            detail=detail, body_z=payload["page"].get("html_z")
                            or payload["page"].get("error_z"))  # fmt: skip
    pipe.execute()
    log.info("article_skipped" if outcome == "duplicate" else "article_failed", **logctx,
             stage="dedup" if outcome == "duplicate" else "extract", outcome=outcome,
             detail=detail)  # fmt: skip
    return outcome
