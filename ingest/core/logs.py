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
    # RQ and aiohttp log through the stdlib: warnings and above only, rendered as our own lines
    # (one JSON object each when not on a TTY), so that a log shipper reads one format
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *([] if json else [terminal_safe]),
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    ))  # fmt: skip
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


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
