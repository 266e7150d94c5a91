"""The run loops: claim due feeds, keep `poll.concurrency` polls in progress, write each poll's
outcome (decided by `schedule.after_poll`), beat, pause under backpressure, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from ingest import once
from ingest.core import counters, timefmt
from ingest.core.streams import stream_groups
from ingest.core.urls import host_of
from ingest.feeds import schedule
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.schedule import PollResult
from ingest.net.egress import NETWORK_OUTCOMES
from ingest.poller.base import REDIS_DOWN, Unsettled
from ingest.poller.feed import FeedPoller
from ingest.poller.stats import PollStats

log = structlog.get_logger("ingest.poller")

WRITE_BATCH = 64  # feed-state saves sent per round trip (and at least once per loop tick)
SETTLE_S = 3.0  # network failures wait this long for the egress verdict before being charged


class Poller(FeedPoller):
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
            released = self._release_claims(keys=self._unclaim, args=[self.claim_mark])
            self.left["items_released"] = self.left.get("items_released", 0) + int(released)
            self._unclaim = []

    def settle(self, force: bool = False) -> None:
        """Finish the feeds whose network failures waited for the egress verdict: by now the
        monitor has heard from the other origins polled at the same time."""
        now = time.monotonic()
        keep = []
        for waiting in self._pending:
            if force or now - waiting.at >= SETTLE_S:
                self._finish(waiting.fid, waiting.spec, waiting.state, waiting.result)
            else:
                keep.append(waiting)
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
                result = await self._poll(spec, state)
            except Exception as exc:  # a bug must cost one feed one poll, not the poller
                log.exception("poll_crashed", feed_url=spec.url, stage="poll")
                result = PollResult("failed", {"last_error": repr(exc)[:300]})
            if result.outcome in NETWORK_OUTCOMES:
                self._pending.append(Unsettled(time.monotonic(), fid, spec, state, result))
            else:
                self._finish(fid, spec, state, result)

    def _finish(self, fid: str, spec: FeedSpec, state: dict[str, str], result: PollResult) -> None:
        """Write what `schedule.after_poll` decided: the feed's state and next due time
        (buffered), the counters, this process's stats, and one `feed_polled` line."""
        now = time.time()
        egress_down = result.outcome in NETWORK_OUTCOMES and self.egress.down()
        nxt = schedule.after_poll(state, result, egress_down, self.bounds, now)
        host = host_of(spec.url)
        if nxt.defer_host_for is not None and host:  # "" is no host: nothing to hold back
            self.gate.defer(host, nxt.defer_host_for)
        self.registry.save(fid, nxt.changes, now + schedule.jitter(nxt.delay), self._writes)
        counters.incr(self._writes, self.keys, "polls", nxt.outcome)
        self._buffered += 1
        if self._buffered >= WRITE_BATCH:
            self.flush()
        self.stats.count(nxt.outcome, fid)
        deferred = result.deferred
        for reason, n in deferred.items():
            counters.incr(self._writes, self.keys, "deferred", reason, n)
            self.stats.deferred[reason] = self.stats.deferred.get(reason, 0) + n
        if nxt.until:
            self.stats.left[fid] = once.Left(spec.url, host, nxt.outcome, nxt.until, deferred)
        else:
            self.stats.left.pop(fid, None)
        if nxt.outcome == "deferred":
            log.info("feed_polled", feed_url=spec.url, stage="poll", outcome=nxt.outcome,
                     new_items=result.new, deferred_items=sum(deferred.values()),
                     deferred_by=deferred, deferred_until=timefmt.from_ts(nxt.until),
                     errors=nxt.errors, next_in=round(nxt.delay))  # fmt: skip
        else:
            log.info("feed_polled", feed_url=spec.url, stage="poll", outcome=nxt.outcome,
                     new_items=result.new, errors=nxt.errors, next_in=round(nxt.delay))  # fmt: skip


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
