"""A page cannot hold a worker (issue 15 #5): a cap on the markup before extraction starts and a
CPU-time limit while it runs give `too_complex` with a dead letter holding the body, and the
healthy article in the same batch is still published, by a real RQ worker."""

from __future__ import annotations

import time

import pytest
import redis
from rq import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry

from ingest.core import bodies
from tests import pages
from tests.conftest import cli
from tests.helpers import KEYS, poll, register, settings_for, work
from tests.server import TestServer
from tests.test_hostile import STORY, published
from workers import limits

MILLION_P = b"<html><body>" + b"<p>x</p>" * 1_000_000 + b"</body></html>"  # 9 MB


def feed_of(server: TestServer, heavy: bytes) -> str:
    heavy_url = server.add("/heavy", heavy)
    ok_url = server.add("/ok", pages.article_page("Breakwater", STORY))
    return server.add("/f.xml", pages.rss("F", [{"title": "Heavy", "link": heavy_url},
                                               {"title": "Breakwater", "link": ok_url}]),
                      "application/rss+xml")  # fmt: skip


def dead_letters(r: redis.Redis) -> list[dict[bytes, bytes]]:
    return [fields for _id, fields in r.xrange(KEYS.deadletter)]


def test_a_million_paragraphs_is_too_complex_and_the_batch_goes_on(
    server: TestServer, r: redis.Redis, redis_url: str
) -> None:
    register(r, feed_of(server, MILLION_P))
    settings = settings_for(server)
    poll(settings, r)
    assert Queue(settings.stream.queue, connection=r).count == 1  # one batch holds both
    started = time.monotonic()
    out = cli("--redis-url", redis_url, "worker", "--burst", timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert time.monotonic() - started < 60  # it ran for minutes before
    assert [rec["title"] for rec in published(r)] == ["Breakwater"]
    (dead,) = dead_letters(r)
    assert dead[b"reason"] == b"too_complex"
    assert b"tags > cap" in dead[b"detail"]
    assert bodies.unpack(dead[b"body_z"]) == MILLION_P  # the body is kept, for replay
    assert int(r.hget(KEYS.counters("articles"), "too_complex") or 0) == 1
    queue = Queue(settings.stream.queue, connection=r)
    assert StartedJobRegistry(queue=queue).count == 0 and FailedJobRegistry(queue=queue).count == 0


def test_the_cpu_limit_stops_a_page_under_the_cap(server: TestServer, r: redis.Redis) -> None:
    heavy = b"<html><body>" + b"<p>x</p>" * 60_000 + b"</body></html>"  # ~3 s to extract here
    register(r, feed_of(server, heavy))
    settings = settings_for(server).with_overrides(extract={"cpu_limit": 0.5})
    poll(settings, r)
    started = time.monotonic()
    assert sorted(work(settings, r)) == ["published", "too_complex"]
    assert time.monotonic() - started < 10
    (dead,) = dead_letters(r)
    assert dead[b"reason"] == b"too_complex" and b"CPU" in dead[b"detail"]
    assert bodies.unpack(dead[b"body_z"]) == heavy


def test_the_cpu_limit_is_not_swallowed_by_a_library() -> None:
    started = time.process_time()
    with pytest.raises(limits.TooComplex), limits.cpu_limit(0.2):
        while True:
            try:  # noqa: SIM105 - what a careless library does
                sum(range(10_000))
            except Exception:
                pass
    assert time.process_time() - started < 2


def test_markup_cap_counts_tags_before_parsing() -> None:
    limits.check_markup(b"<p>a</p>" * 10, max_tags=20)
    with pytest.raises(limits.TooComplex, match="tags > cap"):
        limits.check_markup(b"<p>a</p>" * 11, max_tags=20)
    limits.check_markup(MILLION_P, max_tags=0)  # 0: no cap


def _deadline() -> float:
    from rq import get_current_job

    job = get_current_job()
    assert job is not None
    key = job.started_job_registry.key
    return max(s for _m, s in job.connection.zscan_iter(key, match=f"{job.id}:*"))


def long_extraction() -> float:
    """An RQ job: beat as process_batch does before an article, then spend 1.5 s of CPU under
    the limit as a long page would; how far did the registry deadline move meanwhile?"""
    from workers import jobs

    jobs._beats.clear()
    jobs.heartbeat()
    before = _deadline()
    with limits.cpu_limit(3.0):
        end = time.process_time() + 1.5
        while time.process_time() < end:
            pass
    return _deadline() - before


def test_a_long_extraction_keeps_its_job_alive(
    r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's entry in RQ's started registry must not expire while one page takes up to its
    CPU limit (before, the deadline was pushed only between articles)."""
    from rq import SimpleWorker

    from workers import jobs

    monkeypatch.setattr(jobs, "BEAT_EVERY_S", 0.2)
    queue = Queue("limits-test", connection=r)
    job = queue.enqueue(long_extraction, job_timeout=60)
    SimpleWorker([queue], connection=r).work(burst=True, with_scheduler=False)
    job.refresh()
    assert job.return_value() is not None and job.return_value() >= 1.0, job.get_status()


def test_a_feed_items_own_html_is_read_within_a_bound() -> None:
    """Feed content is not a page (no time limit covers it): a million `<p>` took 7 s to turn
    into text; cut to about 100,000 tags it takes a fraction of a second."""
    from workers import extract

    started = time.process_time()
    text = extract.html_to_text("<p>x</p>" * 1_000_000)
    assert time.process_time() - started < 2
    assert text.startswith("x\nx") and 40_000 < text.count("x") <= 50_000
    long_with_images = (
        "<p>" + "word " * 200_000 + '<img src="data:image/png;base64,' + "A" * 500_000 + '"></p>'
    )
    assert extract.html_to_text(long_with_images).count("word") == 200_000  # few tags: uncut


def test_a_too_complex_page_is_published_from_the_feeds_own_text(
    server: TestServer, r: redis.Redis
) -> None:
    """When the feed carries the article (a full-text description), a page over the markup cap
    costs nothing to read: the article is published from the feed's text, the record says why
    (`extraction.page_outcome`), and no dead letter is written (there is nothing to replay)."""
    heavy_url = server.add("/heavy", b"<html><body>" + b"<p>x</p>" * 5_000 + b"</body></html>")
    summary = "".join(f"<p>{p}</p>" for p in STORY)
    server.add("/f.xml", pages.rss("F", [{"title": "Breakwater", "link": heavy_url,
                                          "summary": summary}]), "application/rss+xml")  # fmt: skip
    register(r, server.url("/f.xml"))
    settings = settings_for(server).with_overrides(extract={"max_tags": 1_000})
    poll(settings, r)
    assert work(settings, r) == ["published"]
    (record,) = published(r)
    assert record["extraction"]["method"] == "feed"
    assert record["extraction"]["page_outcome"] == "too_complex"
    assert STORY[0] in record["text"] and "x\nx" not in record["text"]
    assert dead_letters(r) == []
    assert int(r.hget(KEYS.counters("articles"), "too_complex") or 0) == 0
