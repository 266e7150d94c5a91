"""Failpoints: crash this process at a named point, for the crash tests (as etcd's gofail or
FoundationDB's buggify do). Off unless NEWS_INGEST_FAILPOINTS is set, e.g.
`NEWS_INGEST_FAILPOINTS=worker.after_publish=3` kills the process with SIGKILL the third time it
passes `hit("worker.after_publish")`: no cleanup, no finally blocks, as in a real crash."""

from __future__ import annotations

import os
import signal
from functools import cache


@cache
def _armed() -> dict[str, int]:
    spec = os.environ.get("NEWS_INGEST_FAILPOINTS", "")
    out = {}
    for part in spec.split(","):
        name, _, count = part.partition("=")
        if name.strip():
            out[name.strip()] = int(count or 1)
    return out


_hits: dict[str, int] = {}


def hit(name: str) -> None:
    armed = _armed()
    if name not in armed:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= armed[name]:
        os.kill(os.getpid(), signal.SIGKILL)
