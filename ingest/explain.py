"""`explain`'s verdict: one sentence on what happened to an article, from what Redis holds.

Pure (the command gathers the facts; tests/test_explain.py runs the rules without a server).
The order is the order of certainty: a stream entry beats a trace, a trace beats a mark, a
mark beats a dead letter, an in-flight marker is the last thing known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PUBLISHED = ("published", "updated", "near_duplicate_published")


@dataclass(frozen=True)
class Facts:
    published: list[dict[str, str]] = field(default_factory=list)  # stream entries, newest first
    trace: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, Any] | None = None  # the URL's dedup mark
    dead: list[dict[str, Any]] = field(default_factory=list)  # dead letters, newest first
    marker: str | None = None  # the in-flight claim's value


def verdict(f: Facts) -> str:
    traced = f.trace.get("outcome")
    detail = str(f.trace.get("detail", ""))
    if f.published:
        return f"published ({f.published[0]['event']}, stream id {f.published[0]['stream_id']})"
    if traced in ("duplicate", "near_duplicate"):
        return f"not published: {traced} ({detail})"
    if traced and traced not in PUBLISHED:
        return f"not published: {traced} {detail}".strip()
    if f.seen:
        return "seen and published earlier (the stream entry may have been trimmed)"
    if f.dead:
        return f"not published: {f.dead[0]['reason']} {f.dead[0]['detail']}".strip()
    if f.marker:
        return f"not published: {f.marker}"
    return "unknown: never listed by a polled feed, or forgotten after the dedup window"
