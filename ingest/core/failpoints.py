"""Failpoints: crash this process at a named point, for the crash tests (as etcd's gofail or
FoundationDB's buggify do). Off unless NEWS_INGEST_FAILPOINTS is set, e.g.
`NEWS_INGEST_FAILPOINTS=worker.after_publish=3` kills the process with SIGKILL the third time it
passes `hit("worker.after_publish")`: no cleanup, no finally blocks, as in a real crash.
`worker.after_publish=3:term` sends SIGTERM instead: a stop request at an exact point."""

from __future__ import annotations

import os
import signal
from functools import cache


@cache
def _armed() -> dict[str, tuple[int, signal.Signals]]:
    spec = os.environ.get("NEWS_INGEST_FAILPOINTS", "")
    out = {}
    for part in spec.split(","):
        name, _, count = part.partition("=")
        count, _, action = count.partition(":")
        if name.strip():
            sig = signal.SIGTERM if action.strip() == "term" else signal.SIGKILL
            out[name.strip()] = (int(count or 1), sig)
    return out


_hits: dict[str, int] = {}


def hit(name: str) -> None:
    armed = _armed()
    if name not in armed:
        return
    _hits[name] = _hits.get(name, 0) + 1
    count, sig = armed[name]
    if _hits[name] == count or (_hits[name] > count and sig == signal.SIGKILL):
        os.kill(os.getpid(), sig)
