"""A 50 MB body costs at most the cap in memory: measured on a real process's peak RSS."""

from __future__ import annotations

import json
import subprocess
import sys
from http.server import BaseHTTPRequestHandler

from tests.conftest import ROOT
from tests.server import Route, TestServer

CAP = 5_000_000
BODY = 50_000_000

PROBE = """
import asyncio, json, resource, sys
from ingest.net.fetch import Fetcher
from ingest.core.outcomes import TooLarge
from ingest.core.settings import FetchSettings

def peak_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

async def main(base, allow):
    fetcher = Fetcher(FetchSettings(allow=[allow], max_bytes=int(sys.argv[3]), timeout=60))
    await fetcher.get(base + "/small")  # warm up: imports, connector, TLS context
    before = peak_kb()
    outcome = "ok"
    try:
        await fetcher.get(base + "/fifty-megabytes")
    except TooLarge:
        outcome = "too_large"
    await fetcher.aclose()
    print(json.dumps({"outcome": outcome, "grew_kb": peak_kb() - before}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _fifty_megabytes(h: BaseHTTPRequestHandler) -> None:
    h.wfile.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"<p>" + b"x" * 65_530 + b"</p>"
    try:
        for _ in range(BODY // len(chunk)):
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        h.wfile.write(b"0\r\n\r\n")
    except OSError:
        pass  # the client hung up at its cap: that is the point


def test_fifty_megabyte_body_grows_peak_rss_by_less_than_twice_the_cap(
    server: TestServer,
) -> None:
    server.add("/small", "<p>hello</p>")
    server.routes["/fifty-megabytes"] = Route(raw=_fifty_megabytes)
    out = subprocess.run([sys.executable, "-c", PROBE, server.base, server.allow, str(CAP)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "too_large"
    assert result["grew_kb"] * 1024 < 2 * CAP, result
