"""What the benchmarks share: the import path, a temporary Valkey, a loopback HTTP server, the
request reader of the tiny keep-alive feed servers, and a process's CPU time from /proc.

Every benchmark touches only 127.0.0.1. Scripts run as `python bench/<name>.py`, so this
directory is on `sys.path` and `from common import ...` finds this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from ingest.core.embedded import EmbeddedValkey


@contextlib.contextmanager
def valkey() -> Iterator[EmbeddedValkey]:
    """An empty embedded Valkey on a free loopback port, stopped and deleted afterwards."""
    from ingest.core.embedded import EmbeddedValkey, free_port

    with tempfile.TemporaryDirectory(prefix="bench-valkey-") as tmp:
        server = EmbeddedValkey(Path(tmp), free_port())
        server.start()
        try:
            yield server
        finally:
            server.stop()


def serve(routes: dict[str, bytes]) -> ThreadingHTTPServer:
    """Serve fixed bodies on 127.0.0.1 (a free port) in a thread: *.xml as RSS, the rest HTML."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = routes.get(self.path.split("?")[0])
            ctype = "application/rss+xml" if self.path.endswith(".xml") else "text/html"
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", f"{ctype}; charset=utf-8")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    """The next request's path and lower-cased headers (raises IncompleteReadError at EOF)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    return lines[0].split(" ")[1], headers


def proc_cpu(pid: int) -> float:
    """utime + stime of a live process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
