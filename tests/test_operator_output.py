"""What operators read must be true (issue 18.8): live workers counted by a fresh heartbeat, one
reading of a feed's health, throughput over a stated window, no raw JSON in the status table,
one definition of a poll, and typed `feeds list --json` values with a sensible `next`."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from rq import Queue, Worker
from structlog.testing import capture_logs

from ingest import status
from ingest.core import counters
from ingest.core.keys import Keys
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.registry import Registry
from ingest.poller import Poller, PollStats
from ingest.status import feed_health, feed_view, live_workers, next_label, worker_is_fresh
from tests import pages
from tests.conftest import ROOT, cli
from tests.helpers import KEYS, poll, register, settings_for, wait_for
from tests.server import Route, TestServer

# ---------------------------------------------------------------- workers: a fresh heartbeat


def test_worker_freshness_rule() -> None:
    assert worker_is_fresh("idle", 10, job_timeout=300)
    assert not worker_is_fresh("idle", status.IDLE_MAX_AGE + 1, job_timeout=300)
    assert worker_is_fresh("busy", 300, job_timeout=300)  # a job in hand does not heartbeat
    assert not worker_is_fresh("busy", 300 + status.BUSY_GRACE + 1, job_timeout=300)
    assert not worker_is_fresh("idle", None, job_timeout=300)


def _dead_registration(r: redis.Redis, age: float) -> Worker:
    """What a worker killed with -9 leaves behind: its registration, with its last heartbeat."""
    dead = Worker([Queue("articles", connection=r)], connection=r, name="killed-worker")
    dead.register_birth()
    beat = datetime.now(UTC) - timedelta(seconds=age)
    r.hset(dead.key, "last_heartbeat", beat.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    return dead


def test_status_and_readiness_count_only_workers_with_a_fresh_heartbeat(
    r: redis.Redis, redis_url: str
) -> None:
    _dead_registration(r, age=status.IDLE_MAX_AGE + 30)
    r.set("news:poller:heartbeat", f"{time.time():.0f}")
    assert Worker.count(connection=r) == 1  # RQ still lists it: the key lives ~8 minutes
    down = cli("--redis-url", redis_url, "status", "--json")
    assert down.returncode == 1
    data = json.loads(down.stdout)
    assert data["workers"] == 0 and data["problems"] == ["no live workers"]
    assert status.problems(r, Keys()) == ["no live workers"]  # what /readyz answers with

    worker = subprocess.Popen([sys.executable, "-m", "ingest.cli", "--redis-url", redis_url,
                               "worker"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert wait_for(lambda: Worker.count(connection=r) == 2, 30)
        up = cli("--redis-url", redis_url, "status", "--json")
        assert up.returncode == 0, up.stdout
        assert json.loads(up.stdout)["workers"] == 1  # the live one, not the leftover
        names = [w.name for w in live_workers(r)]
        assert len(names) == 1 and "killed-worker" not in names
        text = cli("--redis-url", redis_url, "status", env={"COLUMNS": "200"})
        assert "1 live (fresh heartbeat)" in text.stdout
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_an_idle_worker_beats_often_enough_to_stay_live(r: redis.Redis, redis_url: str) -> None:
    """The rule holds for a real idle worker: it beats every WORKER_TTL - 15 s (20 s)."""
    worker = subprocess.Popen([sys.executable, "-m", "ingest.cli", "--redis-url", redis_url,
                               "worker"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert wait_for(lambda: Worker.count(connection=r) == 1, 30)
        (registered,) = Worker.all(connection=r)
        born = registered.birth_date
        assert born is not None
        time.sleep(status.WORKER_TTL - 15 + 5)
        (now,) = Worker.all(connection=r)
        assert now.last_heartbeat is not None
        assert (now.last_heartbeat - born).total_seconds() >= status.WORKER_TTL - 15 - 1
        assert len(live_workers(r)) == 1
    finally:
        worker.terminate()
        worker.wait(timeout=30)


# ---------------------------------------------------------------- feed health: one reading


def test_a_feed_with_one_error_is_degraded_in_the_count_and_in_its_row(
    server: TestServer, r: redis.Redis, redis_url: str
) -> None:
    server.add("/broken.xml", "oops", status=500)
    server.add("/ok.xml", pages.rss("OK", []), "application/rss+xml")
    bad, good = register(r, server.url("/broken.xml"), server.url("/ok.xml"))
    poll(settings_for(server), r)
    views = {v["id"]: v for v in map(feed_view, Registry(r, KEYS).all())}
    assert (views[bad]["errors"], views[bad]["health"]) == (1, "degraded")
    assert feed_health(Registry(r, KEYS).get(good)) == "healthy"

    data = json.loads(cli("--redis-url", redis_url, "status", "--json").stdout)
    assert data["feeds"]["by_health"] == {"degraded": 1, "healthy": 1}
    assert [(w["url"], w["health"]) for w in data["feeds"]["worst"]] == [
        (server.url("/broken.xml"), "degraded")
    ]
    text = cli("--redis-url", redis_url, "status", env={"COLUMNS": "200"}).stdout
    row = next(line for line in text.splitlines() if "/broken.xml" in line)
    assert "degraded" in row and "failing" not in text


# ---------------------------------------------------------------- throughput: a stated window


def test_published_per_window_falls_to_zero_within_a_minute_of_the_last_publication(
    r: redis.Redis,
) -> None:
    keys = Keys()
    t0 = 1_800_000_005.0
    for _ in range(5):  # what the publish script does, at t0
        r.incr(counters.throughput_bucket(keys, t0))
    assert counters.published_since(r, keys, 60, now=t0) == 5
    assert counters.published_since(r, keys, 60, now=t0 + 49) == 5  # the window is 50-60 s
    assert counters.published_since(r, keys, 60, now=t0 + 60) == 0  # a minute after: nothing
    assert counters.published_since(r, keys, 3600, now=t0 + 60) == 5
    assert counters.published_since(r, keys, 86400, now=t0 + 86000) == 5
    assert counters.published_since(r, keys, 86400, now=t0 + 86400) == 0


def test_status_table_shows_counts_and_windows_not_raw_json(r: redis.Redis, redis_url: str) -> None:
    keys = Keys()
    counters.incr(r, keys, "articles", "published", 3)
    counters.incr(r, keys, "articles", "duplicate", 1)
    counters.incr(r, keys, "polls", "ok", 7)
    r.incr(counters.throughput_bucket(keys))
    out = cli("--redis-url", redis_url, "status", env={"COLUMNS": "200"})
    assert "Traceback" not in out.stderr
    assert "published 3 · duplicate 1" in out.stdout
    assert "ok 7" in out.stdout
    assert "1 in the last 60 s" in out.stdout
    assert "{" not in out.stdout and '"' not in out.stdout
    data = json.loads(cli("--redis-url", redis_url, "status", "--json").stdout)
    assert data["throughput"]["window_s"] == 60 and data["throughput"]["last_minute"] == 1


# ---------------------------------------------------------------- one definition of a poll


def test_polls_count_polls_and_feeds_count_distinct_feeds() -> None:
    stats = PollStats()
    stats.started = 3
    stats.count("deferred", "feed-a")  # run --once polls a deferred feed again: two polls...
    stats.count("ok", "feed-a")
    stats.count("ok", "feed-b")
    assert (stats.polls, stats.feeds, stats.in_flight) == (3, 2, 0)  # ... of one feed


def test_a_poll_is_counted_once_it_has_an_outcome_in_every_report(
    server: TestServer, r: redis.Redis
) -> None:
    stats = PollStats()
    stats.started = 3
    stats.count("ok", "feed-a")
    assert (stats.feeds, stats.in_flight) == (1, 2)

    server.add("/a.xml", pages.rss("A", []), "application/rss+xml")
    server.routes["/slow.xml"] = Route(body=pages.rss("S", []).encode(), delay=3.0,
                                       headers={"Content-Type": "application/rss+xml"})  # fmt: skip
    register(r, server.url("/a.xml"), server.url("/slow.xml"))
    from ingest.runner import _progress

    async def main() -> list[dict[str, object]]:
        poller = Poller(settings_for(server).with_overrides(fetch={"timeout": 10}), r)
        stop = asyncio.Event()
        with capture_logs() as logs:
            run = asyncio.create_task(poller.run_once())
            progress = asyncio.create_task(_progress(poller, stop, every=1.0))
            await asyncio.sleep(2.5)  # the fast feed is done, the slow one is in flight
            stop.set()
            await run
            await progress
        await poller.aclose()
        return [e for e in logs if e["event"] == "progress"]

    lines = asyncio.run(main())
    assert lines, "no progress line"
    last = lines[-1]
    assert last["polls"] == sum(last["polls_by_outcome"].values()) == 1  # type: ignore[union-attr]
    assert last["polls_in_flight"] == 1
    polls = {k.decode(): int(v) for k, v in r.hgetall(KEYS.counters("polls")).items()}
    assert sum(polls.values()) == 2  # both finished by now, in Redis as in the process


# ---------------------------------------------------------------- feeds list


def test_feeds_list_json_is_typed_and_next_says_due(
    server: TestServer, r: redis.Redis, redis_url: str
) -> None:
    server.add("/f.xml", pages.rss("F", [{"title": "One", "link": server.url("/1")}]),
               "application/rss+xml")  # fmt: skip
    Registry(r, KEYS).add(FeedSpec(server.url("/f.xml"), "F", ["world", "politics"]))
    settings = settings_for(server).with_overrides(fetch={"robots": False})
    poll(settings, r)
    (fid,) = Registry(r, KEYS).ids()
    r.zadd(KEYS.due, {fid: time.time() - 37})  # overdue by 37 s
    (row,) = [json.loads(x) for x in cli("--redis-url", redis_url, "feeds", "list", "--json",
                                         env={"NEWS_INGEST_FETCH_ALLOW": server.allow}
                                         ).stdout.splitlines()]  # fmt: skip
    assert row["errors"] == 0 and isinstance(row["errors"], int)
    assert row["tags"] == ["world", "politics"]
    assert isinstance(row["items_seen"], int) and isinstance(row["interval"], int)
    assert isinstance(row["last_polled"], float) and isinstance(row["next_poll"], float)
    assert (row["due"], row["next_in"]) == (True, 0)
    assert row["health"] == "healthy"
    text = cli("--redis-url", redis_url, "feeds", "list").stdout
    assert "next      due  every" in text and "-37s" not in text

    r.zadd(KEYS.due, {fid: time.time() + 3725})
    view = feed_view(Registry(r, KEYS).all()[0])
    assert next_label(view) == "in 1h02m" and view["due"] is False
    assert next_label(feed_view({"next_poll": str(time.time() + 90)})) == "in 1m"


def test_feed_view_of_a_new_feed() -> None:
    view = feed_view({"url": "http://x/f", "tags": "[]", "next_poll": None}, now=0)
    assert view["health"] == "new" and view["errors"] is None and view["next_in"] is None
    assert next_label(view) == "-"


# ---------------------------------------------------------------- through a Redis outage


def test_status_watch_and_tail_ride_out_a_redis_outage(tmp_path: Path) -> None:
    import jsonschema

    from ingest.core.embedded import EmbeddedValkey, free_port

    valkey = EmbeddedValkey(tmp_path / "v", free_port())
    valkey.start()
    r = redis.Redis.from_url(valkey.url)
    r.xadd("news:articles", {"id": "a1", "event": "created", "data": '{"title": "before"}'})
    base = [sys.executable, "-m", "ingest.cli", "--log-json", "--redis-url", valkey.url]
    logs = {name: (tmp_path / f"{name}.out").open("w+") for name in ("status", "tail")}
    watch = subprocess.Popen([*base, "status", "--json", "--watch", "0.3"], cwd=ROOT,
                             stdout=logs["status"], stderr=subprocess.STDOUT)  # fmt: skip
    tail = subprocess.Popen([*base, "tail", "--json"], cwd=ROOT, stdout=logs["tail"],
                            stderr=subprocess.STDOUT)  # fmt: skip

    def lines(name: str) -> list[str]:
        logs[name].seek(0)
        return logs[name].read().splitlines()

    try:
        assert wait_for(lambda: len(lines("status")) >= 2, 30)
        time.sleep(1.5)  # tail is reading by now
        valkey.stop()
        assert wait_for(lambda: any('"redis unreachable' in x for x in lines("status")), 30)
        time.sleep(1.0)
        assert watch.poll() is None and tail.poll() is None  # both still running
        # tail is held (SIGSTOP) while the server comes back and an entry is written: it can
        # reconnect only after that entry exists, so a tail that resumed from "$" would miss it
        tail.send_signal(signal.SIGSTOP)
        valkey.start()
        r = redis.Redis.from_url(valkey.url)
        r.xadd("news:articles", {"id": "a2", "event": "created", "data": '{"title": "during"}'})
        tail.send_signal(signal.SIGCONT)
        assert wait_for(lambda: any('"during"' in x for x in lines("tail")), 30), lines("tail")
        r.xadd("news:articles", {"id": "a3", "event": "created", "data": '{"title": "after"}'})
        assert wait_for(lambda: any('"after"' in x for x in lines("tail")), 30), lines("tail")
        n = len(lines("status"))
        assert wait_for(lambda: len(lines("status")) > n + 1, 30)
    finally:
        for proc in (watch, tail):
            proc.terminate()
            proc.wait(timeout=30)
        valkey.stop()
    schema = json.loads((ROOT / "docs" / "status.schema.json").read_text())
    reports = [json.loads(x) for x in lines("status") if x.startswith("{")]
    for report in reports:
        jsonschema.validate(report, schema)
    states = [rep["redis"]["ok"] for rep in reports]
    assert states[0] and not all(states) and states[-1]  # ok, then unreachable, then ok again
    assert "Traceback" not in "\n".join(lines("status") + lines("tail"))
    titles = [json.loads(x)["title"] for x in lines("tail") if x.startswith("{")]
    assert titles == ["during", "after"]  # nothing lost, nothing twice, "before" not replayed
    assert "redis unreachable" in "\n".join(lines("tail"))


def test_library_log_lines_are_json_lines_too() -> None:
    """As found: RQ's own warnings (its worker retrying during an outage) came out as plain
    text between our JSON lines. They are rendered as ours: one JSON object per line."""
    import subprocess
    import sys

    code = ("import logging; from ingest.core import logs; logs.configure('info', True); "
            "logging.getLogger('rq.worker').warning('retrying in %s', 2); "
            "logging.getLogger('aiohttp.client').info('not shown: below warning')")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = out.stderr.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"event": "retrying in 2", "logger": "rq.worker", "level": "warning",
         "timestamp": json.loads(lines[0])["timestamp"]}]  # fmt: skip
