"""The article path, one payload at a time; each line of `process` is one stage, in order:
extract (workers/extract.py) -> identify (workers/identify.py: canonical URL, article ids) ->
site template (workers/template.py) -> fingerprint and dedup (workers/dedup.py) -> record and
classification (workers/record.py) -> publish (workers/publish.py) -> the end (workers/outcome.py:
published, or a named, counted outcome, a dead letter when it failed), with the trace
(workers/trace.py) filled in on the way.
"""

from __future__ import annotations

import time

from ingest.core import failpoints
from ingest.core.job import ArticleJob
from ingest.core.seen import UrlMark
from workers import dedup, extract, template
from workers.context import Context
from workers.dedup import Decision, Fingerprints, Item
from workers.identify import identify
from workers.outcome import finish, published
from workers.record import build_record, routes_for
from workers.trace import Trace

ATTEMPTS = 3  # decisions tried: a publish conflict (another worker moved the URL mark) re-decides
OUTCOME = {
    "created": "published",
    "updated": "updated",
    "near_duplicate": "near_duplicate_published",
}


def process(ctx: Context, payload: ArticleJob) -> str:
    started = time.monotonic()
    trace = Trace(payload, ctx.settings.stream.trace_ttl)
    logctx = {"feed_url": payload["feed"]["url"], "article_id": payload["link_id"]}
    cfg, dd = ctx.settings.extract, ctx.settings.dedup
    ex = extract.extract_payload(payload, cfg.min_chars, cfg.include_tables, cfg.max_tags,
                                 cfg.cpu_limit)  # fmt: skip
    ident = identify(payload, ex)
    dropped = template.strip(ctx.templates, payload["page"]["url"], ident.aid, ex)
    trace.stage("extract", started)
    trace.extraction = {"method": ex.method, **ex.quality}
    if dropped:
        trace.extraction["template_lines"] = dropped
    fp = Fingerprints.of(ex.text, payload.get("furniture") or (), dd.near_min_shingles,
                         titles=(payload["item"].get("title") or "", ex.title))  # fmt: skip
    if fp.words < 5:
        reason = ex.quality.get("page_outcome") or "not_article"
        return finish(ctx, payload, reason, logctx, payload["page"].get("error", ""), trace)
    logctx["article_id"] = ident.aid
    for _attempt in range(ATTEMPTS):
        d = decide(ctx, ident.item, fp)
        trace.dedup = dedup.trace_fields(d, ident.item, fp, ident.claimed)
        if d.event == "duplicate" or (d.event == "near_duplicate" and dd.drop_near_duplicates):
            return finish(ctx, payload, d.event, logctx, d.why, trace)
        t_classify = time.monotonic()
        record = build_record(ctx, payload, ex, ident.canonical, ident.aid, fp, d.duplicate_of,
                              d.cluster_id)  # fmt: skip
        record["possible_duplicate_of"] = d.possible_duplicate_of
        trace.stage("classify", t_classify)
        trace.classified = {"language": record["language"], "topics": record["topics"]}
        event = "updated" if d.event == "updated" else "created"  # a kept near-copy is new
        outcome = OUTCOME[d.event]
        t_publish = time.monotonic()
        failpoints.hit("worker.before_publish")  # tests: a stop while this article is in hand
        mark = UrlMark(ident.aid, fp.content_hash, fp.simhash, fp.words, d.cluster_id or ident.aid,
                       ident.item.feed_tag, ident.item.title_tag)  # fmt: skip
        result = ctx.publisher.publish(
            record, url_ids=ident.item.url_ids, guid=(payload["feed"]["id"], payload["guid_hash"]),
            expected=d.expected, event=event, bands=fp.bands, mark=mark, count_as=outcome,
            item_version=bytes.fromhex(payload.get("item_version") or "00000000"),
            routes=routes_for(ctx, record), check_owner=d.check_owner and event == "created",
        )  # fmt: skip
        if result.outcome == "published":
            failpoints.hit("worker.after_publish")
            trace.stage("publish", t_publish)
            if not payload.get("replay"):  # a replay's wait was the operator's, not ours
                trace.timings["end_to_end"] = time.time() - float(payload.get("discovered_at") or 0)
            return published(ctx, payload, record, ident, d, outcome, result.detail, trace,
                             logctx, started)  # fmt: skip
        if result.outcome in ("duplicate", "duplicate_content"):
            kind = "url" if result.outcome == "duplicate" else "content"
            return finish(ctx, payload, "duplicate", logctx, f"{kind}:{result.detail}", trace)
    return finish(ctx, payload, "failed", logctx, "publish conflict", trace)


def decide(ctx: Context, item: Item, fp: Fingerprints) -> Decision:
    """What this text is, given what is remembered (workers/dedup.py: one batched read, then a
    pure decision)."""
    return dedup.decide(dedup.read(ctx.seen, item, fp), item, fp, ctx.settings.dedup)
