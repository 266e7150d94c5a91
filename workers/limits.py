"""How much work one page may cost the extractor: a cap on its markup before extraction starts, and
a CPU-time limit while it runs. Either one gives the article the outcome `too_complex` (a dead
letter with the body), and the rest of its batch goes on.

Why both: trafilatura's cost grows with the number of elements (about 60 us each here, faster
than linear on a million tiny `<p>`), so a count of tags refuses the absurd page at once, before
lxml even builds its tree; the time limit catches whatever slips under the count.

The limit is CPU time (ITIMER_PROF, SIGPROF), not wall time: RQ's own job timeout is SIGALRM,
the one real-time timer a process has, and an article that waits for the CPU on a busy host is
not too complex. `TooComplex` is a BaseException so that no `except Exception` inside a library
swallows it, and the timer fires every `TICK_S` of CPU until the block is left. Each tick before
the limit calls `keep_alive` (the worker sets it to its job heartbeat), so the job's entry in
RQ's started registry does not expire while one long page is extracted. Signals reach only the
main thread: elsewhere (a worker running jobs in a thread) only the markup cap applies.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

TICK_S = 0.25  # CPU seconds between checks; after the limit, a library that caught one
# interrupt gets another at the next tick
keep_alive: Callable[[], None] | None = None  # called on each tick before the limit


class TooComplex(BaseException):
    """The page costs more than an article may."""


def markup_count(body: bytes) -> int:
    """Tags in the page (opening and closing): one C-speed scan, no parsing."""
    return body.count(b"<")


def check_markup(body: bytes, max_tags: int) -> None:
    if max_tags and markup_count(body) > max_tags:
        raise TooComplex(f"{markup_count(body)} tags > cap {max_tags}")


@contextlib.contextmanager
def cpu_limit(seconds: float) -> Iterator[None]:
    """Raise TooComplex in this block once it has used `seconds` of CPU (0: no limit)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    started = time.process_time()

    def tick(_signum: int, _frame: FrameType | None) -> None:
        if time.process_time() - started >= seconds:
            raise TooComplex(f"extraction used more than {seconds:g} s of CPU")
        if keep_alive is not None:
            with contextlib.suppress(Exception):  # a beat lost is not an article lost
                keep_alive()

    previous = signal.signal(signal.SIGPROF, tick)
    signal.setitimer(signal.ITIMER_PROF, min(seconds, TICK_S), TICK_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
