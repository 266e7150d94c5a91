"""/metrics, /healthz and /readyz served for real, reading counters a real run produced."""

import os
import threading
import time
import urllib.request
from pathlib import Path

import redis

from ingest.core import counters
from ingest.core.embedded import free_port
from ingest.core.keys import Keys
from ingest.core.settings import Settings
from ingest.metrics import serve
from tests.server import TestServer


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_and_readiness(r: redis.Redis, redis_url: str) -> None:
    keys = Keys()
    counters.incr(r, keys, "articles", "published", 3)
    counters.incr(r, keys, "polls", "not_modified", 2)
    r.xadd("news:articles", {"id": "x", "event": "created", "data": "{}"})
    port = free_port()
    httpd = serve(Settings(), r, port, "127.0.0.1")
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        status, body = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert 'news_ingest_articles_total{outcome="published"} 3.0' in body
        assert 'news_ingest_polls_total{outcome="not_modified"} 2.0' in body
        assert "news_ingest_stream_length 1.0" in body
        assert 'news_ingest_queue_depth{queue="articles"} 0.0' in body
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        assert get(f"http://127.0.0.1:{port}/readyz")[0] == 503  # no poller heartbeat yet
        r.set("news:poller:heartbeat", f"{time.time():.0f}")
        status, why = get(f"http://127.0.0.1:{port}/readyz")
        assert (status, why.strip()) == (503, "no live workers")
        from rq import Queue, Worker

        worker = Worker([Queue("articles", connection=r)], connection=r)
        worker.register_birth()
        assert get(f"http://127.0.0.1:{port}/readyz")[0] == 200
        worker.register_death()
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_status_exits_non_zero_until_a_worker_and_the_poller_are_alive(
    r: redis.Redis, redis_url: str
) -> None:
    import json as _json
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT, cli

    down = cli("--redis-url", redis_url, "status", "--json")
    assert down.returncode == 1
    data = _json.loads(down.stdout)
    assert data["ready"] is False
    assert set(data["problems"]) == {"no live workers", "poller heartbeat missing or stale"}

    worker = subprocess.Popen([sys.executable, "-m", "ingest.cli", "--redis-url", redis_url,
                               "worker"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        r.set("news:poller:heartbeat", f"{time.time():.0f}")
        deadline = time.time() + 20
        up = down
        while time.time() < deadline:
            up = cli("--redis-url", redis_url, "status", "--json")
            if up.returncode == 0:
                break
            time.sleep(0.5)
        assert up.returncode == 0, up.stdout
        assert _json.loads(up.stdout)["ready"] is True
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_metrics_scraped_during_a_real_run_match_what_the_run_did(
    server: TestServer, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    from tests import pages
    from tests.conftest import ROOT

    for i, doc in enumerate([pages.BOLIVIA, pages.AUSTRIA, pages.WAR_REPORT]):
        server.add(f"/a{i}", pages.article_page(f"Story {i}", pages.paragraphs(doc)))
    items = [{"title": f"Story {i}", "link": server.url(f"/a{i}")} for i in range(3)]
    items.append({"title": "Copy", "link": server.url("/a0?utm_source=x")})  # a duplicate
    server.add("/feed.xml", pages.rss("F", items), "application/rss+xml")
    server.add("/gone.xml", "gone", status=410)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {server.url('/feed.xml')}\n  - {server.url('/gone.xml')}\n")
    port = free_port()
    env = {"NEWS_INGEST_FETCH_ALLOW": server.allow, "NEWS_INGEST_POLL_HOST_RATE": "0",
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "--log-json", "--redis-url", redis_url, "--feeds",
         str(feeds), "run", "--workers", "1", "--metrics-port", str(port), "--metrics-host",
         "127.0.0.1"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        body = ""
        deadline = time.time() + 60
        while time.time() < deadline:
            body = get(f"http://127.0.0.1:{port}/metrics")[1] if _up(port) else ""
            if all(want in body for want in (
                'news_ingest_articles_total{outcome="published"} 3.0',
                'news_ingest_queue_depth{queue="articles"} 0.0',
                'news_ingest_polls_total{outcome="gone"} 1.0',  # new feeds start within 30 s
            )):  # fmt: skip
                break
            time.sleep(0.5)
        assert 'news_ingest_articles_total{outcome="published"} 3.0' in body, body[-3000:]
        assert 'news_ingest_queue_depth{queue="articles"} 0.0' in body
        assert 'news_ingest_polls_total{outcome="ok"} 1.0' in body
        assert 'news_ingest_polls_total{outcome="gone"} 1.0' in body
        assert 'news_ingest_feeds{health="gone"} 1.0' in body  # one 410 is permanent
        assert 'news_ingest_stage_seconds_count{stage="end_to_end"} 3.0' in body
        assert 'news_ingest_stage_seconds_count{stage="extract"} 3.0' in body
        assert 'news_ingest_site_extraction_success{site="127.0.0.1"} 1.0' in body
        assert "news_ingest_workers 1.0" in body
        assert get(f"http://127.0.0.1:{port}/readyz")[0] == 200
        # the supervisor (forked from the run process) closes its copy of the listening
        # socket before it forks the worker: neither holds one (it would outlive the run,
        # port still taken)
        listening = listening_inode(port)
        (supervisor,) = children(proc.pid)
        workers = children(supervisor)
        assert len(workers) == 1
        assert listening in socket_inodes(proc.pid)
        assert listening not in socket_inodes(supervisor) | socket_inodes(workers[0])
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]


def listening_inode(port: int) -> str:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            return fields[9]
    raise AssertionError(f"nothing listens on {port}")


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:[") : -1])
    return found


def _up(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_alert_rules_and_dashboard_use_only_series_we_export(r: redis.Redis) -> None:
    import json as _json
    import re

    from ingest.metrics import RedisCollector
    from tests.conftest import ROOT

    exported = {family.name for family in RedisCollector(Settings(), r).collect()}
    text = (ROOT / "deploy" / "alerts.yml").read_text()
    dash = _json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    text += " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    used = {re.sub(r"_(total|bucket|count|sum)$", "", m)
            for m in re.findall(r"news_ingest_\w+", text)}  # fmt: skip
    assert used and used <= exported, used - exported
    readme = (ROOT / "README.md").read_text()
    assert all(name in readme for name in exported), exported - set(
        re.findall(r"news_ingest_\w+", readme)
    )


def test_status_json_follows_its_schema_and_shows_site_drift(
    r: redis.Redis, redis_url: str
) -> None:
    import json as _json

    import jsonschema

    from ingest.core import observe
    from tests.conftest import ROOT, cli

    keys = Keys()
    day = time.time() - 86400
    pipe = r.pipeline()
    for i in range(30):  # a week of good extraction, then a bad day: the template changed
        observe.site_result(pipe, keys, "news.example", True, at=day - i * 3600)
        observe.site_result(pipe, keys, "steady.example", True, at=day - i * 3600)
    for i in range(12):
        observe.site_result(pipe, keys, "news.example", i < 3)
        observe.site_result(pipe, keys, "steady.example", True)
    pipe.execute()
    r.xgroup_create("news:articles", "readers", id="$", mkstream=True)
    out = cli("--redis-url", redis_url, "status", "--json")
    data = _json.loads(out.stdout)
    jsonschema.validate(data, _json.loads((ROOT / "docs" / "status.schema.json").read_text()))
    assert data["drifting_sites"] == ["news.example"]
    assert data["stream"]["groups"][0]["name"] == "readers"


def test_readyz_goes_unready_when_redis_stops_and_ready_when_it_returns(tmp_path: Path) -> None:
    from rq import Queue, Worker

    from ingest.core.embedded import EmbeddedValkey

    valkey = EmbeddedValkey(tmp_path / "v", free_port())
    valkey.start()
    client = redis.Redis.from_url(valkey.url, socket_timeout=2, socket_connect_timeout=2)
    port = free_port()
    httpd = serve(Settings(), client, port, "127.0.0.1")
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client.set("news:poller:heartbeat", f"{time.time() + 600:.0f}")
        Worker([Queue("articles", connection=client)], connection=client).register_birth()
        assert get(f"http://127.0.0.1:{port}/readyz")[0] == 200
        time.sleep(1.2)  # AOF fsync is every second
        valkey.stop()
        status, why = get(f"http://127.0.0.1:{port}/readyz")
        assert status == 503 and why.startswith("redis unreachable")
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200  # the process itself is up
        valkey.start()  # same port, same append-only file: the state comes back
        deadline = time.time() + 10
        while get(f"http://127.0.0.1:{port}/readyz")[0] != 200 and time.time() < deadline:
            time.sleep(0.2)
        assert get(f"http://127.0.0.1:{port}/readyz")[0] == 200
    finally:
        httpd.shutdown()
        httpd.server_close()
        valkey.stop()
