"""Building the job payload of an article and enqueueing the jobs (docs/architecture.md, "The job
payload"). Bodies travel beside the job, at `<prefix>page:<claim>`, not in it."""

from __future__ import annotations

from typing import Any

from rq import Retry

from ingest.core import timefmt
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.identity import Candidate
from ingest.poller.base import PollerBase

JOB_FUNC = "workers.jobs.process_batch"
INFLIGHT_TTL = 6 * 3600  # an enqueued item's marker and its page body


def job_payload(
    spec: FeedSpec, cand: Candidate, page: dict[str, Any], discovered: float
) -> dict[str, Any]:
    """The JSON-able payload of one article, as workers.jobs.process_batch reads it."""
    return {
        "feed": {
            "id": spec.id,
            "url": spec.url,
            "title": spec.title,
            "tags": spec.tags,
            "language": spec.language,
            "topic": spec.topic,
        },
        "item": cand.item.to_dict(),
        "link": cand.link,
        "link_id": cand.link_id,
        "guid_hash": cand.guid_hash,
        "identity": cand.identity,
        "furniture": list(cand.furniture),  # recurring lines of the feed (identity.py)
        "item_version": cand.version.hex(),
        "claim": cand.claim,
        "page": page,
        "discovered_at": discovered,
        "fetched_at": timefmt.now(),
    }


class Enqueuer(PollerBase):
    def enqueue(self, payloads: list[dict[str, Any]]) -> None:
        """Enqueue in batches; the in-flight markers and the page bodies go in the same
        transaction as the jobs. Bodies travel beside the job, not in it: RQ compresses and
        re-saves a job's arguments (again when it finishes), which for pages already compressed
        is CPU spent for nothing, twice."""
        size = max(1, self.settings.worker.batch_size)
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
                    pipe.set(self.keys.inflight(p["claim"]), "queued", ex=INFLIGHT_TTL)
                for key, body_z in bodies.items():
                    pipe.set(key, body_z, ex=INFLIGHT_TTL)
                pipe.execute()
            self.stats.enqueued += len(batch)
