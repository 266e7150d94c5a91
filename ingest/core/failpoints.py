"""Failpoints: crash this process at a named point, for the crash tests (as etcd's gofail or
FoundationDB's buggify do). Off unless NEWS_INGEST_FAILPOINTS is set, e.g.
`NEWS_INGEST_FAILPOINTS=worker.after_publish=3` kills the process with SIGKILL the third time it
passes `hit("worker.after_publish")`: no cleanup, no finally blocks, as in a real crash.
`worker.after_publish=3:term` sends SIGTERM instead: a stop request at an exact point;
`worker.before_publish=1:sleep=3` stalls there for 3 s instead: a slow article, so that a signal
is sure to land while it is in hand."""

from __future__ import annotations

import os
import signal
import time
from functools import cache


@cache
def _armed() -> dict[str, tuple[int, signal.Signals | float]]:
    """name -> (the hit that acts, a signal to send or seconds to sleep)."""
    spec = os.environ.get("NEWS_INGEST_FAILPOINTS", "")
    out: dict[str, tuple[int, signal.Signals | float]] = {}
    for part in spec.split(","):
        name, _, count = part.partition("=")
        count, _, action = count.partition(":")
        verb, _, arg = action.strip().partition("=")
        if name.strip():
            act: signal.Signals | float = signal.SIGTERM if verb == "term" else signal.SIGKILL
            if verb == "sleep":
                act = float(arg or 1)
            out[name.strip()] = (int(count or 1), act)
    return out


_hits: dict[str, int] = {}


def hit(name: str) -> None:
    armed = _armed()
    if name not in armed:
        return
    _hits[name] = _hits.get(name, 0) + 1
    count, act = armed[name]
    if isinstance(act, float):
        if _hits[name] == count:
            time.sleep(act)
    elif _hits[name] == count or (_hits[name] > count and act == signal.SIGKILL):
        os.kill(os.getpid(), act)
