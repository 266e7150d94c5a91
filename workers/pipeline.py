"""The article path, one payload at a time: extract -> canonical URL -> fingerprint -> dedup ->
classify -> publish. Each stage is a plain function of the record; this module wires them and
turns every failure into a named, counted outcome (and a dead letter when there is a body).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
import structlog

from ingest import bodies, counters, failpoints, observe
from ingest.feedparse import iso_utc
from ingest.keys import Keys
from ingest.seen import SeenStore, UrlMark, hash_field, url_field
from ingest.settings import Settings
from ingest.urls import article_id, canonicalize, host_of, resolve_amp
from workers import classify, extract, fingerprint, learn
from workers.decode import decode
from workers.publish import Publisher

log = structlog.get_logger("workers.pipeline")

SCHEMA = 1
HTML_TYPES = ("html", "xml", "text/plain")


@dataclass
class Context:
    settings: Settings
    r: redis.Redis
    keys: Keys
    seen: SeenStore
    publisher: Publisher
    lexicon: classify.Lexicon
    model: Any = None  # a workers.topic_model.TopicModel when classify.model is set
    learned: learn.LearnedModels | None = None  # models learnt from the stream (classify.learn)

    @classmethod
    def build(cls, settings: Settings, r: redis.Redis) -> Context:
        keys = Keys(settings.redis.prefix)
        seen = SeenStore(r, keys, settings.dedup.window_days, settings.dedup.shards)
        return cls(
            settings=settings,
            r=r,
            keys=keys,
            seen=seen,
            publisher=Publisher(r, keys, seen, settings.stream.maxlen),
            lexicon=classify.cached_lexicon(settings.classify.taxonomy),
            model=_model(settings.classify.model),
            learned=learn.LearnedModels(keys) if settings.classify.learn else None,
        )


def warm(settings: Settings) -> None:
    """Load the lexicon and topic model a Context will use (a parent does this before forking
    its workers)."""
    classify.cached_lexicon(settings.classify.taxonomy)
    _model(settings.classify.model)


@lru_cache(maxsize=2)
def _model(path: str) -> Any:
    if not path:
        return None
    from workers.topic_model import TopicModel

    return TopicModel.load(path)


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
    ex = extract.Extracted()
    try:
        body = bodies.unpack(page["html_z"]) if page.get("html_z") else b""
    except bodies.Unreadable:  # the feed's own content still makes the article
        body, page["outcome"] = b"", "body_unreadable"
    ctype = (page.get("content_type") or "").lower()
    if body and (not ctype or any(t in ctype for t in HTML_TYPES)):
        html, charset = decode(body, ctype)
        ex = extract.from_page(html, page["url"], include_tables)
        ex.quality["charset"] = charset
        wall = extract.paywall_signal(body)
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
    seen = Seen(payload, ctx.settings.stream.trace_ttl)
    ex = extract_payload(
        payload, ctx.settings.extract.min_chars, ctx.settings.extract.include_tables
    )
    seen.stage("extract", started)
    seen.extraction = {"method": ex.method, **ex.quality}
    fp = Fingerprints.of(ex.text)
    if fp.words < 5:
        reason = ex.quality.get("page_outcome") or "not_article"
        return finish(ctx, payload, reason, logctx, detail=page.get("error", ""), seen=seen)

    canonical = canonical_for(page["url"], ex.canonical_url)
    if payload.get("identity"):  # items sharing one link: told apart by their title
        aid = link_id
        url_ids = [link_id]
    else:
        aid = article_id(canonical)
        url_ids = list(dict.fromkeys([aid, link_id, article_id(page["url"])]))
    logctx["article_id"] = aid
    dedup = ctx.settings.dedup

    for _attempt in range(3):
        d = decide(ctx, aid, url_ids, fp)
        seen.dedup = {"decision": d.event, "hit": d.why, "keys": url_ids,
                      "content_hash": fp.content_hash, "simhash": f"{fp.simhash:016x}"}  # fmt: skip
        if d.event == "duplicate":
            return finish(ctx, payload, "duplicate", logctx, detail=d.why, seen=seen)
        if d.event == "near_duplicate" and dedup.drop_near_duplicates:
            return finish(ctx, payload, "near_duplicate", logctx, detail=d.why, seen=seen)
        event = "created" if d.event == "near_duplicate" else d.event
        t_classify = time.monotonic()
        record = build_record(ctx, payload, ex, canonical, aid, fp, d.duplicate_of, d.cluster_id)
        seen.stage("classify", t_classify)
        seen.classified = {"language": record["language"], "topics": record["topics"]}
        mark = UrlMark(aid, fp.content_hash, fp.simhash, fp.words, d.cluster_id or aid)
        outcome = "published" if event == "created" else "updated"
        if d.event == "near_duplicate":
            outcome = "near_duplicate_published"
        t_publish = time.monotonic()
        result = ctx.publisher.publish(
            record, url_ids=url_ids, guid=(feed["id"], payload["guid_hash"]), expected=d.expected,
            event=event, bands=fp.bands, mark=mark,
            item_version=bytes.fromhex(payload.get("item_version") or "00000000"), count_as=outcome,
            routes=routes_for(ctx, record),
        )  # fmt: skip
        if result.outcome == "published":
            failpoints.hit("worker.after_publish")
            elapsed = time.monotonic() - started
            seen.stage("publish", t_publish)
            seen.timings["end_to_end"] = time.time() - float(payload.get("discovered_at") or 0)
            pipe = ctx.r.pipeline(transaction=False)
            pipe.delete(ctx.keys.inflight(payload.get("claim") or link_id))
            if d.event == "created":  # a new story (not a near-copy): what the next refit learns from
                learn.archive(pipe, ctx.keys, ctx.settings.classify, record["language"],
                              record["title"], ex.text)  # fmt: skip
            seen.write(pipe, ctx.keys, outcome, {"stream_id": result.detail, "article_id": aid,
                                                 "canonical_url": canonical}, [aid])  # fmt: skip
            pipe.execute()
            log.info("article_published", **logctx, stage="publish", outcome=outcome,
                     stream_id=result.detail, method=ex.method, ms=round(elapsed * 1000),
                     duplicate_of=d.duplicate_of)  # fmt: skip
            return outcome
        if result.outcome in ("duplicate", "duplicate_content"):
            kind = "url" if result.outcome == "duplicate" else "content"
            return finish(ctx, payload, "duplicate", logctx, detail=f"{kind}:{result.detail}",
                          seen=seen)  # fmt: skip
        # conflict: another worker changed the URL mark between our read and the script; re-decide
    return finish(ctx, payload, "failed", logctx, detail="publish conflict", seen=seen)


PAGE_STEPS = ("trafilatura", "trafilatura_balanced")


def routes_for(ctx: Context, record: dict[str, Any]) -> list[str]:
    """The extra streams this record also goes to (settings stream.route_*)."""
    routes = []
    if ctx.settings.stream.route_topics:
        routes += [ctx.keys.k("articles", "topic", t["code"]) for t in record["topics"]]
    if ctx.settings.stream.route_languages and record["language"] != "und":
        routes.append(ctx.keys.k("articles", "lang", record["language"]))
    return routes


class Seen:
    """What one article's trip through the worker leaves for operators: stage timings, the
    site's extraction result, and the trace `explain` prints."""

    def __init__(self, payload: dict[str, Any], trace_ttl: int) -> None:
        self.payload = payload
        self.trace_ttl = trace_ttl
        self.timings: dict[str, float] = {}
        fetch_ms = payload["page"].get("fetch_ms")
        if fetch_ms is not None:
            self.timings["fetch"] = fetch_ms / 1000
        self.extraction: dict[str, Any] = {}
        self.dedup: dict[str, Any] = {}
        self.classified: dict[str, Any] = {}

    def stage(self, name: str, since: float) -> None:
        self.timings[name] = time.monotonic() - since

    def write(self, pipe: Any, keys: Keys, outcome: str, extra: dict[str, Any],
              ids: list[str] | None = None) -> None:  # fmt: skip
        page, item = self.payload["page"], self.payload["item"]
        for stage, seconds in self.timings.items():
            observe.observe(pipe, keys, stage, seconds)
        if page.get("outcome", "ok") == "ok" and page.get("html_z") and self.extraction:
            ok = self.extraction.get("method") in PAGE_STEPS
            observe.site_result(pipe, keys, host_of(page["url"]).removeprefix("www."), ok)
        fields = {
            "listed_at": self.payload.get("discovered_at"), "feed_url": self.payload["feed"]["url"],
            "guid": item.get("guid", ""), "link": self.payload.get("link", ""),
            "fetch": {"outcome": page.get("outcome", "ok"), "status": page.get("status"),
                      "final_url": page.get("url"), "ms": page.get("fetch_ms"),
                      "error": page.get("error", "")},
            "extraction": self.extraction, "dedup": self.dedup, **self.classified,
            "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
            "outcome": outcome, "at": time.time(), **extra,
        }  # fmt: skip
        for aid in dict.fromkeys([self.payload["link_id"], *(ids or [])]):
            observe.trace(pipe, keys, aid, fields, self.trace_ttl)


@dataclass(frozen=True)
class Fingerprints:
    content_hash: str
    simhash: int
    bands: list[int]
    words: int

    @classmethod
    def of(cls, text: str) -> Fingerprints:
        toks = fingerprint.words(text)  # normalised once for all four
        digests = fingerprint.digests_of(toks)
        return cls(
            fingerprint.hash_of(toks),
            fingerprint.simhash_of(digests),
            fingerprint.minhash_bands(digests),
            len(toks),
        )


@dataclass(frozen=True)
class Decision:
    event: str  # created | updated | duplicate | near_duplicate
    why: str = ""  # for duplicates: which mark hit, and the article it points to
    expected: bytes = b""  # the own-URL mark read (compare-and-set in the publish script)
    duplicate_of: str | None = None
    cluster_id: str | None = None


def material_change(old_sim: int, old_words: int, sim: int, words: int, max_bits: int) -> bool:
    """A correction worth republishing, not a changed timestamp or view count: the text moved
    by more than `max_bits` SimHash bits, or grew or shrank by at least 10 words and 3%."""
    delta = abs(words - old_words)
    return fingerprint.distance(old_sim, sim) > max_bits or (
        delta >= 10 and delta >= 0.03 * max(words, old_words)
    )


def decide(ctx: Context, aid: str, url_ids: list[str], fp: Fingerprints) -> Decision:
    """What this text is, given what is remembered: its URL's earlier version (updated or a
    duplicate), another URL of the same story, the same text elsewhere, or a near-copy."""
    fields = [url_field(u) for u in url_ids] + [hash_field(fp.content_hash)]
    values, members = ctx.seen.lookup(fields, fp.bands)
    *url_values, owner = values
    own = url_values[0]
    if own and ctx.seen.is_mark(own):
        old = UrlMark.unpack(own)
        if old.content_hash == fp.content_hash[:16]:
            return Decision("duplicate", f"url:{aid}")
        if not material_change(
            old.simhash, old.words, fp.simhash, fp.words, ctx.settings.dedup.simhash_max_distance
        ):
            return Decision("duplicate", f"url-trivial-change:{aid}")
        return Decision("updated", expected=bytes(own), cluster_id=old.cluster_id)
    for uid, other in zip(url_ids[1:], url_values[1:], strict=True):
        if other:
            return Decision("duplicate", f"url:{uid}")
    if owner and bytes(owner).hex() != aid:
        return Decision("duplicate", f"content:{bytes(owner).hex()}")
    near = nearest(ctx, aid, fp, members)
    if near is not None:
        return Decision("near_duplicate", f"near:{near.article_id}",
                        duplicate_of=near.article_id, cluster_id=near.cluster_id)  # fmt: skip
    return Decision("created")


def nearest(ctx: Context, aid: str, fp: Fingerprints, members: list[list[str]]) -> UrlMark | None:
    """The earlier article this text is a near-copy of: sharing at least `near_min_bands` MinHash
    bands, or one band and a SimHash within `near_max_distance` bits."""
    shared: Counter[str] = Counter()
    for ids in members:
        shared.update(set(ids) - {aid})
    dedup = ctx.settings.dedup
    for candidate, n in shared.most_common(5):
        mark = ctx.seen.url_mark(candidate)
        if mark is None:
            continue
        close = fingerprint.distance(mark.simhash, fp.simhash) <= dedup.near_max_distance
        if n >= dedup.near_min_bands or close:
            return mark
    return None


def build_record(
    ctx: Context, payload: dict[str, Any], ex: extract.Extracted, canonical: str, aid: str,
    fp: Fingerprints, duplicate_of: str | None, cluster_id: str | None,
) -> dict[str, Any]:  # fmt: skip
    feed, item, page = payload["feed"], payload["item"], payload["page"]
    title = item.get("title") or ex.title
    cfg = ctx.settings.classify
    lang = classify.language(ex.text, declared=feed.get("language", ""),
                             allowed=tuple(cfg.languages))  # fmt: skip
    learned = ctx.learned.get(lang) if ctx.learned is not None and ctx.model is None else None
    model = ctx.model if ctx.model is not None else learned
    if model is not None:
        from workers.topic_model import assign

        topics = assign(
            model, ctx.lexicon, title, ex.text, tags=item.get("tags") or [],
            prior=feed.get("topic", ""), max_topics=cfg.max_topics, min_score=cfg.min_score,
            trust=cfg.model_trust, lang=lang, source=learn.SOURCE if learned else "",
        )  # fmt: skip
        if learned is not None:
            for topic in topics:
                topic["model"] = learned.meta.get("version", "")
    else:
        topics = classify.topics(
            ctx.lexicon, title, ex.text, tags=item.get("tags") or [], prior=feed.get("topic", ""),
            max_topics=cfg.max_topics, min_score=cfg.min_score, lang=lang,
        )  # fmt: skip
    if cfg.local_labels:
        classify.localise(ctx.lexicon, topics, lang)
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
        "word_count": fp.words,
        "content_hash": fp.content_hash,
        "simhash": f"{fp.simhash:016x}",
        "duplicate_of": duplicate_of,
        "cluster_id": cluster_id or aid,
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
    ctx: Context, payload: dict[str, Any], outcome: str, logctx: dict[str, Any], detail: str = "",
    seen: Seen | None = None,
) -> str:  # fmt: skip
    """A terminal outcome other than publication: counted, remembered, dead-lettered if failed."""
    ttl = int(ctx.settings.dedup.window_days * 86400)
    pipe = ctx.r.pipeline()
    (seen or Seen(payload, ctx.settings.stream.trace_ttl)).write(
        pipe, ctx.keys, outcome, {"detail": detail}
    )
    pipe.set(ctx.keys.inflight(payload.get("claim") or payload["link_id"]), outcome, ex=ttl)
    counters.incr(pipe, ctx.keys, "articles", outcome)
    skipped = outcome in ("duplicate", "near_duplicate")  # the story is in the stream already
    if not skipped:
        counters.deadletter(pipe, ctx.keys, outcome, url=payload["page"]["url"],
                            feed_url=payload["feed"]["url"], article_id=payload["link_id"],
                            detail=detail, body_z=payload["page"].get("html_z")
                            or payload["page"].get("error_z"))  # fmt: skip
    pipe.execute()
    log.info("article_skipped" if skipped else "article_failed", **logctx,
             stage="dedup" if skipped else "extract", outcome=outcome, detail=detail)  # fmt: skip
    return outcome
