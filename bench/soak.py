"""Soak: the whole service against feeds that keep publishing, watched for growth.

    python bench/soak.py [--minutes 10] [--feeds 2000] [--origins 40] [--period 300]

`news-ingest run` (poller + 2 workers) against a fresh embedded Valkey and bench/soakserver.py
(FEEDS feeds over ORIGINS local sites, each with a new item every PERIOD seconds). Every 10 s it
samples queue depth, stream length, Redis memory and the RSS of every process of the run. At the
end: throughput (and per minute), latency from an item's pubDate to its stream entry
(p50/p95/p99), queue depth and RSS over time, counters, and whether they stayed flat (the last
quarter's mean within 25 % of the second quarter's, or within 2 jobs for the queue).

Feeds start empty, and every feed is polled at the default interval (120 s here) until its
cadence is learnt, so the first minutes come in waves; the steady state is what to read. The
period must be short against the run: with a 600 s period a 10-minute run sees each feed's
items only once or twice, and publication looks as if it stopped between waves (it does not).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import redis
from common import ROOT
from common import valkey as temporary_valkey


def tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def proc_mb(pid: int, source: str, field: str) -> float:
    """A kB field of /proc/<pid>/<source>, in MB (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int) -> float:
    return proc_mb(pid, "status", "VmRSS:")


def pss_mb(pid: int) -> float:
    """Proportional set size: pages shared with other processes (the workers are forked from
    the run process and share its libraries and models) counted once across them, so the sum
    over the tree is the memory the service really holds."""
    return proc_mb(pid, "smaps_rollup", "Pss:")


def flat(series: list[float], slack: float, floor: float = 0.0) -> bool:
    q = max(1, len(series) // 4)
    early, late = statistics.mean(series[q : 2 * q]), statistics.mean(series[-q:])
    return late <= early * (1 + slack) + floor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--feeds", type=int, default=2000)
    ap.add_argument("--origins", type=int, default=40)
    ap.add_argument("--period", type=float, default=300, help="seconds between items of a feed")
    args = ap.parse_args()

    server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "soakserver.py"),
                               str(args.origins), str(args.feeds), str(args.period)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert server.stdout is not None
    ports = [int(p) for p in server.stdout.readline().split(",")]
    with tempfile.TemporaryDirectory() as tmp, temporary_valkey() as valkey:
        feeds = Path(tmp) / "feeds.yaml"
        feeds.write_text("feeds:\n" + "".join(
            f"  - http://127.0.0.1:{ports[n % len(ports)]}/feed/{n}.xml\n" for n in range(args.feeds)
        ))  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWS_INGEST_")}
        env.update({
            "NEWS_INGEST_FETCH_ALLOW": ",".join(f"127.0.0.1:{p}" for p in ports),
            "NEWS_INGEST_POLL_HOST_RATE": "0", "NEWS_INGEST_POLL_HOST_INFLIGHT": "0",
            "NEWS_INGEST_POLL_MIN_INTERVAL": "60", "NEWS_INGEST_POLL_DEFAULT_INTERVAL": "120",
            "NEWS_INGEST_FETCH_ROBOTS": "false",
        })  # fmt: skip
        log = open(Path(tmp) / "run.log", "w")  # noqa: SIM115
        run = subprocess.Popen([sys.executable, "-m", "ingest.cli", "--log-level", "warning",
                                "--redis-url", valkey.url, "--feeds", str(feeds), "run",
                                "--workers", "2", "--metrics-port", "0"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        r = redis.Redis.from_url(valkey.url)
        samples = []
        started = time.time()
        try:
            while time.time() - started < args.minutes * 60:
                time.sleep(10)
                procs = {p: rss_mb(p) for p in tree(run.pid)}
                samples.append({
                    "t": round(time.time() - started), "queue": r.llen("rq:queue:articles"),
                    "stream": r.xlen("news:articles"),
                    "due_now": r.zcount("news:feeds:due", "-inf", time.time()),
                    "redis_mb": round(int(r.info("memory")["used_memory"]) / 2**20, 1),
                    "rss_mb": {str(p): round(v, 1) for p, v in procs.items()},
                    "pss_mb": round(sum(pss_mb(p) for p in procs), 1),
                })  # fmt: skip
            entries = r.xrange("news:articles")
            tallies = {key.decode(): {k.decode(): int(v) for k, v in r.hgetall(key).items()}
                       for key in r.scan_iter("news:metrics:*", _type="hash")
                       if key.count(b":") == 2}  # fmt: skip
            ahead = sorted(
                s - time.time() for _id, s in r.zrange("news:feeds:due", 0, -1, withscores=True)
            )
        finally:
            run.send_signal(signal.SIGTERM)
            run.wait(timeout=60)
            server.terminate()
    latencies = []
    for entry_id, fields in entries:
        when = json.loads(fields[b"data"]).get("published_at")  # the item's pubDate
        if when:
            t_item = datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
            latencies.append(int(entry_id.split(b"-")[0]) / 1000 - t_item)
    total_rss = [sum(s["rss_mb"].values()) for s in samples]
    queue = [float(s["queue"]) for s in samples]
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

    print(f"soak: {args.minutes} min, {args.feeds} feeds on {args.origins} sites, "
          f"one item per feed every {args.period:.0f} s")  # fmt: skip
    print(f"published {len(entries)} ({len(entries) / (args.minutes * 60):.2f}/s); latency "
          f"item pubDate -> stream: p50 {pct(0.5):.0f} s, p95 {pct(0.95):.0f} s, "
          f"p99 {pct(0.99):.0f} s")  # fmt: skip
    print("queue depth over time:", [int(q) for q in queue])
    print("total RSS of the run's processes (MB) over time:", [round(x) for x in total_rss])
    print("total PSS (shared pages counted once) over time:", [round(s["pss_mb"]) for s in samples])
    peak: dict[str, float] = {}
    for s in samples:
        for p, v in s["rss_mb"].items():
            peak[p] = max(peak.get(p, 0.0), v)
    print("peak RSS per process (MB):", {p: round(v) for p, v in peak.items()})
    print(f"redis memory: {samples[0]['redis_mb']} -> {samples[-1]['redis_mb']} MB")
    per_minute = [0] * (int(args.minutes) + 1)
    for entry_id, _fields in entries:
        minute = int((int(entry_id.split(b"-")[0]) / 1000 - started) // 60)
        per_minute[min(max(minute, 0), len(per_minute) - 1)] += 1
    print("published per minute:", per_minute[: int(args.minutes)])
    print("feeds due (overdue) over time:", [s["due_now"] for s in samples])
    print("counters at the end:", json.dumps(tallies, sort_keys=True))
    if ahead:
        print(f"next polls at the end: min {ahead[0]:.0f} s, median {ahead[len(ahead) // 2]:.0f} s, "
              f"max {ahead[-1]:.0f} s")  # fmt: skip
    print(f"flat RSS: {flat(total_rss, 0.25)}; flat queue: {flat(queue, 0.25, 2.0)}")


if __name__ == "__main__":
    main()
