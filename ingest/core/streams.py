"""Reading the state of the output stream's consumer groups."""

from __future__ import annotations

from typing import Any

import redis

from ingest.core.connection import as_str


def stream_groups(r: redis.Redis, stream: str) -> list[dict[str, Any]]:
    """Name, consumers, pending and lag (None when the server cannot tell) of each group."""
    try:
        groups = r.xinfo_groups(stream)
    except redis.ResponseError:
        return []
    out = []
    for g in groups:
        out.append({
            "name": as_str(g["name"]),
            "consumers": int(g.get("consumers", 0)),
            "pending": int(g.get("pending", 0)),
            "lag": int(g["lag"]) if g.get("lag") is not None else None,
        })  # fmt: skip
    return out
