"""The job payload, poller -> worker: one typed home for its shape and for its page body.

The poller builds an `ArticleJob` per fetched item (ingest/poller/), a dead letter rebuilds one
for `replay` (`DeadLetter.payload`), and the worker reads it (workers/pipeline.py). The page
body never travels inside the job: RQ compresses and re-saves a job's arguments (again when it
finishes), which for a page already compressed is CPU spent twice for nothing. It waits beside
the job at `<prefix>page:<claim>`, written in the enqueue transaction (`detach_bodies`), put
back for the batch in one round trip (`attach_bodies`), and deleted once every article of the
batch has its outcome.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import redis

from ingest.core.keys import Keys

JOB_FUNC = "workers.jobs.process_batch"  # what RQ calls with a list of ArticleJob
BODY_TTL_S = 6 * 3600  # a body and the job's in-flight marker live as long as a job may wait


class FeedRef(TypedDict):
    id: str
    url: str
    title: str
    tags: list[str]
    language: str
    topic: str


class Page(TypedDict):
    url: str  # the final URL after redirects
    status: int | None
    content_type: str
    outcome: str  # "ok" or the fetch outcome (ingest/core/outcomes.py)
    error: str
    html_z: NotRequired[bytes | None]  # the packed body (core/bodies.py), only while attached
    error_z: NotRequired[bytes | None]  # the error page of a failed fetch, for the dead letter
    stored: NotRequired[bool]  # the body waits at <prefix>page:<claim>
    fetch_ms: NotRequired[int]


class ArticleJob(TypedDict):
    feed: FeedRef
    item: dict[str, Any]  # FeedItem.to_dict() (ingest/feeds/feedparse.py)
    link: str
    link_id: str  # the article id of the link (core/urls.article_id)
    guid_hash: str
    identity: str  # "" or how items sharing one link are told apart
    item_version: str  # hex of the item's version hash (corrections)
    claim: str  # the fetch claim, also the key of the stored body
    page: Page
    discovered_at: float
    fetched_at: str  # core/timefmt
    furniture: NotRequired[list[str]]  # keys of the feed's recurring lines (core/lines.py)
    replay: NotRequired[str]  # the dead letter this job re-runs


def new_page(url: str) -> Page:
    return {"url": url, "status": 0, "content_type": "", "html_z": None, "outcome": "ok",
            "error": ""}  # fmt: skip


def detach_bodies(batch: list[ArticleJob], keys: Keys) -> dict[str, bytes]:
    """Take the bodies out of a batch about to be enqueued: key -> packed body, to be written
    in the same transaction as the job."""
    out: dict[str, bytes] = {}
    for job in batch:
        body_z = job["page"].pop("html_z", None)
        if body_z:
            out[keys.page(job["claim"])] = body_z
            job["page"]["stored"] = True
    return out


def attach_bodies(r: redis.Redis, keys: Keys, batch: list[ArticleJob]) -> list[str]:
    """Put each job's stored body back (one round trip for the batch); returns their keys. A body
    gone (its TTL ran out while the job waited) is `page_expired`, which leaves the feed's own
    content to the extraction ladder."""
    stored = [job for job in batch if job["page"].get("stored")]
    if not stored:
        return []
    names = [keys.page(job["claim"]) for job in stored]
    bodies: list[bytes | None] = r.mget(names)  # type: ignore[assignment]
    for job, body in zip(stored, bodies, strict=True):
        page = job["page"]
        page["html_z"] = body
        if body is None and page["outcome"] == "ok":
            page["outcome"], page["error"] = "page_expired", "page body expired before processing"
    return names


def release_bodies(batch: list[ArticleJob], keys: Keys) -> set[str]:
    """Jobs handed on unprocessed (a stopping worker requeues the rest of its batch): their
    bodies stay stored, to be attached again by the next run; returns the keys kept."""
    kept = set()
    for job in batch:
        if job["page"].get("stored"):
            job["page"]["html_z"] = None
            kept.add(keys.page(job["claim"]))
    return kept
