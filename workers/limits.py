"""How much work one page may cost the extractor: a cap on its markup before extraction starts, and
a CPU-time limit while it runs. Either one gives the article the outcome `too_complex` (a dead
letter with the body), and the rest of its batch goes on.

Why both: trafilatura's cost grows with the number of elements (about 60 us each here, faster
than linear on a million tiny `<p>`), so a count of tags refuses the absurd page at once, before
lxml even builds its tree; the time limit catches whatever slips under the count.

The limit is CPU time (ITIMER_PROF, SIGPROF), not wall time: RQ's own job timeout is SIGALRM,
the one real-time timer a process has, and an article that waits for the CPU on a busy host is
not too complex. `TooComplex` is a BaseException so that no `except Exception` inside a library
swallows it, and the timer keeps firing every `REPEAT_S` until the block is left. Signals reach
only the main thread: elsewhere (a worker running jobs in a thread) only the markup cap applies.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

REPEAT_S = 0.25  # after the first expiry: a library that caught one interrupt gets another


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

    def expired(_signum: int, _frame: FrameType | None) -> None:
        raise TooComplex(f"extraction used more than {seconds:g} s of CPU")

    previous = signal.signal(signal.SIGPROF, expired)
    signal.setitimer(signal.ITIMER_PROF, seconds, REPEAT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
