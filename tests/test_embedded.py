"""The embedded Valkey server: persistent, adopted by later commands, stopped gracefully."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from ingest.core.embedded import EmbeddedValkey, free_port
from tests.conftest import ROOT


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # a zombie is dead for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_second_instance_adopts_and_does_not_stop_it(tmp_path: Path) -> None:
    port = free_port()
    first = EmbeddedValkey(tmp_path / "v", port)
    assert first.start() is True
    pid = first.running_pid()
    second = EmbeddedValkey(tmp_path / "v", port)
    assert second.start() is False  # adopted
    second.stop()  # not ours: nothing happens
    assert _alive(pid)
    redis.Redis(port=port).set("k", "v")
    first.stop()
    assert not _alive(pid)
    # AOF: the data survives a restart
    third = EmbeddedValkey(tmp_path / "v", port)
    third.start()
    assert redis.Redis(port=port).get("k") == b"v"
    third.stop()


def test_cli_starts_finds_and_stops_the_embedded_server(tmp_path: Path) -> None:
    """`run` on SIGTERM stops its server; `feeds` and `status` from the same dir find the data."""
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWS_INGEST_", "REDIS_URL"))}
    env.update(NEWS_INGEST_REDIS_EMBEDDED_PORT=port, NEWS_INGEST_REDIS_DATA_DIR=str(tmp_path / "var"),
               NEWS_INGEST_WORKER_COUNT="1")  # fmt: skip
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: []\n")
    base = [sys.executable, "-m", "ingest.cli", "--log-json"]
    # a loopback feed the fetch guard refuses (not allowed): this test sends no traffic at all
    add = subprocess.run([*base, "feeds", "add", "--no-check", "http://127.0.0.1:9/rss"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert add.returncode == 0, add.stderr
    proc = subprocess.Popen([*base, "--feeds", str(feeds), "run", "--metrics-port", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    pidfile = tmp_path / "var" / "valkey.pid"
    deadline = time.monotonic() + 30
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    server_pid = int(pidfile.read_text())
    listing = subprocess.run([*base, "feeds", "list", "--json"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "http://127.0.0.1:9/rss" in listing.stdout  # adopted the running server, saw the data
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=40) == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    time.sleep(0.2)
    assert not _alive(server_pid)
    log = proc.stderr.read().decode() if proc.stderr else ""
    assert "redis_stopped" in log and "workers_stopped" in log
