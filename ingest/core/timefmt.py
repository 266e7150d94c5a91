"""The one timestamp format of every record, log line and dead letter: ISO 8601 in UTC with a
`Z` and whole seconds (`2026-12-02T18:05:00Z`). Everything that writes or reads a time goes
through here, so a record's `published_at`, a trace's `fetched_at` and a summary's `until` agree.
"""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime
from typing import Any


def from_ts(ts: float) -> str:
    """A Unix time as the format."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def from_unix(value: Any) -> str | None:
    """Unix seconds as stored in Redis (a number or its text) in the format; None if not one."""
    try:
        return from_ts(float(value))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def now() -> str:
    return from_ts(time.time())


def from_struct(struct: time.struct_time | None) -> str | None:
    """feedparser's parsed dates (UTC struct_time), or None when absent or out of range."""
    if not struct:
        return None
    try:
        return from_ts(calendar.timegm(struct))
    except (OverflowError, ValueError, TypeError, OSError):
        return None


def iso_utc(value: Any) -> str | None:
    """Any ISO 8601 string (offset or none: naive means UTC) in the format, else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, ValueError):
        return None


def to_ts(value: str) -> float:
    """The format (or any ISO 8601 string with an offset) back to a Unix time; ValueError else."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
