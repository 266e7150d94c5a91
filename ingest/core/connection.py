"""Where Redis is: the configured URL (a server, or a Sentinel-watched primary), or the embedded
server under the data dir.

`redis+sentinel://[user:password@]host1:26379,host2:26379/<service>[/<db>][?options]` connects
through `redis.sentinel.Sentinel`: every new connection asks the Sentinels where the primary is,
and a connection to a primary that was demoted (READONLY) is dropped and made again. Commands
that fail while a failover runs are retried with back-off for about `FAILOVER_WAIT_S`, so every
role (poller, workers, metrics, `tail --group`) carries on with the promoted replica, in the same
process (the poller for POLL_FAILOVER_WAIT_S only: it rides out outages itself).
`rediss+sentinel://` speaks TLS to the Sentinels and to the data nodes. The user and
password of the URL are the data nodes'; `sentinel_username` / `sentinel_password` (query) are
the Sentinels' own, when they have one. Other options: `ssl_ca_certs`, `ssl_certfile`,
`ssl_keyfile`, `ssl_cert_reqs` (`required`, `optional`, `none`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote

import redis
from redis.backoff import ExponentialBackoff
from redis.connection import SSLConnection
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection
from redis.utils import SENTINEL

from ingest.core.embedded import EmbeddedError, EmbeddedValkey, recover_owned
from ingest.core.settings import Settings

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379
# Sentinel's down-after-milliseconds is 30 s by default and an election takes a few seconds more:
# a command is retried for about this long before its error reaches the caller.
FAILOVER_WAIT_S = 60.0
# ... except the poller's: its Redis calls run on its event loop, and a loop held for the whole
# failover would charge every page fetch in flight with a timeout. It rides out an outage by
# itself (ingest/poller/loop.py): the feeds in progress come back with their lease, their items when
# their fetch claim lapses.
POLL_FAILOVER_WAIT_S = 2.0
_BACKOFF_BASE, _BACKOFF_CAP = 0.05, 1.0
_SSL_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
_CERT_REQS = ("required", "optional", "none")
T = TypeVar("T")


@dataclass(frozen=True)
class SentinelTarget:
    """A parsed `redis+sentinel://` URL."""

    sentinels: list[tuple[str, int]]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    sentinel_auth: dict[str, str] = field(default_factory=dict)
    ssl: dict[str, str] = field(default_factory=dict)


def is_sentinel(url: str) -> bool:
    return url.partition("://")[0].lower() in SENTINEL_SCHEMES


def _host_port(part: str, url: str) -> tuple[str, int]:
    if part.startswith("["):  # [::1]:26379
        host, _, rest = part[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
    if not host:
        raise ValueError(f"{url}: empty Sentinel host in {part!r}")
    try:
        number = int(port) if port else SENTINEL_PORT
    except ValueError:
        raise ValueError(f"{url}: bad Sentinel port in {part!r}") from None
    if not 0 < number < 65536:
        raise ValueError(f"{url}: bad Sentinel port in {part!r}")
    return host, number


def parse_sentinel(url: str) -> SentinelTarget:
    """The parts of a Sentinel URL; ValueError with a one-line reason for a bad one."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SENTINEL_SCHEMES:
        raise ValueError(f"{url}: not a redis+sentinel:// URL")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    creds, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = creds.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    if not hosts:
        raise ValueError(f"{url}: no Sentinel host")
    sentinels = [_host_port(part, url) for part in hosts.split(",") if part]
    segments = [unquote(s) for s in path.split("/") if s]
    if not segments:
        raise ValueError(f"{url}: no service name (…/mymaster/0)")
    if len(segments) > 2:
        raise ValueError(f"{url}: the path is /<service>[/<db>]")
    try:
        db = int(segments[1]) if len(segments) == 2 else 0
    except ValueError:
        raise ValueError(f"{url}: bad database number {segments[1]!r}") from None
    sentinel_auth: dict[str, str] = {}
    ssl: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in ("sentinel_username", "sentinel_password"):
            sentinel_auth[key.removeprefix("sentinel_")] = value
        elif key in _SSL_OPTIONS:
            if key == "ssl_cert_reqs" and value not in _CERT_REQS:
                raise ValueError(f"{url}: ssl_cert_reqs is one of {', '.join(_CERT_REQS)}")
            ssl[key] = value
        else:
            raise ValueError(f"{url}: unknown option {key!r}")
    tls = scheme.lower() == "rediss+sentinel"
    if ssl and not tls:
        raise ValueError(f"{url}: ssl_* options need rediss+sentinel://")
    return SentinelTarget(sentinels, segments[0], db, username, password, tls, sentinel_auth, ssl)


def failover_retry(wait: float = FAILOVER_WAIT_S) -> Retry:
    """Back-off from 50 ms to 1 s, for about `wait` seconds in all."""
    waited, retries, delay = 0.0, 0, _BACKOFF_BASE
    while waited < wait:
        waited += delay
        retries += 1
        delay = min(_BACKOFF_CAP, delay * 2)
    return Retry(ExponentialBackoff(cap=_BACKOFF_CAP, base=_BACKOFF_BASE), retries)


class FollowingConnection(SentinelManagedConnection):
    """redis-py's Sentinel-managed connection, with two of its defects mended:

    * it asks the Sentinels only in `connect()`; a command that finds its socket closed
      reconnects through `connect_check_health`, to the address it had: the dead primary, for
      the whole retry budget. Here that path asks the Sentinels too (once per attempt: the
      command's retry, `failover_retry`, does the waiting);
    * its `read_response` does not drop the connection when a read is interrupted (a plain
      connection does): after RQ's SIGTERM handler interrupts a blocking dequeue, the unread
      reply stays in the socket and the worker's next command waits forever for its own."""

    def read_response(
        self,
        disable_decoding: Any = False,
        *,
        timeout: float | object = SENTINEL,
        disconnect_on_error: bool | None = True,
        push_request: bool | None = False,
    ) -> Any:
        return super().read_response(
            disable_decoding,
            timeout=timeout,
            disconnect_on_error=disconnect_on_error,
            push_request=push_request,
        )

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self._sock:
            return
        if retry_socket_connect:  # not from connect_to: a reconnect while sending a command
            self._connect_retry()  # type: ignore[no-untyped-call]
            return
        super().connect_check_health(check_health=check_health, retry_socket_connect=False)


class FollowingSSLConnection(FollowingConnection, SSLConnection):
    pass


def sentinel_client(target: SentinelTarget, wait: float = FAILOVER_WAIT_S) -> redis.Redis:
    """The primary of `target.service`, found (and found again after a failover) by Sentinel."""
    tls: dict[str, Any] = {}
    if target.tls:
        tls = {"ssl": True, **target.ssl}
    sockets = {"socket_connect_timeout": 5.0, "socket_keepalive": True}
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        target.sentinels,
        # a Sentinel answers at once or not at all: a hung one must not hold a command forever
        sentinel_kwargs={**sockets, "socket_timeout": 5.0, **tls, **target.sentinel_auth},
        **sockets,
    )
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        health_check_interval=30,
        retry=failover_retry(wait),
        connection_class=FollowingSSLConnection if target.tls else FollowingConnection,
        **target.ssl,
    )
    return client


class StateDirError(RuntimeError):
    """The state directory cannot be created (a read-only home, a path through a file)."""


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
    data_dir = Path(settings.redis.data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateDirError(
            f"cannot create the embedded server's data directory {data_dir}: {exc.strerror}; "
            "set NEWS_INGEST_HOME (or redis.data_dir) to a writable directory, "
            "or NEWS_INGEST_REDIS_URL to a server"
        ) from exc
    server = EmbeddedValkey(data_dir, settings.redis.embedded_port)
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


def restarting_owned(call: Callable[[], T], tries: int = 3) -> T:
    """`call()`, made again when it lost the connection because the embedded server this
    process owns died and was started again (ingest/core/embedded.py `recover`). For an owner's
    calls before its main loop watches the server; elsewhere the error is the caller's."""
    for _ in range(tries - 1):
        try:
            return call()
        except redis.ConnectionError:
            if not recover_owned():
                raise
    return call()


def as_str(value: object) -> str:
    """Redis replies are bytes (we do not set decode_responses: RQ needs raw bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def connect(url: str, failover_wait: float = FAILOVER_WAIT_S) -> redis.Redis:
    """A client for `url`: redis://, rediss://, unix:// or redis+sentinel:// (see above; through
    a failover a command is retried for about `failover_wait` seconds)."""
    if is_sentinel(url):
        return sentinel_client(parse_sentinel(url), failover_wait)
    # health_check_interval keeps long-lived pollers honest after a server restart
    return redis.Redis.from_url(url, health_check_interval=30, socket_keepalive=True)
