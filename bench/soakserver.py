"""Feeds that keep publishing, for the soak test: `python bench/soakserver.py ORIGINS FEEDS PERIOD`.

Serves on ORIGINS ports of 127.0.0.1 (each one a site): /feed/<n>.xml lists feed n's latest 10
items, a new one every PERIOD seconds (feeds staggered so items arrive evenly), with an ETag that
changes only when an item arrives (304 otherwise); /a/<n>/<k> is item k's article page, a
different text for every item. The ports go to stdout on the first line.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import sys
import time

from common import read_request

WORDS = ["council", "market", "minister", "hospital", "school", "league", "researchers", "company", "river", "city", "budget", "election", "vaccine", "court", "festival", "energy", "farmers", "airport", "bridge", "police", "station", "museum", "treaty", "harvest", "engineers", "storm", "court", "union", "tariff", "startup"]  # fmt: skip
T0 = time.time()


def latest(n: int, feeds: int, period: float, now: float) -> int:
    """Index of feed n's newest item at `now` (items arrive staggered across feeds)."""
    offset = period * n / feeds
    return int((now - T0 - offset) // period) if now - T0 >= offset else -1


def published_at(n: int, k: int, feeds: int, period: float) -> float:
    return T0 + period * n / feeds + k * period


def article(n: int, k: int) -> bytes:
    rng = random.Random(n * 1_000_003 + k)
    paras = []
    for _ in range(6):
        sentences = []
        for _ in range(4):
            words = [rng.choice(WORDS) for _ in range(rng.randint(10, 18))]
            sentences.append(" ".join(words).capitalize() + ".")
        paras.append("<p>" + " ".join(sentences) + "</p>")
    title = f"Report {n}-{k}: {' '.join(rng.choice(WORDS) for _ in range(5))}"
    return (f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
            f"{''.join(paras)}</article></body></html>").encode()  # fmt: skip


def feed(n: int, port: int, feeds: int, period: float, now: float) -> tuple[str, bytes]:
    top = latest(n, feeds, period, now)
    items = []
    for k in range(max(0, top - 9), top + 1):
        when = email.utils.formatdate(published_at(n, k, feeds, period), usegmt=True)
        link = f"http://127.0.0.1:{port}/a/{n}/{k}"
        items.append(f"<item><title>Report {n}-{k}</title><link>{link}</link><guid>{link}</guid>"
                     f"<pubDate>{when}</pubDate></item>")  # fmt: skip
    body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Soak {n}</title>'
            f"<link>http://127.0.0.1:{port}/</link><description>soak</description>"
            f"{''.join(reversed(items))}</channel></rss>").encode()  # fmt: skip
    return f'"{n}-{top}"', body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int,
                 feeds: int, period: float) -> None:  # fmt: skip
    try:
        while True:
            path, headers = await read_request(reader)
            parts = path.strip("/").split("/")
            status, extra, body = 404, "", b""
            if parts[0] == "feed":
                n = int(parts[1].split(".")[0])
                etag, body = feed(n, port, feeds, period, time.time())
                if headers.get("if-none-match") == etag:
                    status, body = 304, b""
                else:
                    status = 200
                extra = f"ETag: {etag}\r\nContent-Type: application/rss+xml\r\n"
            elif parts[0] == "a":
                status, body = 200, article(int(parts[1]), int(parts[2]))
                extra = "Content-Type: text/html; charset=utf-8\r\n"
            reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}[status]
            length = "" if status == 304 else f"Content-Length: {len(body)}\r\n"
            writer.write(f"HTTP/1.1 {status} {reason}\r\n{extra}{length}\r\n".encode() + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
        pass
    finally:
        writer.close()


async def main(origins: int, feeds: int, period: float) -> None:
    servers = []
    for _ in range(origins):
        holder: list[int] = []
        server = await asyncio.start_server(
            lambda r, w, h=holder: handle(r, w, h[0], feeds, period), "127.0.0.1", 0, backlog=1024
        )
        holder.append(server.sockets[0].getsockname()[1])
        servers.append((server, holder[0]))
    print(",".join(str(p) for _s, p in servers), flush=True)
    await asyncio.gather(*(s.serve_forever() for s, _p in servers))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
