"""The daemon's lifecycle with real processes, signals, a real Valkey and real HTTP on loopback:
bounded stops under load, supervision of the workers, Redis outages, ownership of the embedded
server and of ports, and what a restart does with the feed registry."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry

from ingest.core.embedded import EmbeddedValkey, free_port
from ingest.core.keys import Keys
from ingest.status import problems
from ingest.supervisor import respawn_delay
from tests import pages
from tests.conftest import ELSEWHERE, ROOT, cli
from tests.helpers import wait_for
from tests.server import TestServer

DOCS = [pages.BOLIVIA, pages.AUSTRIA, pages.WAR_REPORT]
GRACE = 2.0


def busy_site(server: TestServer, feeds: int, per_feed: int, delay: float = 0) -> list[str]:
    """`feeds` feeds on one host, `per_feed` distinct stories each; returns the story URLs."""
    urls = []
    for f in range(feeds):
        items = []
        for j in range(per_feed):
            i = f * per_feed + j
            # the words of a real article in an order of its own: no two stories near-copies
            words = " ".join(pages.paragraphs(DOCS[i % 3])).split()
            random.Random(i).shuffle(words)
            paras = [" ".join(words[k : k + 60]) + "." for k in range(0, 360, 60)]
            server.add(f"/s{i}", pages.article_page(f"Story {i}", paras), delay=delay)
            items.append({"title": f"Story {i}", "link": server.url(f"/s{i}")})
            urls.append(server.url(f"/s{i}"))
        server.add(f"/f{f}.xml", pages.rss(f"Feed {f}", items), "application/rss+xml")
    return urls


def feeds_file(server: TestServer, tmp_path: Path, feeds: int) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n" + "".join(f"  - {server.url(f'/f{f}.xml')}\n" for f in range(feeds)))
    return path


def environ(server: TestServer | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWS_INGEST_", "REDIS_URL"))}
    env.update(NEWS_INGEST_RUN_SHUTDOWN_GRACE=str(GRACE), NEWS_INGEST_WORKER_BATCH_SIZE="2")
    if server is not None:
        env["NEWS_INGEST_FETCH_ALLOW"] = server.allow
    env.update(extra)
    return env


def start(*args: str, env: dict[str, str], log: Path, cwd: Path = ELSEWHERE) -> subprocess.Popen[bytes]:
    # a session of its own, as a terminal gives: the test can signal the whole group
    return subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "--log-json", *args], cwd=cwd, env=env,
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def published(r: redis.Redis) -> Counter[str]:
    return Counter(json.loads(f[b"data"])["url"] for _id, f in r.xrange("news:articles"))


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        found += kids
        todo += kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def workers_of(run_pid: int) -> list[int]:
    """The worker processes of a `run`: the children of its supervisor (its python child)."""
    return [w for s in children(run_pid) for w in children(s)]


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        stop(p)


# ---------------------------------------------------------------- shutdown


@pytest.mark.parametrize("how", ["sigterm", "sigint_to_group"])
def test_busy_daemon_stops_within_the_grace_and_a_restart_publishes_every_story_once(
    how: str, server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    # 10 feeds on one host at the default 1 request/s, every article page answering slowly:
    # a minute of fetching in flight when the signal comes
    urls = busy_site(server, feeds=10, per_feed=4, delay=1.0)
    feeds = feeds_file(server, tmp_path, 10)
    base = ("--redis-url", redis_url, "--feeds", str(feeds), "run", "--workers", "2")
    # a host wait long enough that no item is deferred: the polls stay in flight, fetching,
    # instead of finishing early with their items parked (which would leave nothing to cancel)
    env = environ(server, NEWS_INGEST_METRICS_PORT="0", NEWS_INGEST_POLL_MAX_HOST_WAIT="300")
    first = start(*base, env=env, log=tmp_path / "first.log")
    procs.append(first)
    # signalled a few article fetches in, not at the first publication: a feed's items are
    # enqueued only when all of them are fetched, and with 10 feeds sharing the host's turns the
    # first feed can finish near the end, when few polls are left in flight
    article_hits = lambda: len([h for h in server.requests if h.path.startswith("/s")])  # noqa: E731
    assert wait_for(lambda: article_hits() >= 6, 90)
    tree = descendants(first.pid)
    signalled = time.monotonic()
    if how == "sigterm":
        first.send_signal(signal.SIGTERM)
    else:
        os.killpg(first.pid, signal.SIGINT)  # a terminal's Ctrl+C: every process of the group
    first.wait(timeout=60)
    took = time.monotonic() - signalled
    text = (tmp_path / "first.log").read_text()
    assert took < GRACE + 6, (took, text[-3000:])  # the grace, one article, process exits
    assert first.returncode == 0, text[-3000:]
    assert not [p for p in tree if alive(p)]
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    stopping = [e for e in lines if e.get("event") == "stopping"]
    stopped = [e for e in lines if e.get("event") == "stopped"]
    assert len(stopping) == 1 and len(stopped) == 1, text[-3000:]
    assert stopping[0]["waiting_for"]["feeds_in_progress"] > 0  # it was busy
    left = stopped[0]["left"]
    assert left["feeds_cancelled"] > 0, left  # cancelled after the grace, not awaited
    # the cancelled polls' fetch claims were handed back, so the restart need not wait them out
    assert left.get("items_released", 0) > 0, left
    assert left["queue_depth"] == Queue("articles", connection=r).count, left  # what is left
    assert left["jobs_started"] == 0, left  # the workers finished what they held
    assert len(published(r)) < len(urls)

    for n in range(len(urls)):  # the restart: fast pages, no host spacing
        server.routes[f"/s{n}"].delay = 0
    second = start(*base, env={**env, "NEWS_INGEST_POLL_HOST_RATE": "0"},
                   log=tmp_path / "second.log")  # fmt: skip
    procs.append(second)
    assert wait_for(lambda: len(published(r)) == len(urls), 90), published(r)
    stop(second)
    counts = published(r)
    assert set(counts.values()) == {1}, counts
    assert StartedJobRegistry(queue=Queue("articles", connection=r)).count == 0
    assert FailedJobRegistry(queue=Queue("articles", connection=r)).count == 0


def test_a_stopped_worker_finishes_the_article_in_hand_and_puts_the_rest_back(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    urls = busy_site(server, feeds=1, per_feed=20)
    feeds = feeds_file(server, tmp_path, 1)
    env = environ(server, NEWS_INGEST_POLL_HOST_RATE="0", NEWS_INGEST_WORKER_BATCH_SIZE="20")
    base = ("--redis-url", redis_url, "--feeds", str(feeds))
    assert cli(*base, "poll", "--once", env=env).returncode == 0
    queue = Queue("articles", connection=r)
    assert queue.count == 1  # one batch of 20
    log = tmp_path / "worker.log"
    # SIGTERM to itself with its third article in hand (extracted, deduplicated, its record
    # built, not yet published): a stop mid-article, at an exact point
    proc = start(*base, "worker", env={**env, "NEWS_INGEST_FAILPOINTS": "worker.before_publish=3:term"},
                 log=log)  # fmt: skip
    try:
        assert proc.wait(timeout=60) == 0
    finally:
        stop(proc)
    text = log.read_text()
    requeued = [json.loads(x) for x in text.splitlines() if '"batch_requeued"' in x]
    assert len(requeued) == 1, text[-3000:]
    assert requeued[0]["articles"] == 17
    assert len(published(r)) == 3  # the article in hand was finished; the rest not started
    assert queue.count == 1  # ... and is back in the queue
    done = cli(*base, "worker", "--burst", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    counts = published(r)
    assert sorted(counts) == sorted(urls) and set(counts.values()) == {1}
    totals = {k.decode(): int(v) for k, v in r.hgetall("news:metrics:articles").items()}
    assert totals == {"published": 20}  # the rest was read from its stored pages, once
    assert not list(r.scan_iter("news:page:*"))  # and the bodies left with their job


def test_a_second_signal_exits_at_once(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    busy_site(server, feeds=4, per_feed=3, delay=2.0)
    feeds = feeds_file(server, tmp_path, 4)
    env = environ(server, NEWS_INGEST_METRICS_PORT="0", NEWS_INGEST_RUN_SHUTDOWN_GRACE="30")
    proc = start("--redis-url", redis_url, "--feeds", str(feeds), "run", "--workers", "1",
                 env=env, log=tmp_path / "run.log")  # fmt: skip
    procs.append(proc)
    assert wait_for(lambda: len(server.requests) >= 3, 60)
    tree = descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    assert time.monotonic() - signalled < 2
    assert proc.returncode == 1
    assert wait_for(lambda: not [p for p in tree if alive(p)], 10)
    assert '"stop_forced"' in (tmp_path / "run.log").read_text()


@pytest.mark.parametrize("how", ["sigterm", "sigint_to_group"])
def test_a_stop_while_the_tree_is_being_built_is_graceful(
    how: str, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """A Ctrl+C right after `run` starts: it lands while the embedded server starts and the
    workers' models load, before the poll loop is up. Held, then acted on as any stop."""
    env = embedded_env(tmp_path)
    empty = tmp_path / "feeds.yaml"
    empty.write_text("feeds: []\n")
    proc = start("--feeds", str(empty), "run", env=env, log=tmp_path / "run.log")
    procs.append(proc)
    assert wait_for(lambda: '"redis_started"' in (tmp_path / "run.log").read_text(), 30, step=0.01)
    tree = descendants(proc.pid)
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)
    text = (tmp_path / "run.log").read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    events = [json.loads(x)["event"] for x in text.splitlines() if x.startswith("{")]
    assert "stop_held" in events, events  # it did land before the loop was up
    assert events.count("stopping") == 1 and events.count("stopped") == 1, events
    assert wait_for(lambda: not [p for p in tree if alive(p)], 10)


# ---------------------------------------------------------------- supervision


def test_killed_workers_are_respawned_and_nothing_is_lost_or_doubled(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    urls = busy_site(server, feeds=6, per_feed=4, delay=0.2)
    feeds = feeds_file(server, tmp_path, 6)
    env = environ(server, NEWS_INGEST_METRICS_PORT="0", NEWS_INGEST_POLL_HOST_RATE="4")
    proc = start("--redis-url", redis_url, "--feeds", str(feeds), "run", "--workers", "2",
                 env=env, log=tmp_path / "run.log")  # fmt: skip
    procs.append(proc)
    assert wait_for(lambda: len(workers_of(proc.pid)) == 2 and r.xlen("news:articles") >= 1, 90)
    before = workers_of(proc.pid)
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    assert wait_for(lambda: len([p for p in workers_of(proc.pid) if p not in before]) == 2, 10)
    assert time.monotonic() - killed < 10
    assert wait_for(lambda: len(published(r)) == len(urls), 90), published(r)
    queue = Queue("articles", connection=r)
    assert wait_for(lambda: StartedJobRegistry(queue=queue).count == 0, 30)
    counts = published(r)
    assert set(counts.values()) == {1}, counts
    assert FailedJobRegistry(queue=queue).count == 0
    # the dead workers' registrations went with them: only the two live ones are counted
    assert wait_for(lambda: len(Worker.all(connection=r)) == 2, 10)
    text = (tmp_path / "run.log").read_text()
    assert text.count('"worker_died"') == 2, text[-3000:]


def test_a_worker_dying_mid_batch_has_its_job_retried_at_once_not_after_its_heartbeat(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    urls = busy_site(server, feeds=2, per_feed=4)
    feeds = feeds_file(server, tmp_path, 2)
    # every worker SIGKILLs itself after its third publication: mid-batch (batches of 4)
    env = environ(server, NEWS_INGEST_METRICS_PORT="0", NEWS_INGEST_POLL_HOST_RATE="0",
                  NEWS_INGEST_WORKER_BATCH_SIZE="4",
                  NEWS_INGEST_FAILPOINTS="worker.after_publish=3")  # fmt: skip
    proc = start("--redis-url", redis_url, "--feeds", str(feeds), "run", "--workers", "1",
                 env=env, log=tmp_path / "run.log")  # fmt: skip
    procs.append(proc)
    assert wait_for(lambda: len(published(r)) == len(urls), 90), published(r)
    assert set(published(r).values()) == {1}
    lines = [json.loads(x) for x in (tmp_path / "run.log").read_text().splitlines()
             if x.startswith("{")]  # fmt: skip
    died = {e["pid"]: e["timestamp"] for e in lines if e["event"] == "worker_died"}
    retried = [e for e in lines if e["event"] == "job_abandoned"]
    assert retried and all(e["outcome"] == "retried" for e in retried)
    # retried when the supervisor reaped the worker, not 30 s later when its heartbeat lapsed
    for e in retried:
        gap = datetime.fromisoformat(died[e["worker_pid"]]) - datetime.fromisoformat(e["timestamp"])
        assert abs(gap.total_seconds()) < 1
    assert FailedJobRegistry(queue=Queue("articles", connection=r)).count == 0


def test_a_killed_parent_leaves_no_process_behind(
    server: TestServer, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    busy_site(server, feeds=3, per_feed=2, delay=0.5)
    feeds = feeds_file(server, tmp_path, 3)
    env = environ(server, NEWS_INGEST_METRICS_PORT="0", NEWS_INGEST_REDIS_EMBEDDED_PORT=str(free_port()),
                  NEWS_INGEST_REDIS_DATA_DIR=str(tmp_path / "var"))  # fmt: skip
    proc = start("--feeds", str(feeds), "run", "--workers", "2", env=env, log=tmp_path / "run.log")
    procs.append(proc)
    # the embedded server, the supervisor and its two workers
    assert wait_for(lambda: len(descendants(proc.pid)) >= 4 and server.requests, 60)
    tree = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = time.monotonic()
    assert wait_for(lambda: not [p for p in tree if alive(p)], 15), [p for p in tree if alive(p)]
    assert time.monotonic() - killed < 15


def test_readiness_counts_only_workers_with_a_fresh_heartbeat(r: redis.Redis) -> None:
    r.set("news:poller:heartbeat", f"{time.time():.0f}")
    queue = Queue("articles", connection=r)
    stale = Worker([queue], connection=r, name="stale")
    stale.register_birth()  # type: ignore[no-untyped-call]
    r.hset(stale.key, "last_heartbeat", "2020-01-01T00:00:00.000000Z")  # killed long ago
    assert problems(r, Keys()) == ["no live workers"]
    fresh = Worker([queue], connection=r, name="fresh")
    fresh.register_birth()  # type: ignore[no-untyped-call]
    assert problems(r, Keys()) == []


def test_respawn_backs_off_only_when_a_worker_dies_at_once() -> None:
    assert respawn_delay(lived_s=300, quick_deaths=3) == (0.0, 0)
    delays = []
    quick = 0
    for _ in range(7):
        delay, quick = respawn_delay(lived_s=0.5, quick_deaths=quick)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    # the 10 s line: 9.9 s is still "at once" (and backs off further), 10 s is not (resets)
    assert respawn_delay(lived_s=9.9, quick_deaths=2) == (4.0, 3)
    assert respawn_delay(lived_s=10.0, quick_deaths=5) == (0.0, 0)


# ---------------------------------------------------------------- Redis outage


def test_valkey_killed_and_back_after_10s_every_story_published_without_a_restart(
    server: TestServer, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    urls = busy_site(server, feeds=4, per_feed=5, delay=0.3)
    feeds = feeds_file(server, tmp_path, 4)
    valkey = EmbeddedValkey(tmp_path / "v", free_port())
    valkey.start()
    metrics = free_port()
    # short leases: what the last second before the SIGKILL wrote may be lost with the AOF
    env = environ(server, NEWS_INGEST_METRICS_PORT=str(metrics), NEWS_INGEST_POLL_HOST_RATE="2",
                  NEWS_INGEST_POLL_LEASE="15", NEWS_INGEST_POLL_FETCH_CLAIM="15")  # fmt: skip
    proc = start("--redis-url", valkey.url, "--feeds", str(feeds), "run", "--workers", "2",
                 env=env, log=tmp_path / "run.log")  # fmt: skip
    procs.append(proc)
    try:
        r = redis.Redis.from_url(valkey.url)
        assert wait_for(lambda: r.xlen("news:articles") >= 2, 90)
        time.sleep(1.1)  # AOF everysec
        assert valkey._process is not None
        valkey._process.kill()
        valkey._process.wait()
        valkey._process = None
        time.sleep(2)
        assert readyz(metrics) == 503
        status = cli("--redis-url", valkey.url, "status", "--json")
        assert status.returncode == 1 and "not reachable" in status.stderr
        time.sleep(8)  # 10 s in all
        assert proc.poll() is None
        valkey.start()
        r = redis.Redis.from_url(valkey.url)
        assert wait_for(lambda: len(published(r)) == len(urls), 120), published(r)
        counts = published(r)
        assert set(counts.values()) == {1}, counts
        assert workers_of(proc.pid) and proc.poll() is None
        assert wait_for(lambda: readyz(metrics) == 200, 30)
    finally:
        stop(proc)
        valkey.stop()
    text = (tmp_path / "run.log").read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "found an unhandled exception" not in text or '"worker_started"' in text


def test_a_worker_busy_when_valkey_dies_survives_and_works_on(tmp_path: Path) -> None:
    """RQ's worker quits on a Redis error inside a job ("found an unhandled exception,
    quitting"); ours waits for the server and goes on."""
    valkey = EmbeddedValkey(tmp_path / "v", free_port())
    valkey.start()
    r = redis.Redis.from_url(valkey.url)
    queue = Queue("articles", connection=r)
    queue.enqueue_call("time.sleep", args=(3,))  # busy while the server goes
    log = tmp_path / "worker.log"
    proc = start("--redis-url", valkey.url, "worker", env=environ(), log=log)
    try:
        assert wait_for(lambda: StartedJobRegistry(queue=queue).count == 1, 30)
        assert valkey._process is not None
        valkey._process.kill()
        valkey._process.wait()
        valkey._process = None
        time.sleep(5)  # the job ends while the server is away
        assert proc.poll() is None, log.read_text()[-2000:]
        valkey.start()
        r = redis.Redis.from_url(valkey.url)
        job = Queue("articles", connection=r).enqueue_call("time.sleep", args=(0,))
        assert wait_for(lambda: job.get_status(refresh=True) == "finished", 60), log.read_text()
        assert proc.poll() is None
    finally:
        stop(proc)
        valkey.stop()
    text = log.read_text()
    assert text.count('"redis_unavailable"') == 1 and '"redis_available"' in text, text[-2000:]


# ---------------------------------------------------------------- embedded server and ports


def embedded_env(tmp_path: Path, port: int | None = None, **extra: str) -> dict[str, str]:
    return environ(**{"NEWS_INGEST_REDIS_EMBEDDED_PORT": str(port or free_port()),
                      "NEWS_INGEST_REDIS_DATA_DIR": str(tmp_path / "var"),
                      "NEWS_INGEST_METRICS_PORT": "0", "NEWS_INGEST_WORKER_COUNT": "1", **extra})  # fmt: skip


def test_a_second_run_in_the_same_directory_refuses_and_the_first_keeps_working(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    env = embedded_env(tmp_path)
    empty = tmp_path / "feeds.yaml"
    empty.write_text("feeds: []\n")
    first = start("--feeds", str(empty), "run", env=env, log=tmp_path / "first.log")
    procs.append(first)
    assert wait_for(lambda: (tmp_path / "var" / "valkey.pid").exists() and workers_of(first.pid))
    second = cli("--feeds", str(empty), "run", env=env, timeout=60)
    assert second.returncode == 1
    assert f"belongs to pid {first.pid} (run)" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    listing = cli("feeds", "list", "--json", env=env)  # the first one's server still answers
    assert listing.returncode == 0, listing.stderr
    stop(first)
    assert first.returncode == 0


def valkey_pid(tmp_path: Path) -> int:
    return int((tmp_path / "var" / "valkey.pid").read_text().strip())


@pytest.mark.parametrize("role", ["server", "run"])
def test_an_embedded_server_killed_under_its_owner_is_started_again(
    role: str, tmp_path: Path, server: TestServer, procs: list[subprocess.Popen[bytes]]
) -> None:
    """As found: kill -9 of the embedded Valkey left `server` running silently beside a zombie,
    and `run` never ready again. The owner restarts it on the same port and data dir; under
    `run`, a story listed after the kill is still published."""
    busy_site(server, feeds=1, per_feed=1)
    env = {**embedded_env(tmp_path), "NEWS_INGEST_FETCH_ALLOW": server.allow,
           "NEWS_INGEST_POLL_MIN_INTERVAL": "1", "NEWS_INGEST_POLL_DEFAULT_INTERVAL": "1"}  # fmt: skip
    args = ["server"] if role == "server" else ["--feeds", str(feeds_file(server, tmp_path, 1)), "run"]
    owner = start(*args, env=env, log=tmp_path / "owner.log")
    procs.append(owner)
    assert wait_for(lambda: '"redis_started"' in (tmp_path / "owner.log").read_text(), 30)
    port = int(env["NEWS_INGEST_REDIS_EMBEDDED_PORT"])
    r = redis.Redis(port=port)
    if role == "run":
        assert wait_for(lambda: r.xlen("news:articles") == 1, 60)
    first = valkey_pid(tmp_path)
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: '"redis_restarted"' in (tmp_path / "owner.log").read_text(), 20), (
        (tmp_path / "owner.log").read_text()[-3000:])
    assert wait_for(lambda: r.ping(), 10)
    assert valkey_pid(tmp_path) != first and not alive(first)  # reaped: no zombie left
    assert owner.poll() is None  # the owner goes on
    if role == "run":  # the service goes on: a story listed after the kill arrives
        server.add("/late", pages.article_page("Late story", pages.paragraphs(DOCS[1])))
        server.add("/f0.xml", pages.rss("Feed 0", [{"title": "Late story", "link": server.url("/late")}]),
                   "application/rss+xml")  # fmt: skip
        assert wait_for(lambda: server.url("/late") in published(r), 90), (
            (tmp_path / "owner.log").read_text()[-3000:])
    stop(owner)
    assert owner.returncode == 0, (tmp_path / "owner.log").read_text()[-3000:]


def started_pid(log: Path) -> int | None:
    """The pid that the owner's `redis_started` line names, once it is written."""
    for line in log.read_text().splitlines():
        if '"redis_started"' in line:
            try:
                return int(json.loads(line)["pid"])
            except ValueError:  # the line half written yet
                return None
    return None


@pytest.mark.parametrize("role", ["server", "run"])
def test_an_embedded_server_killed_as_its_owner_starts_is_started_again(
    role: str, tmp_path: Path, server: TestServer, procs: list[subprocess.Popen[bytes]]
) -> None:
    """As found (1 full run in 4): a SIGKILL to the server right after `redis_started`, before
    the owner's loop watched it, failed the owner's first PING, and it exited "not
    reachable". Killed the moment that line is written, it is started again as any time
    later; under `run`, the feeds are still registered and a story published."""
    busy_site(server, feeds=1, per_feed=1)
    env = {**embedded_env(tmp_path), "NEWS_INGEST_FETCH_ALLOW": server.allow,
           "NEWS_INGEST_POLL_MIN_INTERVAL": "1", "NEWS_INGEST_POLL_DEFAULT_INTERVAL": "1"}  # fmt: skip
    args = ["server"] if role == "server" else ["--feeds", str(feeds_file(server, tmp_path, 1)), "run"]
    log = tmp_path / "owner.log"
    owner = start(*args, env=env, log=log)
    procs.append(owner)
    assert wait_for(lambda: started_pid(log) is not None, 30, step=0.001)
    first = started_pid(log)
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: '"redis_restarted"' in log.read_text() or owner.poll() is not None, 30)
    assert owner.poll() is None, log.read_text()[-3000:]
    r = redis.Redis(port=int(env["NEWS_INGEST_REDIS_EMBEDDED_PORT"]))
    assert wait_for(lambda: r.ping(), 10)
    assert valkey_pid(tmp_path) != first and not alive(first)
    if role == "run":
        assert wait_for(lambda: r.xlen("news:articles") == 1, 90), log.read_text()[-3000:]
    stop(owner)
    assert owner.returncode == 0, log.read_text()[-3000:]


def test_poll_and_worker_without_a_server_say_how_to_get_one_and_join_the_server_role(
    tmp_path: Path, server: TestServer, procs: list[subprocess.Popen[bytes]]
) -> None:
    urls = busy_site(server, feeds=1, per_feed=2)
    env = {**embedded_env(tmp_path, NEWS_INGEST_RUN_SERVER_WAIT="0.5"),
           "NEWS_INGEST_FETCH_ALLOW": server.allow}  # fmt: skip
    feeds = feeds_file(server, tmp_path, 1)
    for role in (("poll", "--once"), ("worker", "--burst")):
        alone = cli("--feeds", str(feeds), *role, env=env, timeout=60)
        assert alone.returncode == 1, alone.stderr
        assert "start one with `news-ingest server`" in alone.stderr
        assert "Traceback" not in alone.stderr
    assert not (tmp_path / "var" / "valkey.pid").exists()  # neither started one
    srv = start("server", env=env, log=tmp_path / "server.log")
    procs.append(srv)
    assert wait_for(lambda: (tmp_path / "var" / "valkey.port").exists(), 30)
    assert cli("--feeds", str(feeds), "poll", "--once", env=env).returncode == 0
    done = cli("worker", "--burst", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    port = int((tmp_path / "var" / "valkey.port").read_text())
    assert sorted(published(redis.Redis(port=port))) == sorted(urls)
    joined = cli("--feeds", str(feeds), "run", "--once", env=env)  # a run shares it too
    assert joined.returncode == 0, joined.stderr[-2000:]
    stop(srv)
    assert srv.returncode == 0
    assert '"redis_stopped"' in (tmp_path / "server.log").read_text()


def test_tail_and_status_watch_say_so_once_when_the_server_stops(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """They ride out the outage (tests/test_operator_output.py shows them resume): one line on
    stderr, no traceback, still running; Ctrl+C ends them."""
    env = embedded_env(tmp_path)
    srv = start("server", env=env, log=tmp_path / "server.log")
    procs.append(srv)
    assert wait_for(lambda: '"redis_started"' in (tmp_path / "server.log").read_text(), 30)
    readers = [
        subprocess.Popen([sys.executable, "-m", "ingest.cli", *argv], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for argv in (["tail"], ["status", "--watch", "0.2"])
    ]  # fmt: skip
    time.sleep(3)  # both reading
    stop(srv)
    time.sleep(4)
    for n, reader in enumerate(readers):
        assert reader.poll() is None  # still waiting for the server
        reader.send_signal(signal.SIGINT)
        _out, err = reader.communicate(timeout=30)
        assert "Traceback" not in err, err
        if n == 0:  # tail says so on stderr (status --watch shows NOT READY on its screen)
            assert "unreachable" in err.lower(), err


def test_embedded_port_taken_by_another_program_a_free_one_is_picked_and_found(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    with socket.socket() as other:  # another program on the configured port
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        env = embedded_env(tmp_path, taken)
        srv = start("server", env=env, log=tmp_path / "server.log")
        procs.append(srv)
        assert wait_for(lambda: (tmp_path / "var" / "valkey.port").exists(), 30)
        assert wait_for(lambda: '"redis_started"' in (tmp_path / "server.log").read_text(), 30)
        port = int((tmp_path / "var" / "valkey.port").read_text())
        assert port != taken
        added = cli("feeds", "add", "--no-check", "http://127.0.0.1:9/rss", env=env)
        assert added.returncode == 0, added.stderr
        assert redis.Redis(port=port).zcard("news:feeds:due") == 1  # the other command found it
        assert '"redis_port_taken"' in (tmp_path / "server.log").read_text()
        stop(srv)


def test_metrics_port_taken_one_error_and_nothing_left_running(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("0.0.0.0", 0))
        other.listen()
        taken = other.getsockname()[1]
        env = embedded_env(tmp_path, NEWS_INGEST_METRICS_PORT=str(taken))
        empty = tmp_path / "feeds.yaml"
        empty.write_text("feeds: []\n")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "--feeds", str(empty), "run"], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"metrics port 0.0.0.0:{taken} is not available" in err
    assert "NEWS_INGEST_METRICS_PORT" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "var" / "valkey.pid").exists()  # nothing was started
    assert not children(proc.pid)


def test_procfile_and_compose_name_commands_that_exist() -> None:
    import yaml

    roles = [line.split(":", 1)[1].split() for line in (ROOT / "Procfile").read_text().splitlines()
             if line.strip()]  # fmt: skip
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    roles += [s["command"] for s in compose["services"].values()
              if s.get("command", [""])[0] == "news-ingest"]  # fmt: skip
    assert ["news-ingest", "server"] in roles
    for argv in roles:
        helped = cli(*argv[1:], "--help")
        assert helped.returncode == 0, (argv, helped.stderr)


# ---------------------------------------------------------------- feeds file


def test_the_example_feeds_seed_an_empty_registry_once_and_feeds_remove_holds(
    server: TestServer, redis_url: str, tmp_path: Path
) -> None:
    busy_site(server, feeds=2, per_feed=1)
    (tmp_path / "config").mkdir()
    feeds_file(server, tmp_path / "config", 2)  # config/feeds.yaml, where `run` looks
    env = environ(server)
    first = cli("--redis-url", redis_url, "run", "--once", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "registry seeded with 2 feeds" in first.stderr
    removed = cli("--redis-url", redis_url, "feeds", "remove", server.url("/f1.xml"), env=env)
    assert removed.returncode == 0, removed.stderr
    again = cli("--redis-url", redis_url, "run", "--once", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    listing = cli("--redis-url", redis_url, "feeds", "list", "--json", env=env)
    urls = [json.loads(line)["url"] for line in listing.stdout.splitlines()]
    assert urls == [server.url("/f0.xml")]  # the removed feed stayed removed
    given = cli("--redis-url", redis_url, "--feeds", str(tmp_path / "config" / "feeds.yaml"),
                "run", "--once", env=env, cwd=tmp_path)  # fmt: skip
    assert given.returncode == 0
    listing = cli("--redis-url", redis_url, "feeds", "list", "--json", env=env)
    assert len(listing.stdout.splitlines()) == 2  # --feeds given: its feeds are registered
