"""What one article's trip through the worker leaves for operators: stage timings, the site's
extraction result, and the trace `explain` prints (`<prefix>trace:<article id>`, kept
`stream.trace_days`). Not the dedup memory: that is `ingest.core.seen.SeenStore`."""

from __future__ import annotations

import time
from typing import Any

from ingest.core import observe
from ingest.core.job import ArticleJob
from ingest.core.keys import Keys
from ingest.core.urls import article_id, host_of
from workers.extract import PAGE_STEPS


class Trace:
    """What one article's trip through the worker leaves for operators: stage timings, the
    site's extraction result, and the trace `explain` prints."""

    def __init__(self, payload: ArticleJob, trace_ttl: int) -> None:
        self.payload = payload
        self.trace_ttl = trace_ttl
        self.timings: dict[str, float] = {}
        fetch_ms = payload["page"].get("fetch_ms")
        if fetch_ms is not None:
            self.timings["fetch"] = fetch_ms / 1000
        self.extraction: dict[str, Any] = {}
        self.dedup: dict[str, Any] = {}
        self.classified: dict[str, Any] = {}

    def stage(self, name: str, since: float) -> None:
        self.timings[name] = time.monotonic() - since

    def write(self, pipe: Any, keys: Keys, outcome: str, extra: dict[str, Any],
              ids: list[str] | None = None) -> None:  # fmt: skip
        page, item = self.payload["page"], self.payload["item"]
        for stage, seconds in self.timings.items():
            observe.observe(pipe, keys, stage, seconds)
        fetched = page.get("outcome", "ok") == "ok" and page.get("html_z")
        # a site's extraction rate counts each page once, when it was fetched: not on replay;
        # a page without a readable host is of no site (under "" all of them would be one)
        site = host_of(page["url"]).removeprefix("www.")
        if fetched and self.extraction and not self.payload.get("replay") and site:
            ok = self.extraction.get("method") in PAGE_STEPS
            observe.site_result(pipe, keys, site, ok)
        fields = {
            "listed_at": self.payload.get("discovered_at"), "feed_url": self.payload["feed"]["url"],
            "guid": item.get("guid", ""), "link": self.payload.get("link", ""),
            "fetch": {"outcome": page.get("outcome", "ok"), "status": page.get("status"),
                      "final_url": page.get("url"), "ms": page.get("fetch_ms"),
                      "error": page.get("error", "")},
            "extraction": self.extraction, "dedup": self.dedup, **self.classified,
            "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
            "outcome": outcome, "at": time.time(), **extra,
        }  # fmt: skip
        shared = [article_id(self.payload["link"])] if self.payload.get("identity") else []
        # items sharing one link are told apart by title; `explain LINK` finds the last of them
        for aid in dict.fromkeys([self.payload["link_id"], *(ids or []), *shared]):
            observe.trace(pipe, keys, aid, fields, self.trace_ttl)
