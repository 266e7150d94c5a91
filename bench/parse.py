"""What parsing feeds off the event loop costs (issue 15 #11), in well under a minute.

Two measures: (1) a 165,000-item feed parsed inline and through the poller's thread pool, with
the longest stall of a 50 ms ticker on the loop meanwhile; (2) the cost per poll of the thread
hop for an ordinary feed (50 items), inline vs `run_in_executor`, over many polls.

    .venv/bin/python bench/parse.py [--items 165000] [--polls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import time

from ingest.feeds import feedparse


def feed(n: int) -> bytes:
    items = "".join(
        f"<item><title>Story {i}</title><link>http://127.0.0.1:9/s/{i}</link></item>"
        for i in range(n)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>f</title>{items}</channel></rss>'
    ).encode()


async def with_ticker(work: object) -> tuple[float, float]:
    """(seconds the work took, longest gap between 50 ms ticks meanwhile)."""
    gaps = [0.0]
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.05)
            now = time.monotonic()
            gaps.append(now - last - 0.05)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.06)
    started = time.monotonic()
    await work  # type: ignore[misc]
    took = time.monotonic() - started
    stop.set()
    await tick
    return took, max(gaps)


async def main(items: int, polls: int) -> None:
    pool = concurrent.futures.ThreadPoolExecutor(2)
    loop = asyncio.get_running_loop()
    big = feed(items)

    async def inline() -> None:
        feedparse.parse(big, max_items=200)

    async def threaded() -> None:
        await loop.run_in_executor(pool, feedparse.parse, big, "", "", 200)

    print(f"feed of {items:,} items, {len(big) / 1e6:.1f} MB")
    for name, work in (("inline", inline()), ("thread pool", threaded())):
        took, stall = await with_ticker(work)
        print(f"  {name:12s} parse {took:6.2f} s   longest loop stall {stall:6.3f} s")

    small = feed(50)
    t = time.perf_counter()
    for _ in range(polls):
        feedparse.parse(small, max_items=200)
    direct = (time.perf_counter() - t) / polls
    t = time.perf_counter()
    for _ in range(polls):
        await loop.run_in_executor(pool, feedparse.parse, small, "", "", 200)
    hop = (time.perf_counter() - t) / polls
    print(f"50-item feed ({len(small):,} B), {polls} polls: inline {direct * 1e3:.2f} ms/poll, "
          f"thread pool {hop * 1e3:.2f} ms/poll (+{(hop - direct) * 1e6:.0f} us)")  # fmt: skip
    pool.shutdown()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=165_000)
    ap.add_argument("--polls", type=int, default=300)
    args = ap.parse_args()
    asyncio.run(main(args.items, args.polls))
