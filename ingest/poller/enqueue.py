"""Building the job payload of an article and enqueueing the jobs. The payload's shape and its
body's journey beside the job are ingest/core/job.py's."""

from __future__ import annotations

from rq import Retry

from ingest.core import timefmt
from ingest.core.job import BODY_TTL_S, JOB_FUNC, ArticleJob, Page, detach_bodies
from ingest.core.urls import redact_url
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.identity import Candidate
from ingest.poller.base import PollerBase


def job_payload(
    spec: FeedSpec, cand: Candidate, page: Page, discovered: float
) -> ArticleJob:
    """The JSON-able payload of one article, as workers.jobs.process_batch reads it."""
    return {
        "feed": {
            "id": spec.id,
            # what the record, its trace and a dead letter show: a password in the feed's URL
            # is the operator's secret, kept in the registry only (tests/test_credentials.py)
            "url": redact_url(spec.url),
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
    def enqueue(self, payloads: list[ArticleJob]) -> None:
        """Enqueue in batches; the in-flight markers and the page bodies go in the same
        transaction as the jobs."""
        size = max(1, self.settings.worker.batch_size)
        for start in range(0, len(payloads), size):
            batch = payloads[start : start + size]
            bodies = detach_bodies(batch, self.keys)
            with self.r.pipeline() as pipe:
                # retry: a job whose worker died (its heartbeat lapsed) is run again, not failed
                self.queue.enqueue_call(
                    JOB_FUNC, args=(batch,), timeout=self.settings.worker.job_timeout,
                    result_ttl=60, failure_ttl=7 * 86400, pipeline=pipe, retry=Retry(max=3),
                )  # fmt: skip
                for p in batch:
                    pipe.set(self.keys.inflight(p["claim"]), "queued", ex=BODY_TTL_S)
                for key, body_z in bodies.items():
                    pipe.set(key, body_z, ex=BODY_TTL_S)
                pipe.execute()
            self.stats.enqueued += len(batch)
