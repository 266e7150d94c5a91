"""Poller cost: N feeds on a local server, most answering 304.

    python bench/poll.py [--feeds 5000] [--changing 250] [--origins 50]

Starts an embedded Valkey and bench/feedserver.py (its own process) on 127.0.0.1, registers the
feeds, polls them all once to learn their ETags, then measures a second full pass in which
every feed sends its validators: wall time, polls per second, CPU seconds per poll of this (the
poller's) process, and Redis memory per registered feed. Host politeness is set to no spacing
(every feed is on one host here; in production it spaces requests per host, which is the point)
but the shared in-flight gate stays on, so its Redis round trips are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import time

import redis
import structlog
from common import ROOT
from common import valkey as temporary_valkey

from ingest.core.keys import Keys
from ingest.core.settings import Settings
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.registry import Registry
from ingest.poller import Poller


async def one_pass(settings: Settings, r: redis.Redis) -> tuple[float, float, dict[str, int]]:
    poller = Poller(settings, r)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        stats = await poller.run_once()
    finally:
        await poller.aclose()
    return time.perf_counter() - wall, time.process_time() - cpu, stats.by_outcome


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--feeds", type=int, default=5000)
    ap.add_argument("--changing", type=int, default=250, help="feeds that ignore validators")
    ap.add_argument("--origins", type=int, default=50, help="server ports (sites)")
    ap.add_argument("--profile", action="store_true", help="cProfile the second pass")
    ap.add_argument("--sort", default="tottime", help="profile sort key")
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "feedserver.py"),
                               str(args.origins), str(args.changing)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert server.stdout is not None
    ports = [int(p) for p in server.stdout.readline().strip().split(",")]
    with temporary_valkey() as valkey:
        try:
            r = redis.Redis.from_url(valkey.url)
            settings = Settings().with_overrides(
                fetch={"allow": [f"127.0.0.1:{p}" for p in ports]},
                poll={"host_rate": 0, "host_inflight": 1000, "concurrency": 100},
            )
            base_mem = int(r.info("memory")["used_memory"])
            registry = Registry(r, Keys())
            for i in range(args.feeds):
                port = ports[i % len(ports)]
                registry.add(FeedSpec(f"http://127.0.0.1:{port}/feed/{i}.xml"))
            # the items point at a path the server 404s: first-pass article work is not measured
            warm_wall, _, warm = asyncio.run(one_pass(settings, r))
            if args.profile:
                import cProfile
                import pstats

                prof = cProfile.Profile(time.process_time)
                prof.enable()
            wall, cpu, outcomes = asyncio.run(one_pass(settings, r))
            if args.profile:
                prof.disable()
                pstats.Stats(prof).sort_stats(args.sort).print_stats(40)
            r.delete(*r.keys("news:inflight:*") or ["-"])
            r.delete(*r.keys("rq:*") or ["-"])
            mem = int(r.info("memory")["used_memory"]) - base_mem
            print(f"feeds {args.feeds} on {args.origins} origins, "
                  f"of which {args.changing} ignore validators")  # fmt: skip
            print(f"first pass (200s + article fetches): {warm_wall:.2f} s {warm}")
            print(f"second pass outcomes: {outcomes}")
            print(f"second pass: {wall:.2f} s wall, {args.feeds / wall:.0f} polls/s, "
                  f"{cpu / args.feeds * 1e6:.0f} us CPU per poll (poller process)")  # fmt: skip
            print(f"poller capacity: {args.feeds / cpu:.0f} polls per CPU-second "
                  "(wall rate shares 2 cores with the feed server and Valkey)")  # fmt: skip
            print(
                f"redis memory per feed (registry, schedule, state): {mem / args.feeds:.0f} bytes"
            )
        finally:
            server.terminate()


if __name__ == "__main__":
    main()
