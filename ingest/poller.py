"""The poller: claim due feeds, conditional GET, parse, fetch new articles, enqueue RQ jobs.

One asyncio process with bounded concurrency; any number of replicas (feeds are leased, hosts
are spaced through Redis). Feed state is saved only after the feed's new items are enqueued,
so a poller killed mid-feed leaves the feed to be polled again with nothing lost.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog
from rq import Queue, Retry

from ingest import once
from ingest.core import bodies, counters, deadletters, failpoints, observe, outcomes, timefmt
from ingest.core.keys import Keys
from ingest.core.seen import SeenStore, guid_field, url_field
from ingest.core.settings import HostLimit, Settings
from ingest.core.streams import stream_groups
from ingest.core.urls import host_of, origin_of
from ingest.feeds import feedparse, schedule
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.identity import Candidate, ItemsResult, analyse, candidate
from ingest.feeds.registry import Registry
from ingest.net.egress import NETWORK_OUTCOMES, EgressMonitor
from ingest.net.fetch import Fetcher, Response, classify_status
from ingest.net.gates import check_article
from ingest.net.hosts import HostGate
from ingest.net.robots import RobotsCache

log = structlog.get_logger("ingest.poller")

JOB_FUNC = "workers.jobs.process_batch"
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
WRITE_BATCH = 64  # feed-state saves sent per round trip (and at least once per loop tick)
SETTLE_S = 3.0
RATE_LIMITED_LAG = 1.25  # a feed that drew a Retry-After comes back this many blocks later
ERROR_BODY_BYTES = 256_000  # of an error page kept for the dead letter
# URLs we must not fetch at all: refused once, remembered for the dedup window
REFUSALS = (
    outcomes.BlockedAddress,
    outcomes.BadScheme,
    outcomes.RobotsDisallowed,
)  # network failures wait this long for the egress verdict before being charged


# Free fetch claims still held as "fetching" (never a refusal's or an enqueued item's marker).
RELEASE_CLAIMS = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == 'fetching' then n = n + redis.call('DEL', key) end
end
return n
"""


@dataclass
class PollStats:
    """This process's polls. A feed is *polled* once its poll has an outcome (what the `polls`
    counter in Redis counts too); one still waiting for its host or its answer is in flight."""

    started: int = 0
    items_new: int = 0
    enqueued: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    deferred: dict[str, int] = field(default_factory=dict)  # item deferrals, by reason
    left: dict[str, once.Left] = field(default_factory=dict)  # feed id -> what it still owes
    jobs_left: int = 0  # run --once: jobs still queued or started when the workers stopped
    once_feeds: int | None = None  # run --once: distinct feeds (a deferred feed polls again)

    def count(self, outcome: str) -> None:
        self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1

    @property
    def feeds(self) -> int:
        """Polls finished, with an outcome: the sum of `by_outcome` (for `run --once`, the
        distinct feeds it polled)."""
        done = sum(self.by_outcome.values())
        return done if self.once_feeds is None else min(done, self.once_feeds)

    @property
    def in_flight(self) -> int:
        return max(0, self.started - sum(self.by_outcome.values()))


@dataclass
class Deferral:
    """An item not fetched now, and why; it is read again when its feed is polled again."""

    reason: str  # host_deferred | rate_limited | robots_unavailable
    retry_after: float


class Poller:
    def __init__(self, settings: Settings, r: redis.Redis) -> None:
        self.settings = settings
        self.r = r
        self.keys = Keys(settings.redis.prefix)
        self.registry = Registry(r, self.keys)
        self.queue = Queue(settings.stream.queue, connection=r)
        self.bounds = schedule.Bounds(
            settings.poll.min_interval, settings.poll.max_interval, settings.poll.max_backoff
        )
        self.gate = HostGate(
            r, self.keys, HostLimit(rate=settings.poll.host_rate, inflight=settings.poll.host_inflight),
            settings.poll.host_limits, lease_s=settings.fetch.timeout + 10,
            max_wait_s=settings.poll.max_host_wait,
        )  # fmt: skip
        self.egress = EgressMonitor()
        self.seen = SeenStore(r, self.keys, settings.dedup.window_days, settings.dedup.shards)
        fetch = settings.fetch
        self.robots = (
            RobotsCache(r, self.keys, fetch.user_agent, fetch.robots_ttl, fetch.robots_retry)
            if fetch.robots
            else None
        )
        self._paused = False
        self._learn_next = 0.0
        self._redis_down = False
        self._pending: list[tuple[float, tuple[Any, ...]]] = []
        self._writes = r.pipeline(transaction=False)
        self._buffered = 0
        self.stats = PollStats()
        self._fetcher: Fetcher | None = None
        self._work = asyncio.Semaphore(settings.poll.concurrency)
        self._parsers: concurrent.futures.ThreadPoolExecutor | None = None
        self.in_progress: set[asyncio.Task[None]] = set()
        self._cancelled: list[str] = []  # feeds cancelled mid-poll at shutdown
        # fetch claims of items not enqueued (a poll cancelled, or Redis gone mid-poll): freed
        # at the next flush, so they are fetched again at once rather than after fetch_claim
        self._unclaim: list[str] = []
        self._release_claims = r.register_script(RELEASE_CLAIMS)
        self.left: dict[str, int] = {}  # what a stop left for next time

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            poll = self.settings.poll
            limits = [poll.host_inflight, *(h.inflight for h in poll.host_limits.values())]
            # Connections per origin: what the host gate lets through (0 = unlimited), 2..16.
            # The gate is the real limit; this only keeps the connector from queueing below it.
            widest = 16 if 0 in limits else max(limits)
            self._fetcher = Fetcher(self.settings.fetch, per_origin=min(max(widest, 2), 16))
        return self._fetcher

    async def aclose(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()
        if self._parsers is not None:
            self._parsers.shutdown(wait=False, cancel_futures=True)

    async def parse(self, resp: Response) -> feedparse.ParsedFeed:
        """Parse in a thread: a 9 MB feed takes seconds, and the loop must keep polling others
        and beating meanwhile (tests/test_hostile.py::test_a_huge_feed_parses_off_the_loop)."""
        if self._parsers is None:
            self._parsers = concurrent.futures.ThreadPoolExecutor(
                max(1, self.settings.poll.parse_threads), thread_name_prefix="parse"
            )
        return await asyncio.get_running_loop().run_in_executor(
            self._parsers, feedparse.parse, resp.body, resp.url, resp.content_type,
            self.settings.poll.max_items,
        )  # fmt: skip

    # ---------------------------------------------------------------- loops

    async def run_once(
        self, only: list[str] | None = None, deadline: float | None = None
    ) -> PollStats:
        """Poll every registered feed (or those of `only`) once, whatever its due time. With a
        `deadline` (seconds from now), then poll the deferred feeds again as they come due
        (`ingest/once.py`) until nothing is left or nothing left can be done before it; what
        is still left is in `stats.left`."""
        end = time.time() + (deadline or 0)
        ids = self.registry.claim_due(
            limit=1_000_000, lease=self.settings.poll.lease, everything=True
        )
        if only is not None:
            wanted = set(only)
            self.registry.release([fid for fid in ids if fid not in wanted])
            ids = [fid for fid in ids if fid in wanted]
        first_round = len(ids)
        while ids:
            states = self.registry.get_many(ids)
            await asyncio.gather(
                *(self.poll_feed(f, st) for f, st in zip(ids, states, strict=True))
            )
            self.settle(force=True)
            self.flush()
            ids = []
            while deadline and self.stats.left and not ids:
                ids, wake = once.next_round(self.stats.left, time.time(), end)
                if not ids and wake is None:
                    break
                if wake is not None:
                    await asyncio.sleep(max(0.05, wake - time.time()))
            if ids:  # ours again for this round, as a claim would make them
                lease = time.time() + self.settings.poll.lease
                for fid in ids:
                    self.registry.save(fid, {}, lease, self._writes)
                self.flush()
        self.stats.once_feeds = first_round  # feeds, not polls
        return self.stats

    async def run_forever(self, stop: asyncio.Event, grace: float | None = None) -> None:
        """Keep up to `poll.concurrency` feeds in progress; claim more as each one finishes, so
        one slow server never holds up the rest. On stop, claim nothing more and give the feeds
        in progress `grace` seconds (default `run.shutdown_grace`); then cancel them: their
        feeds are due again at once and the items they had claimed are free to be fetched
        again (`stopped`, in `self.left`)."""
        self.in_progress = running = set[asyncio.Task[None]]()
        stopped = asyncio.ensure_future(stop.wait())  # wakes the loop the moment stop is set
        pause = 0.5
        while not stop.is_set():
            try:
                self.heartbeat()
                self.settle()
                self.flush()
                room = self.settings.poll.concurrency - len(running)
                ids: list[str] = []
                if room > 0 and not self.backpressure():
                    ids = self.registry.claim_due(limit=room, lease=self.settings.poll.lease)
                states = self.registry.get_many(ids) if ids else []
            except REDIS_DOWN as exc:
                # Wait it out: log the change of state once, not every attempt; feeds in
                # progress stop at their next Redis call and their leases bring them back.
                if not self._redis_down:
                    log.warning("redis_unavailable", stage="poll", error=str(exc)[:200])
                    self._redis_down = True
                self._writes.reset()
                await _sleep_or_stop(stop, pause)
                pause = min(pause * 2, 30.0)
                continue
            if self._redis_down:
                log.info("redis_available", stage="poll")
                self._redis_down, pause = False, 0.5
            running.update(
                asyncio.create_task(self.poll_feed(fid, st))
                for fid, st in zip(ids, states, strict=True)
            )
            if running:
                await asyncio.wait(
                    [*running, stopped], timeout=1.0, return_when=asyncio.FIRST_COMPLETED
                )
                running.difference_update([t for t in running if t.done()])
            elif not ids:
                await _sleep_or_stop(stop, 1.0)
        stopped.cancel()
        grace = self.settings.run.shutdown_grace if grace is None else grace
        if running:
            _done, pending = await asyncio.wait(running, timeout=max(grace, 0.0))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self.left["feeds_cancelled"] = len(pending)
        with contextlib.suppress(*REDIS_DOWN):
            self.settle(force=True)
            self.flush()
            self.registry.release(self._cancelled)
            self.left["feeds_released"], self._cancelled = len(self._cancelled), []

    def flush(self) -> None:
        """Send the buffered feed-state saves and slot releases in one round trip. Losing them
        (a crash) loses no item: items are enqueued before their feed's state is saved, and the
        feed's lease brings it back to be polled again."""
        self.gate.flush(self._writes)
        if len(self._writes):
            self._writes.execute()
        self._buffered = 0
        if self._unclaim:
            released = self._release_claims(keys=self._unclaim)
            self.left["items_released"] = self.left.get("items_released", 0) + int(released)
            self._unclaim = []

    def settle(self, force: bool = False) -> None:
        """Finish the feeds whose network failures waited for the egress verdict: by now the
        monitor has heard from the other origins polled at the same time."""
        now = time.monotonic()
        keep = []
        for at, args in self._pending:
            if force or now - at >= SETTLE_S:
                self._finish(*args)
            else:
                keep.append((at, args))
        self._pending = keep

    def heartbeat(self) -> None:
        self.r.set(self.keys.k("poller", "heartbeat"), f"{time.time():.0f}", ex=120)
        now = time.monotonic()
        if now >= self._learn_next:  # the topic-model refit's schedule (workers/learn.py)
            self._learn_next = now + 60
            from workers import learn

            learn.maybe_schedule(self.settings, self.r, self.queue)

    def backpressure(self) -> bool:
        """True while downstream is behind: the articles queue or a consumer group's lag is over
        its high-water mark. Paused pollers claim no feeds, so nothing is read and then dropped;
        the feeds simply wait in the schedule. Logged once per change, not once per check."""
        depth = self.queue.count
        lag = max((g["lag"] or 0 for g in stream_groups(self.r, self.keys.articles)), default=0)
        paused = (
            depth > self.settings.poll.queue_high_water or lag > self.settings.poll.lag_high_water
        )
        if paused != self._paused:
            log.warning("backpressure", stage="poll", outcome="paused" if paused else "resumed",
                        queue_depth=depth, consumer_lag=lag)  # fmt: skip
            self._paused = paused
        return paused

    # ---------------------------------------------------------------- one feed

    async def poll_feed(self, fid: str, state: dict[str, str]) -> None:
        # an outage is reported by the main loop; the feed's lease brings it back
        try:
            with contextlib.suppress(*REDIS_DOWN):
                await self._poll_feed(fid, state)
        except asyncio.CancelledError:
            self._cancelled.append(fid)
            raise

    async def _poll_feed(self, fid: str, state: dict[str, str]) -> None:
        async with self._work:
            spec = self.registry.spec_from(state)
            if spec is None:
                return
            self.stats.started += 1
            try:
                outcome, fields, hint, new = await self._poll(spec, state)
            except Exception as exc:  # a bug must cost one feed one poll, not the poller
                log.exception("poll_crashed", feed_url=spec.url, stage="poll")
                outcome, fields, hint, new = "failed", {"last_error": repr(exc)[:300]}, None, 0
            if outcome in NETWORK_OUTCOMES:
                self._pending.append(
                    (time.monotonic(), (fid, spec, state, outcome, fields, hint, new))
                )
            else:
                self._finish(fid, spec, state, outcome, fields, hint, new)

    async def _poll(
        self, spec: FeedSpec, state: dict[str, str]
    ) -> tuple[str, dict[str, Any], float | None, int]:
        headers = {"Accept": "application/rss+xml, application/atom+xml, application/feed+json, "
                             "application/xml;q=0.9, */*;q=0.8"}  # fmt: skip
        if state.get("etag"):
            headers["If-None-Match"] = state["etag"]
        if state.get("last_modified"):
            headers["If-Modified-Since"] = state["last_modified"]
        try:
            resp = await self._get(spec.url, headers)
            if resp.status == 304:
                return "not_modified", {}, schedule.cache_hint(resp.headers), 0
            classify_status(resp)
        except outcomes.FetchError as exc:
            return exc.outcome, {"last_error": str(exc)[:300], "_exc": exc}, None, 0
        fields: dict[str, Any] = {
            "etag": resp.headers.get("etag", ""),
            "last_modified": resp.headers.get("last-modified", ""),
            "body_hash": hashlib.sha256(resp.body).hexdigest()[:16],
        }
        hint = schedule.cache_hint(resp.headers)
        if fields["body_hash"] == state.get("body_hash"):
            return "unchanged", fields, hint, 0  # a server ignoring conditional GET: no item work
        try:
            parsed = await self.parse(resp)
        except outcomes.FetchError as exc:
            return exc.outcome, {"last_error": str(exc)[:300], "_exc": exc}, hint, 0
        if parsed.ttl_minutes:
            hint = max(hint or 0, parsed.ttl_minutes * 60)
        if parsed.title and not spec.title:
            spec.title = parsed.title
            fields["title"] = parsed.title
        if parsed.language and not spec.language:
            fields["feed_language"] = parsed.language
            spec.language = parsed.language
        # Items deferred by an earlier poll come back even if the feed no longer lists them.
        holding = state.get("deferred_items") not in (None, "", "0")
        held = self._held(spec.id) if holding else []
        res = await self.handle_items(spec, parsed.items, state, held)
        if holding or res.waiting:
            self._hold(spec.id, res.waiting)
        fields["guid_mode"] = res.mode
        fields["shared_links"] = res.shared_links  # links told apart by title (identity.py)
        if not state.get("rate"):  # not watched yet: the items' own dates tell the cadence
            fields["_dated_rate"] = schedule.rate_from_dates(
                [timefmt.to_ts(i.published_at) for i in parsed.items if i.published_at], time.time()
            )
        if res.deferred:
            # Items left for later: forget the validators and the body hash so the next poll
            # reads them again, and come back when the host has a slot.
            fields.update(etag="", last_modified="", body_hash="")
            fields["_retry_in"] = res.deferred_for
            fields["_deferred"] = res.deferred
            return "deferred", fields, hint, res.new
        return "ok", fields, hint, res.new

    def _finish(
        self, fid: str, spec: FeedSpec, state: dict[str, str], outcome: str,
        fields: dict[str, Any], hint: float | None, new: int,
    ) -> None:  # fmt: skip
        now = time.time()
        exc = fields.pop("_exc", None)
        retry_in = fields.pop("_retry_in", None)
        deferred: dict[str, int] = fields.pop("_deferred", None) or {}
        dated_rate = fields.pop("_dated_rate", None)
        errors = int(state.get("errors") or 0)
        last = float(state.get("last_polled") or 0)
        rate = float(state["rate"]) if state.get("rate") else None
        ok = outcome in ("ok", "not_modified", "unchanged", "deferred")
        until = 0.0  # a deferral's earliest retry (unix time), for run --once
        if ok:
            errors = 0
            prior = schedule.default_rate(self.settings.poll.default_interval)
            rate = schedule.update_rate(rate if rate is not None else dated_rate, new,
                                        now - last if last else 0, prior)  # fmt: skip
            interval = schedule.interval_for(
                rate, self.bounds, self.settings.poll.default_interval, hint
            )
            # Deferred items: back as soon as the host is free, not after min_interval.
            delay = min(interval, max(retry_in, 1.0)) if retry_in else interval
            if rate is not None:
                fields["rate"] = f"{rate:.4f}"
            fields["interval"] = f"{interval:.0f}"
            fields["last_error"] = ""
            fields["deferred_items"] = sum(deferred.values())  # waiting now (status, metrics)
            if deferred:
                until = now + (retry_in or 0)
                fields["deferred_until"] = f"{until:.0f}"
        else:
            interval = float(state.get("interval") or self.settings.poll.default_interval)
            blameless = isinstance(exc, outcomes.FetchError) and exc.blameless
            if not blameless and outcome in NETWORK_OUTCOMES and self.egress.down():
                # Every origin is failing at network level: our egress, not this feed.
                blameless, outcome = True, "egress_down"
                fields["last_error"] = "egress down: " + str(fields.get("last_error", ""))
            if outcome == "egress_down":
                delay = self.bounds.min_interval
            elif blameless:
                delay = schedule.backoff(max(errors, 1), interval, self.bounds)
            else:
                errors += 1
                delay = schedule.backoff(errors, interval, self.bounds)
            if isinstance(exc, outcomes.HostDeferred):
                until = now + exc.retry_after
                delay = exc.retry_after  # the host is free then: not a failure to back off from
            if isinstance(exc, outcomes.RateLimited):
                self.gate.defer(host_of(spec.url), exc.retry_after)
                # A quarter of the block later than the work it deferred (which comes back when
                # the block ends), so this feed's next 429 does not re-arm it before their turn.
                until = now + exc.retry_after * RATE_LIMITED_LAG
                delay = max(delay, exc.retry_after * RATE_LIMITED_LAG)
        permanent = outcome == "gone" or (isinstance(exc, outcomes.DNSError) and exc.permanent)
        # A 410 says itself that it is permanent (RFC 9110 15.5.11): `gone` at once and probed
        # at max_backoff, not backed off step by step like a transient error; 404 needs three.
        said_gone = isinstance(exc, outcomes.Gone) and exc.status == 410
        if said_gone:
            delay = self.bounds.max_backoff
        gone = said_gone or (permanent and errors >= 3)
        fields.update(
            errors=errors,
            health=schedule.health(errors, gone),
            last_polled=f"{now:.0f}",
            last_outcome=outcome,
            items_seen=int(state.get("items_seen") or 0) + new,
        )
        if new or not state.get("last_new_at"):
            fields["last_new_at"] = f"{now:.0f}"
        changed = {k: v for k, v in fields.items() if state.get(k) != str(v)}
        self.registry.save(fid, changed, now + schedule.jitter(delay), self._writes)
        counters.incr(self._writes, self.keys, "polls", outcome)
        self._buffered += 1
        if self._buffered >= WRITE_BATCH:
            self.flush()
        self.stats.count(outcome)
        if deferred:
            for reason, n in deferred.items():
                counters.incr(self._writes, self.keys, "deferred", reason, n)
                self.stats.deferred[reason] = self.stats.deferred.get(reason, 0) + n
        if until:
            self.stats.left[fid] = once.Left(spec.url, host_of(spec.url), outcome, until, deferred)
        else:
            self.stats.left.pop(fid, None)
        if outcome == "deferred":
            log.info("feed_polled", feed_url=spec.url, stage="poll", outcome=outcome,
                     new_items=new, deferred_items=sum(deferred.values()), deferred_by=deferred,
                     deferred_until=timefmt.from_ts(until), errors=errors, next_in=round(delay))  # fmt: skip
        else:
            log.info("feed_polled", feed_url=spec.url, stage="poll", outcome=outcome,
                     new_items=new, errors=errors, next_in=round(delay))  # fmt: skip

    async def _get(
        self, url: str, headers: dict[str, str] | None = None,
        on_redirect: Callable[[str], Awaitable[None]] | None = None, hold: bool = True,
    ) -> Response:  # fmt: skip
        host = host_of(url)
        try:
            async with self.gate.turn(host, hold=hold):
                resp = await self.fetcher.get(url, headers, on_redirect)
        except outcomes.HostDeferred:
            raise
        except outcomes.FetchError as exc:
            self.egress.record(origin_of(url), exc.outcome)
            raise
        self.egress.record(origin_of(url), "ok")
        return resp

    # ---------------------------------------------------------------- items

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
                "fetching",
                nx=True,
                ex=self.settings.poll.fetch_claim,
            )
        claimed = pipe.execute()
        fresh = [c for c, ok in zip(unseen, claimed, strict=True) if ok]
        if not fresh:
            return res
        try:
            results = await asyncio.gather(*(self._article(spec, c) for c in fresh))
        except (asyncio.CancelledError, *REDIS_DOWN):
            self._unclaim += [self.keys.inflight(c.claim) for c in fresh]
            raise
        payloads = [p for p in results if isinstance(p, dict)]
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

    async def _article(self, spec: FeedSpec, cand: Candidate) -> dict[str, Any] | Deferral | None:
        """The job payload; None when refused; a Deferral when it must wait (busy host,
        robots.txt unavailable)."""
        item, link, aid = cand.item, cand.link, cand.link_id
        discovered = time.time()
        page: dict[str, Any] = {"url": link, "status": 0, "content_type": "", "html_z": None,
                                "outcome": "ok", "error": ""}  # fmt: skip
        resp: Response | None = None
        try:
            if cand.identity:
                # Items sharing one link (a homepage): the page is not the story, the feed is.
                raise outcomes.NotArticle("link shared by several items", url=link)
            if self.robots is not None:
                await self.robots.check(link, self._get)
            # robots.txt is asked about every redirect hop's target too, before it is fetched
            resp = await self._get(link, on_redirect=self._robots_hop if self.robots else None)
            page.update(url=resp.url, status=resp.status, content_type=resp.content_type)
            page["fetch_ms"] = round(resp.elapsed * 1000)
            classify_status(resp)
            check_article(resp.content_type, resp.body, resp.url)
            page["html_z"] = bodies.pack(resp.body)
        except outcomes.HostDeferred as exc:  # busy host, unanswered robots.txt: later, not lost
            return Deferral(exc.outcome, float(exc.retry_after))
        except outcomes.RateLimited as exc:
            self.gate.defer(host_of(exc.url or link), exc.retry_after)
            return Deferral(exc.outcome, float(exc.retry_after))
        except outcomes.FetchError as exc:
            page.update(outcome=exc.outcome, error=str(exc)[:300])
            if isinstance(exc, REFUSALS):
                self._refuse(spec, link, cand.claim, exc)
                return None
            if resp is not None and resp.body and not isinstance(exc, outcomes.NotHTML):
                # the error page itself (a challenge, a 500 page) goes to the dead letter
                page["error_z"] = bodies.pack(resp.body[:ERROR_BODY_BYTES])
        log.debug("article_fetched", feed_url=spec.url, article_id=aid, stage="fetch",
                  outcome=page["outcome"])  # fmt: skip
        return {
            "feed": {
                "id": spec.id,
                "url": spec.url,
                "title": spec.title,
                "tags": spec.tags,
                "language": spec.language,
                "topic": spec.topic,
            },
            "item": item.to_dict(),
            "link": link,
            "link_id": aid,
            "guid_hash": cand.guid_hash,
            "identity": cand.identity,
            "furniture": list(cand.furniture),  # recurring lines of the feed (identity.py)
            "item_version": cand.version.hex(),
            "claim": cand.claim,
            "page": page,
            "discovered_at": discovered,
            "fetched_at": timefmt.now(),
        }

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
            self._writes.expire(key, int(self.settings.dedup.window_days * 86400))

    async def _robots_hop(self, url: str) -> None:
        """robots.txt for a redirect's target. Its fetch takes no in-flight slot: this article
        holds one at a host that may be the same, and would otherwise wait for itself."""
        assert self.robots is not None

        async def get(robots_url: str) -> Response:
            return await self._get(robots_url, hold=False)

        await self.robots.check(url, get)

    def _refuse(self, spec: FeedSpec, link: str, aid: str, exc: outcomes.FetchError) -> None:
        """A URL we must not fetch: counted, dead-lettered, and not retried for the window."""
        ttl = int(self.settings.dedup.window_days * 86400)
        pipe = self.r.pipeline()
        pipe.set(self.keys.inflight(aid), exc.outcome, ex=ttl)
        counted = "robots_disallowed" if isinstance(exc, outcomes.RobotsDisallowed) else "blocked"
        counters.incr(pipe, self.keys, "articles", counted)
        observe.trace(pipe, self.keys, aid.split(":")[0], {
            "listed_at": time.time(), "feed_url": spec.url, "link": link,
            "fetch": {"outcome": exc.outcome, "error": str(exc)}, "outcome": exc.outcome,
            "detail": str(exc), "at": time.time(),
        }, self.settings.stream.trace_ttl)  # fmt: skip
        deadletters.refused(pipe, self.keys, exc.outcome, url=link, feed_url=spec.url, claim=aid,
                            detail=str(exc))  # fmt: skip
        pipe.execute()
        log.warning("article_refused", feed_url=spec.url, article_id=aid, url=link,
                    stage="fetch", outcome=exc.outcome, reason=str(exc))  # fmt: skip

    def enqueue(self, payloads: list[dict[str, Any]]) -> None:
        """Enqueue in batches; the in-flight markers and the page bodies go in the same
        transaction as the jobs. Bodies travel beside the job, not in it: RQ compresses and
        re-saves a job's arguments (again when it finishes), which for pages already compressed
        is CPU spent for nothing, twice."""
        size = max(1, self.settings.worker.batch_size)
        inflight_ttl = 6 * 3600
        for start in range(0, len(payloads), size):
            batch = payloads[start : start + size]
            bodies: dict[str, bytes] = {}
            for p in batch:
                body_z = p["page"].pop("html_z", None)
                if body_z:
                    bodies[self.keys.page(p["claim"])] = body_z
                    p["page"]["stored"] = True
            with self.r.pipeline() as pipe:
                # retry: a job whose worker died (its heartbeat lapsed) is run again, not failed
                self.queue.enqueue_call(
                    JOB_FUNC, args=(batch,), timeout=self.settings.worker.job_timeout,
                    result_ttl=60, failure_ttl=7 * 86400, pipeline=pipe, retry=Retry(max=3),
                )  # fmt: skip
                for p in batch:
                    pipe.set(self.keys.inflight(p["claim"]), "queued", ex=inflight_ttl)
                for key, body_z in bodies.items():
                    pipe.set(key, body_z, ex=inflight_ttl)
                pipe.execute()
            self.stats.enqueued += len(batch)



async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
