"""Dead letters and replay: failed articles re-run from their stored raw HTML through the current
extractor and settings. Idempotent: what is published already comes out `duplicate`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from ingest.feedlist import feed_id
from ingest.keys import Keys
from ingest.urls import host_of
from workers.pipeline import Context, process


@dataclass
class DeadLetter:
    id: str
    at: float
    reason: str
    url: str
    feed_url: str
    article_id: str
    detail: str
    body_z: bytes | None

    @classmethod
    def from_entry(cls, entry_id: bytes | str, fields: dict[bytes, bytes]) -> DeadLetter:
        def get(name: str) -> str:
            return fields.get(name.encode(), b"").decode("utf-8", "replace")

        return cls(
            id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            at=float(get("at") or 0), reason=get("reason"), url=get("url"),
            feed_url=get("feed_url"), article_id=get("article_id"), detail=get("detail"),
            body_z=fields.get(b"body_z"),
        )  # fmt: skip

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "reason": self.reason, "url": self.url,
                "feed_url": self.feed_url, "article_id": self.article_id, "detail": self.detail,
                "body_bytes": len(self.body_z) if self.body_z else 0}  # fmt: skip

    def payload(self) -> dict[str, Any]:
        """The job payload the worker would have received, with the stored page as its body."""
        link_id = self.article_id.split(":")[0]
        return {
            "feed": {"id": feed_id(self.feed_url) if self.feed_url else "replay",
                     "url": self.feed_url, "title": "", "tags": [], "language": "", "topic": ""},
            "item": {"guid": "", "link": self.url, "title": "", "authors": [],
                     "published_at": None, "tags": [], "summary": "", "content": "", "image": ""},
            "link": self.url, "link_id": link_id, "guid_hash": link_id, "claim": self.article_id,
            "page": {"url": self.url, "status": 200, "content_type": "text/html",
                     "outcome": "ok", "html_z": self.body_z, "error": ""},
            "discovered_at": time.time(), "fetched_at": _iso(self.at),
        }  # fmt: skip


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def letters(
    r: redis.Redis, keys: Keys, *, since: float = 0, site: str = "", reason: str = "",
    count: int | None = None,
) -> Iterator[DeadLetter]:  # fmt: skip
    """Dead letters, oldest first, matching every filter given."""
    start = f"{int(since * 1000)}-0" if since else "-"
    seen = 0
    entries: Any = r.xrange(keys.deadletter, min=start)
    for entry_id, fields in entries:
        letter = DeadLetter.from_entry(entry_id, fields)
        if reason and letter.reason != reason:
            continue
        if site and host_of(letter.url).removeprefix("www.") != site.removeprefix("www."):
            continue
        yield letter
        seen += 1
        if count is not None and seen >= count:
            return


def replay(ctx: Context, chosen: list[DeadLetter]) -> list[tuple[DeadLetter, str]]:
    """Re-run each letter that has a stored body; the outcome for each ('no_body' if none)."""
    results = []
    for letter in chosen:
        if not letter.body_z:
            results.append((letter, "no_body"))
            continue
        results.append((letter, process(ctx, letter.payload())))
    return results
