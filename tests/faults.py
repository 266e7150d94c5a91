"""Fault endpoints for the hostile-input suite: one misbehaving server per named outcome.

Each fault installs its routes on a TestServer and returns the path an article link points at.
Raw faults write bytes to the socket themselves (slow drip, truncation, endless bodies).
"""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from tests import pages
from tests.server import Route, TestServer

CAP = 200_000  # fetch.max_bytes in the suite
DEADLINE = 1.0  # fetch.timeout in the suite


def _slow_drip(h: BaseHTTPRequestHandler) -> None:
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
    try:
        for _ in range(50):  # one byte every 0.1 s: never done before the deadline
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.1)
    except OSError:
        pass


def _truncated(h: BaseHTTPRequestHandler) -> None:
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 50000\r\n\r\n")
    h.wfile.write(b"<html><body><p>" + b"cut short " * 10)
    h.wfile.flush()


def _endless(h: BaseHTTPRequestHandler) -> None:
    h.wfile.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"<p>" + b"more " * 2000 + b"</p>"
    try:
        for _ in range(10_000):
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except OSError:
        pass


def _bomb(encoding: bytes, pack: Callable[[bytes], bytes]) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(h: BaseHTTPRequestHandler) -> None:
        body = pack(b"\0" * (50 * CAP))  # 10 MB of zeros in ~10 KB
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: %s\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (encoding, len(body), body))  # fmt: skip

    return answer


@dataclass
class Fault:
    name: str
    outcome: str  # the articles counter and dead-letter reason expected
    install: Callable[[TestServer, int], str]  # (server, canary port) -> article path or URL
    dead_body: bool = False  # the dead letter carries the raw (error) body
    hits: int = 1  # requests the article path may see in total (redirect hops included)
    reason: str = ""  # the dead letter's reason, when it differs from the counted outcome

    @property
    def dead_reason(self) -> str:
        return self.reason or self.outcome


def route(path: str, **kw: object) -> Callable[[TestServer, int], str]:
    def install(server: TestServer, _canary: int) -> str:
        server.routes[path] = Route(**kw)  # type: ignore[arg-type]
        return path

    return install


def page(path: str, html: str, ctype: str = "text/html; charset=utf-8",
         **headers: str) -> Callable[[TestServer, int], str]:  # fmt: skip
    return route(path, body=html.encode(), headers={"Content-Type": ctype, **headers})


def redirect_chain(prefix: str, n: int, loop: bool = False) -> Callable[[TestServer, int], str]:
    def install(server: TestServer, _canary: int) -> str:
        for i in range(n):
            target = f"{prefix}{0 if loop and i == n - 1 else i + 1}"
            server.routes[f"{prefix}{i}"] = Route(status=302, headers={"Location": target})
        return f"{prefix}0"

    return install


def to_canary(server: TestServer, canary: int) -> str:
    server.routes["/go-inside"] = Route(
        status=302, headers={"Location": f"http://127.0.0.1:{canary}/admin"}
    )
    return "/go-inside"


def robots_disallowed(server: TestServer, _canary: int) -> str:
    server.routes["/robots.txt"] = Route(
        body=b"User-agent: *\nDisallow: /private/\n", headers={"Content-Type": "text/plain"}
    )
    server.add("/private/story", pages.article_page("Hidden", pages.paragraphs(pages.BOLIVIA)))
    return "/private/story"


TEASER = ("<html><head><script type='application/ld+json'>{\"@type\": \"NewsArticle\", "
          "\"isAccessibleForFree\": \"False\"}</script></head><body><article><h1>Budget</h1>"
          "<p>The council agreed a budget on Tuesday. Subscribe to read more.</p>"
          "</article></body></html>")  # fmt: skip
CHALLENGE = "<html><body>Checking your browser before accessing. cf_chl_opt</body></html>"

# fmt: off
FAULTS = [
    Fault("hang", "timeout", route("/hang", body=b"late", delay=6)),
    Fault("slow_drip", "timeout", route("/drip", raw=_slow_drip)),
    Fault("too_large", "too_large", page("/huge", "<p>" + "x" * (CAP + 10) + "</p>")),
    Fault("endless", "too_large", route("/endless", raw=_endless)),
    Fault("deflate_bomb", "too_large", route("/bomb", raw=_bomb(b"deflate", lambda b: zlib.compress(b, 9)))),
    Fault("gzip_bomb", "too_large", route("/gzbomb", raw=_bomb(b"gzip", lambda b: gzip.compress(b, 9)))),
    Fault("redirect_loop", "too_many_redirects", redirect_chain("/loop", 3, loop=True), hits=3),
    Fault("too_many_redirects", "too_many_redirects", redirect_chain("/hop", 9), hits=6),
    Fault("redirect_to_private", "blocked", to_canary, reason="blocked_address"),
    Fault("bad_scheme", "blocked", route("/file", status=302,
                                         headers={"Location": "file:///etc/passwd"}),
          reason="bad_scheme"),
    Fault("http_500", "http_error", route("/broken", status=500, body=b"<h1>Internal error</h1>"),
          dead_body=True),
    Fault("http_404", "gone", route("/missing", status=404, body=b"<h1>Not found</h1>"),
          dead_body=True),
    Fault("http_410", "gone", route("/removed", status=410, body=b"gone"), dead_body=True),
    Fault("bot_wall", "bot_wall", route("/wall", status=403, body=CHALLENGE.encode(),
                                        headers={"cf-mitigated": "challenge"}),
          dead_body=True),
    Fault("paywall", "paywall", page("/locked", TEASER), dead_body=True),
    Fault("pdf", "not_html", page("/doc.pdf", "%PDF-1.7 binary", "application/pdf")),
    Fault("image_as_html", "not_html", route("/img", body=b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
                                             headers={"Content-Type": "text/html"})),
    Fault("zip", "not_html", page("/a.zip", "PK\x03\x04 zipped", "application/zip")),
    Fault("empty", "empty", page("/empty", "")),
    Fault("gzip_header_plain_body", "decode_error",
          page("/fakegz", "<p>not compressed at all</p>", **{"Content-Encoding": "gzip"})),
    Fault("truncated", "truncated", route("/trunc", raw=_truncated)),
    Fault("robots", "robots_disallowed", robots_disallowed, hits=0),
    Fault("not_article", "not_article", page("/nav", "<html><body><nav><a href='/a'>A</a>"
                                         "<a href='/b'>B</a></nav></body></html>"),
          dead_body=True),
]
# fmt: on
