"""Where Redis is: the configured URL, or the embedded server under the data dir."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis

from ingest.embedded import EmbeddedValkey
from ingest.settings import Settings


@contextlib.contextmanager
def redis_url(settings: Settings) -> Iterator[str]:
    """Yield a Redis URL; start (and later stop) the embedded server when none is configured."""
    url = settings.redis_url()
    if url:
        yield url
        return
    server = EmbeddedValkey(settings.redis.data_dir, settings.redis.embedded_port)
    with server.running() as embedded_url:
        yield embedded_url


def as_str(value: object) -> str:
    """Redis replies are bytes (we do not set decode_responses: RQ needs raw bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def connect(url: str) -> redis.Redis:
    # health_check_interval keeps long-lived pollers honest after a server restart
    return redis.Redis.from_url(url, health_check_interval=30, socket_keepalive=True)
