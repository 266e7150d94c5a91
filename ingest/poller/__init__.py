"""The poller: claim due feeds, conditional GET, parse, fetch new articles, enqueue RQ jobs.

One asyncio process with bounded concurrency; any number of replicas (feeds are leased, hosts
are spaced through Redis). Feed state is saved only after the feed's new items are enqueued,
so a poller killed mid-feed leaves the feed to be polled again with nothing lost.

One module per job, each built on the one before (docs/architecture.md, "The poller"):
base.py (what they share) ─► enqueue.py (job payloads, enqueueing) ─► articles.py (items:
seen, claimed, fetched, refused, held) ─► feed.py (one feed's poll ─► a PollResult) ─►
loop.py (`Poller`: the run loops; each poll's outcome decided by the pure
`ingest.feeds.schedule.after_poll` and written to Redis).
"""

from ingest.core.job import JOB_FUNC
from ingest.poller.articles import Deferral
from ingest.poller.base import REDIS_DOWN
from ingest.poller.enqueue import job_payload
from ingest.poller.loop import Poller
from ingest.poller.stats import PollStats

__all__ = ["JOB_FUNC", "REDIS_DOWN", "Deferral", "PollStats", "Poller", "job_payload"]
