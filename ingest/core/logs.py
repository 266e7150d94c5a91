"""structlog set-up: JSON lines when not on a TTY, readable console on a TTY.

Stable keys across the service: `feed_url`, `article_id`, `stage`, `outcome`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from ingest.core.escape import terminal
from ingest.core.urls import redact_text


def configure(level: str = "info", json: bool | None = None) -> None:
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_credentials,
            *([] if json else [terminal_safe]),  # JSON escapes control characters itself
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        # one write per line (print writes the newline apart): the processes of `run` share
        # stderr, and their lines must not interleave
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # RQ and aiohttp log through the stdlib; keep them quiet unless asked.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(message)s")


def redact_credentials(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A feed URL may carry a password (`http://user:secret@host/feed`): every log value shows
    it as *** (`feed_polled`, errors quoting the URL, tracebacks), in JSON and on a console."""
    for key, value in event.items():
        if isinstance(value, str) and "@" in value:
            event[key] = redact_text(value)
    return event


def terminal_safe(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Log values come from outside (feed URLs, titles, a server's error text): on a console,
    their control characters are shown, not obeyed (`ingest.core.escape`); tracebacks keep their
    lines."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = terminal(value, lines=key == "exception")
    return event
