"""A real HTTP server on 127.0.0.1 for tests: routes are set per test, every request is recorded."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Route:
    body: bytes | Callable[[dict[str, str]], tuple[int, dict[str, str], bytes]] = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None  # when set, answer 304 to a matching If-None-Match
    delay: float = 0  # seconds to wait before answering
    raw: Callable[[BaseHTTPRequestHandler], None] | None = None  # writes the whole answer itself


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    at: float


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-answer (caps, deadlines) are the point of many tests."""


class _QuietServer6(_QuietServer):
    address_family = socket.AF_INET6


class TestServer:
    __test__ = False

    def __init__(self, host: str = "127.0.0.1") -> None:
        """`host="::1"`: another site on the loopback (a different host name for same-site
        checks, without any DNS)."""
        self.host = host
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.inflight = 0
        self.max_inflight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                try:
                    self._answer()
                finally:
                    with server._lock:
                        server.inflight -= 1

            def _answer(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append(Seen(self.path, headers, time.time()))
                route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if route is not None and route.delay:
                    time.sleep(route.delay)
                if route is None:
                    return self._send(404, {}, b"not found")
                if route.raw is not None:
                    route.raw(self)
                    self.close_connection = True
                    return None
                if route.etag and headers.get("if-none-match") == route.etag:
                    return self._send(304, {"ETag": route.etag}, b"")
                if callable(route.body):
                    status, extra, body = route.body(headers)
                    return self._send(status, extra, body)
                extra = dict(route.headers)
                if route.etag:
                    extra["ETag"] = route.etag
                return self._send(route.status, extra, route.body)

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)

        self.httpd = (_QuietServer6 if ":" in host else _QuietServer)((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://{self.netloc}"

    @property
    def allow(self) -> str:
        return self.netloc

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str, ctype: str = "text/html; charset=utf-8",
            **kw: Any) -> str:  # fmt: skip
        data = body.encode() if isinstance(body, str) else body
        headers = {"Content-Type": ctype, **kw.pop("headers", {})}
        self.routes[path] = Route(body=data, headers=headers, **kw)
        return self.url(path)

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    def start(self) -> TestServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
