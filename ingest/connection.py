"""Where Redis is: the configured URL, or the embedded server under the data dir."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis

from ingest.embedded import EmbeddedError, EmbeddedValkey
from ingest.settings import Settings


@contextlib.contextmanager
def redis_url(settings: Settings, role: str = "", join: bool = False) -> Iterator[str]:
    """Yield a Redis URL; start (and later stop) the embedded server when none is configured.

    `role` (run, server): this process owns the embedded server, and refuses when another live
    process does. `join` (poll, worker): use the server another process runs in the data dir,
    waiting `run.server_wait` seconds for it, and never start one."""
    url = settings.redis_url()
    if url:
        yield url
        return
    server = EmbeddedValkey(settings.redis.data_dir, settings.redis.embedded_port)
    if join:
        if not server.wait_for(settings.run.server_wait):
            raise EmbeddedError(
                f"no Redis: no server is running in {server.data_dir}; start one with "
                "`news-ingest server` (or `news-ingest run`), or set NEWS_INGEST_REDIS_URL"
            )
        yield server.url
        return
    with server.running(role) as embedded_url:
        yield embedded_url


def as_str(value: object) -> str:
    """Redis replies are bytes (we do not set decode_responses: RQ needs raw bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def connect(url: str) -> redis.Redis:
    # health_check_interval keeps long-lived pollers honest after a server restart
    return redis.Redis.from_url(url, health_check_interval=30, socket_keepalive=True)
