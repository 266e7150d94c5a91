"""How an article's trip ends, in one pipeline each: published (its in-flight marker cleared,
a new story archived for the next refit, the trace written, the cross-site canonical claim it
was merged on remembered) or not (`finish`: counted, its in-flight marker set to the outcome,
the trace written, a dead letter when it failed). Either way one log line says what happened."""

from __future__ import annotations

import time
from typing import Any

import structlog

from ingest.core import counters, deadletters
from ingest.core.job import ArticleJob
from ingest.core.seen import claim_field
from workers import learn
from workers.context import Context
from workers.dedup import Decision
from workers.identify import Identity
from workers.trace import Trace

log = structlog.get_logger("workers.pipeline")


def published(
    ctx: Context, payload: ArticleJob, record: dict[str, Any], ident: Identity, d: Decision,
    outcome: str, stream_id: str, trace: Trace, logctx: dict[str, Any], started: float,
) -> str:  # fmt: skip
    """`outcome`: published | updated | near_duplicate_published."""
    aid, ms = ident.aid, round((time.monotonic() - started) * 1000)  # up to the publication
    pipe = ctx.r.pipeline(transaction=False)
    pipe.delete(ctx.keys.inflight(payload.get("claim") or payload["link_id"]))
    if d.event == "created":  # a new story (not a near-copy): what the next refit learns from
        learn.archive(pipe, ctx.keys, ctx.settings.classify, record["language"],
                      record["title"], record["text"])  # fmt: skip
    trace.write(pipe, ctx.keys, outcome, {"stream_id": stream_id, "article_id": aid,
                                          "canonical_url": ident.canonical}, [aid])  # fmt: skip
    claim = ident.item.canonical_id
    if claim and d.duplicate_of == claim:  # the copy named its original: remember the claim
        ctx.seen.put(pipe, claim_field(claim), bytes.fromhex(aid))
    pipe.execute()
    log.info("article_published", **logctx, stage="publish", outcome=outcome, stream_id=stream_id,
             method=record["extraction"]["method"], ms=ms,
             duplicate_of=d.duplicate_of)  # fmt: skip
    return outcome


def finish(
    ctx: Context, payload: ArticleJob, outcome: str, logctx: dict[str, Any], detail: str = "",
    trace: Trace | None = None,
) -> str:  # fmt: skip
    """A terminal outcome other than publication: counted, remembered, dead-lettered if failed.
    A replay that does not publish changes nothing: its letter, counters and trace stay as the
    first run left them, so replaying again is idempotent."""
    skipped = outcome in ("duplicate", "near_duplicate")  # the story is in the stream already
    if payload.get("replay"):
        log.info("replay_unchanged", **logctx, outcome=outcome, detail=detail,
                 letter=payload["replay"])  # fmt: skip
        return outcome
    pipe = ctx.r.pipeline()
    (trace or Trace(payload, ctx.settings.stream.trace_ttl)).write(
        pipe, ctx.keys, outcome, {"detail": detail}
    )
    inflight = ctx.keys.inflight(payload.get("claim") or payload["link_id"])
    pipe.set(inflight, outcome, ex=ctx.settings.dedup.window_s)
    counters.incr(pipe, ctx.keys, "articles", outcome)
    if not skipped:
        deadletters.write(
            pipe, ctx.keys, deadletters.DeadLetter.of_payload(payload, outcome, detail)
        )
    pipe.execute()
    log.info("article_skipped" if skipped else "article_failed", **logctx,
             stage="dedup" if skipped else "extract", outcome=outcome, detail=detail)  # fmt: skip
    return outcome
