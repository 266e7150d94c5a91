"""One feed's poll: conditional GET, parse (in a thread), the items handed to articles.py, and
what the poll found as a typed `PollResult` (ingest/feeds/schedule.py), which the loop turns
into the next poll with `schedule.after_poll`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import time

import structlog

from ingest.core import outcomes, timefmt
from ingest.feeds import feedparse, schedule
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.schedule import PollResult
from ingest.net.fetch import Response, classify_status
from ingest.poller.articles import ArticleFetcher

log = structlog.get_logger("ingest.poller")

ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, "
          "application/xml;q=0.9, */*;q=0.8")  # fmt: skip


def failed(exc: outcomes.FetchError, hint: float | None = None) -> PollResult:
    return PollResult(exc.outcome, {"last_error": str(exc)[:300]}, hint, error=exc)


class FeedPoller(ArticleFetcher):
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

    async def _poll(self, spec: FeedSpec, state: dict[str, str]) -> PollResult:
        headers = {"Accept": ACCEPT}
        if state.get("etag"):
            headers["If-None-Match"] = state["etag"]
        if state.get("last_modified"):
            headers["If-Modified-Since"] = state["last_modified"]
        try:
            resp = await self._get(spec.url, headers)
            if resp.status == 304:
                return PollResult("not_modified", hint=schedule.cache_hint(resp.headers))
            classify_status(resp)
        except outcomes.FetchError as exc:
            return failed(exc)
        fields: dict[str, str | int] = {
            "etag": resp.headers.get("etag", ""),
            "last_modified": resp.headers.get("last-modified", ""),
            "body_hash": hashlib.sha256(resp.body).hexdigest()[:16],
        }
        hint = schedule.cache_hint(resp.headers)
        if fields["body_hash"] == state.get("body_hash"):
            # a server ignoring conditional GET: no item work
            return PollResult("unchanged", fields, hint)
        try:
            parsed = await self.parse(resp)
        except outcomes.FetchError as exc:
            return failed(exc, hint)
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
        result = PollResult("ok", fields, hint, res.new)
        if not state.get("rate"):  # not watched yet: the items' own dates tell the cadence
            result.dated_rate = schedule.rate_from_dates(
                [timefmt.to_ts(i.published_at) for i in parsed.items if i.published_at], time.time()
            )
        if res.elsewhere:
            # Items another poll is fetching: if it died, its claims expire (poll.fetch_claim)
            # with nothing enqueued, so the next poll must read them again, not find the feed
            # unchanged (the items would be lost until the feed changed).
            fields.update(etag="", last_modified="", body_hash="")
            log.info("items_claimed_elsewhere", feed_url=spec.url, stage="poll",
                     items=res.elsewhere)  # fmt: skip
        if res.deferred:
            # Items left for later: forget the validators and the body hash so the next poll
            # reads them again, and come back when the host has a slot.
            fields.update(etag="", last_modified="", body_hash="")
            result.outcome = "deferred"
            result.retry_in, result.deferred = res.deferred_for, res.deferred
        return result
