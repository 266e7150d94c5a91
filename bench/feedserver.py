"""A small, fast feed server for benchmarks: `python bench/feedserver.py ORIGINS CHANGING`.

Serves /feed/<n>.xml on 127.0.0.1, on ORIGINS ports (each port is an origin, as separate sites
would be; the ports are printed on the first line of stdout), with HTTP/1.1 keep-alive. Each feed has an ETag; a request
carrying it gets 304, except for the first CHANGING feeds, whose ETag changes on every request
(a 200 with the same items, as servers that ignore validators do). Runs in its own process so
the poller's CPU time is measured alone.
"""

from __future__ import annotations

import asyncio
import sys

from common import read_request

FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed %d</title>'
    b"<link>http://127.0.0.1/</link><description>bench</description>"
    b"<item><title>Item</title><link>http://127.0.0.1:%d/a/%d</link><guid>g%d</guid></item>"
    b"</channel></rss>"
)


async def handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, changing: int
) -> None:
    counter = 0
    try:
        while True:
            path, headers = await read_request(reader)
            try:
                n = int(path.rsplit("/", 1)[1].split(".")[0])
            except ValueError:
                n = -1
            counter += 1
            etag = f'"{n}-{counter}"' if n < changing else f'"{n}"'
            if n < 0:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            elif headers.get("if-none-match") == etag:
                writer.write(f"HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\n\r\n".encode())
            else:
                body = FEED % (n, port, n, n)
                writer.write(
                    f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nETag: {etag}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(origins: int, changing: int) -> None:
    """Listen on `origins` ports the kernel picks; print them, comma-separated, on one line."""
    servers = []
    for _ in range(origins):
        holder: list[int] = []
        server = await asyncio.start_server(
            lambda r, w, h=holder: handle(r, w, h[0], changing), "127.0.0.1", 0, backlog=1024
        )
        holder.append(server.sockets[0].getsockname()[1])
        servers.append((server, holder[0]))
    print(",".join(str(port) for _s, port in servers), flush=True)
    await asyncio.gather(*(s.serve_forever() for s, _p in servers))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
