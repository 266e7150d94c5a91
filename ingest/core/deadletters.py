"""Dead letters: the articles that failed, each with its reason, the facts of its fetch and its
raw body, in the stream `<prefix>deadletter`. Written and read here only.

A letter keeps what the worker knew, so that `replay` re-runs the article as it was fetched:
the fetch's outcome, HTTP status, content type and final URL (a 500 page stays a 500 page),
the body (the page, or the error page the server sent), and the job's feed and item (title,
GUID key, feed content), packed. Letters written before these fields existed read with the
fetch outcome their reason implies (`FETCH_FAILURES`) and an unknown status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from ingest.core import bodies, timefmt
from ingest.core.job import ArticleJob, FeedRef, Page
from ingest.core.keys import Keys
from ingest.core.urls import feed_id, host_of, redact_url

MAXLEN = 100_000  # letters kept (approximate trim)
# what of the job payload a letter keeps, besides the page (for a faithful replay)
JOB_FIELDS = ("feed", "item", "guid_hash", "identity", "item_version", "claim", "discovered_at")
DETAIL_CHARS = 2000

# Reasons that name a failed fetch (ingest.core.outcomes): the stored body, if any, is what the
# server answered instead of the page, and no change of extractor or settings makes it one.
FETCH_FAILURES = frozenset({
    "bad_scheme", "bad_url", "blocked", "blocked_address", "dns_error", "connect_error",
    "truncated", "timeout", "too_large", "too_many_redirects", "host_deferred",
    "robots_unavailable", "robots_disallowed", "http_error", "gone", "rate_limited", "bot_wall",
    "not_html", "empty", "decode_error",
})  # fmt: skip


@dataclass(frozen=True)
class Fetch:
    """What the fetch of the article page found."""

    outcome: str = "ok"  # ingest.core.outcomes name, "ok" when the page arrived
    status: int | None = None  # HTTP status; None when unknown (no answer, or an old letter)
    content_type: str = ""
    final_url: str = ""  # after redirects
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok" and (self.status is None or 200 <= self.status < 300)


@dataclass(frozen=True)
class DeadLetter:
    id: str  # the stream entry id ("" before it is written)
    at: float
    reason: str
    url: str  # the item's link
    feed_url: str
    article_id: str  # the item link's article id (what `explain` looks up)
    detail: str = ""
    fetch: Fetch = field(default_factory=Fetch)
    body_z: bytes | None = None  # as packed by ingest.core.bodies
    job: dict[str, Any] = field(default_factory=dict)  # feed, item, guid_hash, claim ...

    # ------------------------------------------------------------ writing

    @classmethod
    def of_payload(cls, payload: ArticleJob, reason: str, detail: str = "") -> DeadLetter:
        """The letter of a worker payload that ended in `reason`."""
        page = payload["page"]
        status = page.get("status")
        job: dict[str, Any] = {k: v for k, v in payload.items() if k in JOB_FIELDS}
        return cls(
            id="", at=time.time(), reason=reason, url=payload.get("link") or page["url"],
            feed_url=payload["feed"]["url"], article_id=payload["link_id"], detail=detail,
            fetch=Fetch(outcome=page.get("outcome") or "ok", status=int(status) if status else None,
                        content_type=page.get("content_type") or "",
                        final_url=page.get("url") or "", error=page.get("error") or ""),
            body_z=page.get("html_z") or page.get("error_z"), job=job,
        )  # fmt: skip

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reason": self.reason, "url": self.url, "feed_url": self.feed_url,
            "article_id": self.article_id, "detail": self.detail[:DETAIL_CHARS],
            "at": f"{self.at:.3f}", "fetch_outcome": self.fetch.outcome,
            "status": "" if self.fetch.status is None else str(self.fetch.status),
            "content_type": self.fetch.content_type, "final_url": self.fetch.final_url,
            "fetch_error": self.fetch.error[:DETAIL_CHARS],
        }  # fmt: skip
        if self.body_z:  # the raw body as the poller packed it (ingest.core.bodies)
            out["body_z"] = self.body_z
        if self.job:
            out["job_z"] = bodies.pack(json.dumps(self.job, ensure_ascii=False).encode())
        return out

    # ------------------------------------------------------------ reading

    @classmethod
    def from_entry(cls, entry_id: bytes | str, raw: dict[bytes, bytes]) -> DeadLetter:
        def text(name: str) -> str:
            return raw.get(name.encode(), b"").decode("utf-8", "replace")

        reason = text("reason")
        outcome = text("fetch_outcome") or (reason if reason in FETCH_FAILURES else "ok")
        status = text("status")
        return cls(
            id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            at=_float(text("at")), reason=reason, url=text("url"), feed_url=text("feed_url"),
            # older letters of refusals held the poller's claim (`<article id>:<version>`)
            article_id=text("article_id").split(":")[0], detail=text("detail"),
            fetch=Fetch(outcome=outcome, status=int(status) if status.isdigit() else None,
                        content_type=text("content_type"), final_url=text("final_url"),
                        error=text("fetch_error")),
            body_z=raw.get(b"body_z"), job=_job(raw.get(b"job_z")),
        )  # fmt: skip

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "reason": self.reason, "url": self.url,
                "feed_url": self.feed_url, "article_id": self.article_id, "detail": self.detail,
                "fetch": {"outcome": self.fetch.outcome, "status": self.fetch.status,
                          "content_type": self.fetch.content_type,
                          "final_url": self.fetch.final_url, "error": self.fetch.error},
                "body_bytes": len(self.body_z) if self.body_z else 0}  # fmt: skip

    def payload(self) -> ArticleJob:
        """The job payload the worker received, rebuilt with the stored body and the original
        fetch facts: a page that failed to fetch is given as such (its body is the error page,
        never the article's page). `replay` names the letter, so the pipeline knows."""
        unknown: FeedRef = {
            "id": feed_id(self.feed_url) if self.feed_url else "replay", "url": self.feed_url,
            "title": "", "tags": [], "language": "", "topic": ""}  # fmt: skip
        feed: FeedRef = self.job.get("feed") or unknown
        # a letter written before the poller redacted the feed's URL holds its password
        feed = feed.copy()
        feed["url"] = redact_url(feed["url"])
        item = self.job.get("item") or {
            "guid": "", "link": self.url, "title": "", "authors": [], "published_at": None,
            "tags": [], "summary": "", "content": "", "image": ""}  # fmt: skip
        ok = self.fetch.ok
        page: Page = {"url": self.fetch.final_url or self.url, "status": self.fetch.status,
                "content_type": self.fetch.content_type or ("text/html" if ok else ""),
                "outcome": self.fetch.outcome, "error": self.fetch.error,
                "html_z": self.body_z if ok else None,
                "error_z": None if ok else self.body_z}  # fmt: skip
        return {
            "feed": feed, "item": item, "link": self.url, "link_id": self.article_id,
            "guid_hash": self.job.get("guid_hash") or self.article_id,
            "identity": self.job.get("identity", ""),
            "item_version": self.job.get("item_version") or "00000000",
            "claim": self.job.get("claim") or self.article_id, "page": page,
            "discovered_at": self.job.get("discovered_at") or self.at,
            "fetched_at": timefmt.from_ts(self.at), "replay": self.id,
        }  # fmt: skip


def write(pipe: Any, keys: Keys, letter: DeadLetter) -> None:
    """Queue the letter's XADD on a pipeline (or client)."""
    pipe.xadd(keys.deadletter, letter.fields(), maxlen=MAXLEN, approximate=True)


def refused(pipe: Any, keys: Keys, reason: str, *, url: str, feed_url: str, claim: str,
            detail: str) -> None:  # fmt: skip
    """The letter of a URL the poller would not fetch at all (no body, no answer); `claim` is
    the poller's claim id (`<article id>:<item version>`)."""
    write(pipe, keys, DeadLetter(id="", at=time.time(), reason=reason, url=url, feed_url=feed_url,
                                 article_id=claim.split(":")[0], detail=detail,
                                 fetch=Fetch(outcome=reason, final_url=url),
                                 job={"claim": claim}))  # fmt: skip


def letters(
    r: redis.Redis, keys: Keys, *, since: float = 0, site: str = "", reason: str = "",
    article_id: str = "", count: int | None = None, scan: int | None = None,
    newest_first: bool = False,
) -> Iterator[DeadLetter]:  # fmt: skip
    """Dead letters, oldest first (or newest first), matching every filter given: at most
    `count` of them, from the `scan` first entries read (default all)."""
    start = f"{int(since * 1000)}-0" if since else "-"
    entries: Any = (r.xrevrange(keys.deadletter, min=start, count=scan) if newest_first
                    else r.xrange(keys.deadletter, min=start, count=scan))  # fmt: skip
    yielded = 0
    for entry_id, raw in entries:
        letter = DeadLetter.from_entry(entry_id, raw)
        if reason and letter.reason != reason:
            continue
        if article_id and letter.article_id != article_id:
            continue
        host = host_of(letter.url).removeprefix("www.")
        if site and (not host or host != site.removeprefix("www.")):  # no host is at no site
            continue
        yield letter
        yielded += 1
        if count is not None and yielded >= count:
            return


def count(r: redis.Redis, keys: Keys) -> int:
    return int(r.xlen(keys.deadletter))


def get(r: redis.Redis, keys: Keys, entry_id: str) -> DeadLetter | None:
    """One letter by its stream id, None when there is none."""
    found: Any = r.xrange(keys.deadletter, entry_id, entry_id)
    return DeadLetter.from_entry(*found[0]) if found else None


def _job(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        found = json.loads(bodies.unpack(raw))
    except (bodies.Unreadable, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _float(value: str) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0

