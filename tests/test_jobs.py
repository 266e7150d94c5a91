"""Page bodies travel beside the RQ job, not inside it, and leave Redis with their job."""

from __future__ import annotations

import redis
from rq import Queue, SimpleWorker

from tests import pages
from tests.helpers import poll, register, settings_for
from tests.server import TestServer


def queued(server: TestServer, r: redis.Redis, n: int) -> Queue:
    """A site of `n` stories polled once: its articles queue."""
    settings = settings_for(server)
    register(r, site(server, n))
    poll(settings, r)
    return Queue(settings.stream.queue, connection=r)


def site(server: TestServer, n: int) -> str:
    items = []
    for i in range(n):
        paras = [*pages.paragraphs(pages.BOLIVIA), f"Paragraph that makes story {i} its own."]
        server.add(f"/s/{i}", pages.article_page(f"Story {i}", paras))
        items.append({"title": f"Story {i}", "link": server.url(f"/s/{i}")})
    server.add("/feed.xml", pages.rss("Site", items), "application/rss+xml")
    return server.url("/feed.xml")


def test_job_carries_no_page_and_the_bodies_go_with_the_job(
    server: TestServer, r: redis.Redis
) -> None:
    queue = queued(server, r, 3)
    (job,) = queue.jobs
    assert all(p["page"].get("stored") and "html_z" not in p["page"] for p in job.args[0])
    assert len(list(r.scan_iter("news:page:*"))) == 3

    SimpleWorker([queue], connection=r).work(burst=True)

    # three posts of one feed, of other titles and GUIDs: each kept, the copies flagged
    # (possible_duplicate_of; tests/test_identity.py)
    assert r.xlen("news:articles") == 3
    assert list(r.scan_iter("news:page:*")) == []
    # the finished job, saved again by RQ, still holds no page (bodies were read beside it)
    assert len(r.hget(job.key, "data") or b"") < 2000


def test_a_body_that_expired_before_its_job_falls_back_to_the_feed(
    server: TestServer, r: redis.Redis
) -> None:
    queue = queued(server, r, 1)
    for key in r.scan_iter("news:page:*"):
        r.delete(key)  # as if the job had waited longer than the body's TTL

    SimpleWorker([queue], connection=r).work(burst=True)

    assert r.xlen("news:articles") == 0  # the feed item has no text of its own to publish
    assert int(r.hget("news:metrics:articles", "page_expired") or 0) == 1


def test_a_damaged_body_is_counted_not_retried_forever(server: TestServer, r: redis.Redis) -> None:
    queue = queued(server, r, 1)
    for key in r.scan_iter("news:page:*"):
        r.setrange(key, 20, b"\0" * 64)  # a body damaged in storage

    SimpleWorker([queue], connection=r).work(burst=True)

    assert int(r.hget("news:metrics:articles", "body_unreadable") or 0) == 1
    assert queue.failed_job_registry.count == 0  # an outcome, not a crashing job
