"""A feed's items: which are new (seen state), claiming them for the fetch, fetching their pages
(robots.txt, host turns, content gates), refusing the URLs we must not fetch, and holding the
items deferred for later."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

import structlog

from ingest.core import bodies, counters, deadletters, failpoints, observe, outcomes
from ingest.core.job import ArticleJob, new_page
from ingest.core.seen import guid_field, url_field
from ingest.core.urls import host_of, redact_url
from ingest.feeds import feedparse
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.identity import Candidate, analyse, candidate
from ingest.net.fetch import Response, classify_status
from ingest.net.gates import check_article
from ingest.poller.base import REDIS_DOWN
from ingest.poller.enqueue import Enqueuer, job_payload

log = structlog.get_logger("ingest.poller")

ERROR_BODY_BYTES = 256_000  # of an error page kept for the dead letter
# URLs we must not fetch at all: refused once, remembered for the dedup window
REFUSALS = (outcomes.BlockedAddress, outcomes.BadScheme, outcomes.RobotsDisallowed)


@dataclass
class ItemsResult:
    """What handling a feed's items found: the poll's item counts, its deferrals and its
    identity mode (feeds/schedule.py's PollResult carries them on)."""

    mode: str = "guid"
    shared_links: int = 0
    new: int = 0
    deferred_for: float = 0.0  # >0: some items wait for a busy host, poll again within this
    deferred: dict[str, int] = field(default_factory=dict)  # items left for later, by reason
    waiting: dict[str, feedparse.FeedItem] = field(default_factory=dict)  # those items, by link id
    elsewhere: int = 0  # unseen items another poll holds a fetch claim on (maybe a dead one's)


@dataclass
class Deferral:
    """An item not fetched now, and why; it is read again when its feed is polled again."""

    reason: str  # host_deferred | rate_limited | robots_unavailable
    retry_after: float


class ArticleFetcher(Enqueuer):
    async def handle_items(
        self, spec: FeedSpec, items: list[feedparse.FeedItem], state: dict[str, str],
        held: list[feedparse.FeedItem] | None = None,
    ) -> ItemsResult:  # fmt: skip
        """`held`: items an earlier poll deferred, after the document's own (whose version of
        an item wins); they do not count toward the feed's identity mode."""
        fid = spec.id
        doc = analyse(items, state.get("guid_mode", "guid"))
        res = ItemsResult(mode=doc.mode, shared_links=len(doc.shared))
        if res.mode != state.get("guid_mode", "guid"):
            log.warning("feed_identity_degraded", feed_url=spec.url, stage="poll", mode=res.mode)
        candidates: list[Candidate] = []
        seen_in_doc: set[str] = set()
        for item in [*items, *(held or [])]:
            cand = candidate(item, doc)
            if cand is None:
                counters.incr(self.r, self.keys, "articles", "no_link")
                continue
            cand.furniture = doc.furniture
            if cand.link_id in seen_in_doc:
                continue
            seen_in_doc.add(cand.link_id)
            candidates.append(cand)
        if not candidates:
            return res
        fields = []
        for cand in candidates:
            fields += [url_field(cand.link_id), guid_field(fid, cand.guid_hash)]
        marks = self.seen.get_many(fields)
        unseen = []
        for i, cand in enumerate(candidates):
            url_mark, guid_mark = marks[2 * i], marks[2 * i + 1]
            if url_mark is None and guid_mark is None:
                unseen.append(cand)
            elif guid_mark is not None and bytes(guid_mark) != cand.version:
                # This feed lists the item with new words: fetch again; the worker tells a
                # correction (published as `updated`) from a trivial change.
                cand.claim = f"{cand.link_id}:{cand.version.hex()}"
                unseen.append(cand)
        # Claim each unseen item for the fetch (SET NX): a story listed by two feeds, or polled
        # by two pollers at once, is fetched once. The claim expires, so a poller that dies
        # here costs a delay, not the item (its feed state is saved only after enqueueing).
        pipe = self.r.pipeline(transaction=False)
        for cand in unseen:
            pipe.set(
                self.keys.inflight(cand.claim),
                self.claim_mark,
                nx=True,
                ex=self.settings.poll.fetch_claim,
            )
        claimed = pipe.execute()
        fresh = [c for c, ok in zip(unseen, claimed, strict=True) if ok]
        taken = [self.keys.inflight(c.claim) for c, ok in zip(unseen, claimed, strict=True) if not ok]
        if taken:  # another poller is fetching them now, or was and died: not ours to count on
            values: list[bytes | None] = self.r.mget(taken)  # type: ignore[assignment]
            res.elsewhere = sum(
                1 for v in values if v and v.startswith(b"fetching") and v != self.claim_mark
            )
        if not fresh:
            return res
        try:
            results = await asyncio.gather(*(self._article(spec, c) for c in fresh))
        except (asyncio.CancelledError, *REDIS_DOWN):
            self._unclaim += [self.keys.inflight(c.claim) for c in fresh]
            raise
        payloads = [p for p in results if p is not None and not isinstance(p, Deferral)]
        failpoints.hit("poller.before_enqueue")
        deferred = [c for c, p in zip(fresh, results, strict=True) if isinstance(p, Deferral)]
        if deferred:
            # Not fetched now (host busy, robots.txt unavailable): release the claims so the
            # next poll takes them again; the feed's body hash is not saved until then.
            self.r.delete(*(self.keys.inflight(c.claim) for c in deferred))
            waits = [p for p in results if isinstance(p, Deferral)]
            res.deferred_for = max(p.retry_after for p in waits)
            for p in waits:
                res.deferred[p.reason] = res.deferred.get(p.reason, 0) + 1
            res.waiting = {c.link_id: c.item for c in deferred}
        before = self.stats.enqueued
        try:
            self.enqueue(payloads)
        except REDIS_DOWN:
            done = self.stats.enqueued - before  # batches go in order: these made it
            self._unclaim += [self.keys.inflight(p["claim"]) for p in payloads[done:]]
            raise
        res.new = len(fresh) - len(deferred)
        self.stats.items_new += res.new
        return res

    async def _article(self, spec: FeedSpec, cand: Candidate) -> ArticleJob | Deferral | None:
        """The job payload; None when refused; a Deferral when it must wait (busy host,
        robots.txt unavailable)."""
        link = cand.link
        discovered = time.time()
        page = new_page(link)
        resp: Response | None = None
        try:
            if cand.identity:
                # Items sharing one link (a homepage): the page is not the story, the feed is.
                raise outcomes.NotArticle("link shared by several items", url=link)
            if self.robots is not None:
                await self.robots.check(link, self._get)
            # robots.txt is asked about every redirect hop's target too, before it is fetched
            resp = await self._get(link, on_redirect=self._robots_hop if self.robots else None)
            page["url"], page["status"], page["content_type"] = resp.url, resp.status, resp.content_type
            page["fetch_ms"] = round(resp.elapsed * 1000)
            classify_status(resp)
            check_article(resp.content_type, resp.body, resp.url)
            page["html_z"] = bodies.pack(resp.body)
        except outcomes.HostDeferred as exc:  # busy host, unanswered robots.txt: later, not lost
            return Deferral(exc.outcome, float(exc.retry_after))
        except outcomes.RateLimited as exc:
            host = host_of(exc.url or link)
            if host:  # a 429 came from a host we read; "" would hold every unreadable URL
                self.gate.defer(host, exc.retry_after)
            return Deferral(exc.outcome, float(exc.retry_after))
        except outcomes.FetchError as exc:
            page["outcome"], page["error"] = exc.outcome, str(exc)[:300]
            if isinstance(exc, REFUSALS):
                self._refuse(spec, link, cand.claim, exc)
                return None
            if resp is not None and resp.body and not isinstance(exc, outcomes.NotHTML):
                # the error page itself (a challenge, a 500 page) goes to the dead letter
                page["error_z"] = bodies.pack(resp.body[:ERROR_BODY_BYTES])
        log.debug("article_fetched", feed_url=spec.url, article_id=cand.link_id, stage="fetch",
                  outcome=page["outcome"])  # fmt: skip
        return job_payload(spec, cand, page, discovered)

    def _held(self, fid: str) -> list[feedparse.FeedItem]:
        raw = self.r.hvals(self.keys.feed_deferred(fid))
        held = []
        for value in raw:
            with contextlib.suppress(ValueError, TypeError):
                held.append(feedparse.FeedItem(**json.loads(value)))
        return held

    def _hold(self, fid: str, waiting: dict[str, feedparse.FeedItem]) -> None:
        """Keep the deferred items until they are handled (the dedup window at most)."""
        key = self.keys.feed_deferred(fid)
        self._writes.delete(key)
        if waiting:
            self._writes.hset(key, mapping={k: json.dumps(i.to_dict()) for k, i in waiting.items()})
            self._writes.expire(key, self.settings.dedup.window_s)

    async def _robots_hop(self, url: str) -> None:
        """robots.txt for a redirect's target. Its fetch takes no in-flight slot: this article
        holds one at a host that may be the same, and would otherwise wait for itself."""
        assert self.robots is not None

        async def get(robots_url: str) -> Response:
            return await self._get(robots_url, hold=False)

        await self.robots.check(url, get)

    def _refuse(self, spec: FeedSpec, link: str, aid: str, exc: outcomes.FetchError) -> None:
        """A URL we must not fetch: counted, dead-lettered, and not retried for the window."""
        ttl = self.settings.dedup.window_s
        feed_url = redact_url(spec.url)  # a password in the feed's URL stays in the registry
        pipe = self.r.pipeline()
        pipe.set(self.keys.inflight(aid), exc.outcome, ex=ttl)
        counted = "robots_disallowed" if isinstance(exc, outcomes.RobotsDisallowed) else "blocked"
        counters.incr(pipe, self.keys, "articles", counted)
        observe.trace(pipe, self.keys, aid.split(":")[0], {
            "listed_at": time.time(), "feed_url": feed_url, "link": link,
            "fetch": {"outcome": exc.outcome, "error": str(exc)}, "outcome": exc.outcome,
            "detail": str(exc), "at": time.time(),
        }, self.settings.stream.trace_ttl)  # fmt: skip
        deadletters.refused(pipe, self.keys, exc.outcome, url=link, feed_url=feed_url, claim=aid,
                            detail=str(exc))  # fmt: skip
        pipe.execute()
        log.warning("article_refused", feed_url=spec.url, article_id=aid, url=link,
                    stage="fetch", outcome=exc.outcome, reason=str(exc))  # fmt: skip
