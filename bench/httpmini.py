"""The request-reading half of the tiny HTTP/1.1 servers the benchmarks run (keep-alive)."""

from __future__ import annotations

import asyncio


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    """The next request's path and lower-cased headers (raises IncompleteReadError at EOF)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    return lines[0].split(" ")[1], headers
