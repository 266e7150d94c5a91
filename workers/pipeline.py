"""The article path, one payload at a time: extract (workers/extract.py) -> site template
(workers/template.py) -> canonical URL -> fingerprint and dedup (workers/dedup.py) -> record and
classification (workers/record.py) -> publish (workers/publish.py), with the trace
(workers/trace.py) written at the end. Each stage is a function of plain records; this module
is the wiring (`process`), and turns every failure into a named, counted outcome (`finish`; a
dead letter when there is a body).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
import structlog

from ingest.core import counters, deadletters, failpoints
from ingest.core.job import ArticleJob
from ingest.core.keys import Keys
from ingest.core.seen import SeenStore, UrlMark, claim_field, tag
from ingest.core.settings import Settings
from ingest.core.urls import article_id, canonicalize, host_of, resolve_amp
from workers import classify, dedup, extract, learn
from workers.dedup import Decision, Fingerprints, Item, material_change  # noqa: F401  (re-exported)
from workers.publish import Publisher
from workers.record import build_record, routes_for
from workers.template import SiteTemplates
from workers.trace import PAGE_STEPS, Trace

log = structlog.get_logger("workers.pipeline")


@dataclass
class Context:
    settings: Settings
    r: redis.Redis
    keys: Keys
    seen: SeenStore
    publisher: Publisher
    lexicon: classify.Lexicon
    model: Any = None  # a workers.topic_model.TopicModel when classify.model is set
    templates: SiteTemplates | None = None  # the sites' learned template lines
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
            templates=SiteTemplates(r, keys, settings.template),
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


def cross_site_canonical(page_url: str, declared: str) -> str:
    """A rel=canonical/og:url naming another site (a syndicated copy, or a page claiming to be
    one): canonicalised, or "". Only a claim: workers/dedup.py decides what it is worth."""
    absolute = declared.startswith(("http://", "https://"))
    if declared and absolute and not same_site(declared, page_url):
        return canonicalize(declared)
    return ""


def canonical_for(page_url: str, declared: str) -> str:
    """The page's own canonical (rel=canonical/og:url) when it stays on the same site."""
    if declared and declared.startswith(("http://", "https://")) and same_site(declared, page_url):
        return canonicalize(declared)
    return canonicalize(resolve_amp(page_url))




def process(ctx: Context, payload: ArticleJob) -> str:
    started = time.monotonic()
    feed, _item, page = payload["feed"], payload["item"], payload["page"]
    link_id = payload["link_id"]
    logctx = {"feed_url": feed["url"], "article_id": link_id}
    seen = Trace(payload, ctx.settings.stream.trace_ttl)
    ex = extract.extract_payload(
        payload, ctx.settings.extract.min_chars, ctx.settings.extract.include_tables,
        ctx.settings.extract.max_tags, ctx.settings.extract.cpu_limit,
    )  # fmt: skip
    template_lines = drop_template(ctx, payload, ex)  # part of the extract stage's time
    seen.stage("extract", started)
    seen.extraction = {"method": ex.method, **ex.quality}
    if template_lines:
        seen.extraction["template_lines"] = template_lines
    dd = ctx.settings.dedup
    fp = Fingerprints.of(ex.text, payload.get("furniture") or (), dd.near_min_shingles,
                         titles=(_item.get("title") or "", ex.title))  # fmt: skip
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
    claimed = cross_site_canonical(page["url"], ex.canonical_url)
    who = Item(aid, url_ids, tag(feed["id"]), tag((_item.get("title") or "").strip()),
               article_id(claimed) if claimed and article_id(claimed) != aid else "")  # fmt: skip

    for _attempt in range(3):
        d = decide(ctx, aid, url_ids, fp, who)
        seen.dedup = {"decision": d.event, "hit": d.why, "keys": url_ids,
                      "content_hash": fp.content_hash, "simhash": f"{fp.simhash:016x}",
                      "shingles": fp.shingles}  # fmt: skip
        if d.possible_duplicate_of:
            seen.dedup["possible_duplicate_of"] = d.possible_duplicate_of
        if claimed:
            seen.dedup["canonical_claim"] = claimed
        if d.event == "duplicate":
            return finish(ctx, payload, "duplicate", logctx, detail=d.why, seen=seen)
        if d.event == "near_duplicate" and dd.drop_near_duplicates:
            return finish(ctx, payload, "near_duplicate", logctx, detail=d.why, seen=seen)
        event = "created" if d.event == "near_duplicate" else d.event
        t_classify = time.monotonic()
        record = build_record(ctx, payload, ex, canonical, aid, fp, d.duplicate_of, d.cluster_id)
        record["possible_duplicate_of"] = d.possible_duplicate_of
        seen.stage("classify", t_classify)
        seen.classified = {"language": record["language"], "topics": record["topics"]}
        mark = UrlMark(aid, fp.content_hash, fp.simhash, fp.words, d.cluster_id or aid,
                       who.feed_tag, who.title_tag)  # fmt: skip
        outcome = "published" if event == "created" else "updated"
        if d.event == "near_duplicate":
            outcome = "near_duplicate_published"
        t_publish = time.monotonic()
        failpoints.hit("worker.before_publish")  # tests: a stop while this article is in hand
        result = ctx.publisher.publish(
            record, url_ids=url_ids, guid=(feed["id"], payload["guid_hash"]), expected=d.expected,
            event=event, bands=fp.bands, mark=mark,
            item_version=bytes.fromhex(payload.get("item_version") or "00000000"), count_as=outcome,
            routes=routes_for(ctx, record), check_owner=d.check_owner and event == "created",
        )  # fmt: skip
        if result.outcome == "published":
            failpoints.hit("worker.after_publish")
            elapsed = time.monotonic() - started
            seen.stage("publish", t_publish)
            if not payload.get("replay"):  # a replay's wait was the operator's, not ours
                seen.timings["end_to_end"] = time.time() - float(payload.get("discovered_at") or 0)
            pipe = ctx.r.pipeline(transaction=False)
            pipe.delete(ctx.keys.inflight(payload.get("claim") or link_id))
            if d.event == "created":  # a new story (not a near-copy): what the next refit learns from
                learn.archive(pipe, ctx.keys, ctx.settings.classify, record["language"],
                              record["title"], ex.text)  # fmt: skip
            seen.write(pipe, ctx.keys, outcome, {"stream_id": result.detail, "article_id": aid,
                                                 "canonical_url": canonical}, [aid])  # fmt: skip
            if who.canonical_id and d.duplicate_of == who.canonical_id:  # an unverified claim
                ctx.seen.put(pipe, claim_field(who.canonical_id), bytes.fromhex(aid))
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




def drop_template(ctx: Context, payload: ArticleJob, ex: extract.Extracted) -> list[str]:
    """Take the site's learned template lines out of a page's body (workers/template.py); the
    trace (`explain`) lists them under extraction.template_lines."""
    if ex.method not in PAGE_STEPS or not ex.text or not ctx.settings.template.enabled:
        return []
    page = payload["page"]
    story = (payload["link_id"] if payload.get("identity")
             else article_id(canonical_for(page["url"], ex.canonical_url)))  # fmt: skip
    if ctx.templates is None:
        ctx.templates = SiteTemplates(ctx.r, ctx.keys, ctx.settings.template)
    verdict = ctx.templates.apply(host_of(page["url"]).removeprefix("www."), story, ex.text)
    if verdict.dropped:
        ex.text = verdict.text
        ex.quality["template_dropped"] = len(verdict.dropped)
    return [line[:120] for line in verdict.dropped]








def decide(
    ctx: Context, aid: str, url_ids: list[str], fp: Fingerprints, item: Item | None = None
) -> Decision:
    """What this text is, given what is remembered (workers/dedup.py: one batched read, then a
    pure decision)."""
    who = item or Item(aid, url_ids)
    return dedup.decide(dedup.read(ctx.seen, who, fp), who, fp, ctx.settings.dedup)




def finish(
    ctx: Context, payload: ArticleJob, outcome: str, logctx: dict[str, Any], detail: str = "",
    seen: Trace | None = None,
) -> str:  # fmt: skip
    """A terminal outcome other than publication: counted, remembered, dead-lettered if failed.
    A replay that does not publish changes nothing: its letter, counters and trace stay as the
    first run left them, so replaying again is idempotent."""
    skipped = outcome in ("duplicate", "near_duplicate")  # the story is in the stream already
    if payload.get("replay"):
        log.info("replay_unchanged", **logctx, outcome=outcome, detail=detail,
                 letter=payload["replay"])  # fmt: skip
        return outcome
    ttl = ctx.settings.dedup.window_s
    pipe = ctx.r.pipeline()
    (seen or Trace(payload, ctx.settings.stream.trace_ttl)).write(
        pipe, ctx.keys, outcome, {"detail": detail}
    )
    pipe.set(ctx.keys.inflight(payload.get("claim") or payload["link_id"]), outcome, ex=ttl)
    counters.incr(pipe, ctx.keys, "articles", outcome)
    if not skipped:
        deadletters.write(
            pipe, ctx.keys, deadletters.DeadLetter.of_payload(payload, outcome, detail)
        )
    pipe.execute()
    log.info("article_skipped" if skipped else "article_failed", **logctx,
             stage="dedup" if skipped else "extract", outcome=outcome, detail=detail)  # fmt: skip
    return outcome
