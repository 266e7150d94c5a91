"""The feed registry in Redis: one hash per feed (config and state), one due-time sorted set.

Claiming is a lease by rescheduling: a poller atomically takes the due feeds and pushes their due
time out by the lease. Another poller cannot take them for this due time; if this poller dies
the feeds become due again when the lease ends. No separate lock keys to leak.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import redis

from ingest.core.connection import as_str
from ingest.core.keys import Keys
from ingest.feeds.feedlist import FeedSpec

CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return ids
"""


class Registry:
    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys
        self._claim = r.register_script(CLAIM)

    def add(self, spec: FeedSpec, first_poll_within: float = 30.0) -> bool:
        """Register or update a feed's config; its state and schedule are kept. True if new."""
        fid = spec.id
        pipe = self.r.pipeline()
        pipe.sadd(self.keys.feeds, fid)
        pipe.hset(
            self.keys.feed(fid),
            mapping={
                "url": spec.url,
                "title": spec.title,
                "tags": json.dumps(spec.tags),
                "language": spec.language,
                "topic": spec.topic,
            },
        )
        pipe.zadd(self.keys.due, {fid: time.time() + random.uniform(0, first_poll_within)}, nx=True)
        added, *_ = pipe.execute()
        return bool(added)

    def remove(self, url_or_id: str) -> bool:
        fid = self.resolve(url_or_id)
        if fid is None:
            return False
        pipe = self.r.pipeline()
        pipe.srem(self.keys.feeds, fid)
        pipe.zrem(self.keys.due, fid)
        pipe.delete(self.keys.feed(fid))
        pipe.execute()
        return True

    def resolve(self, url_or_id: str) -> str | None:
        from ingest.core.urls import feed_id

        for candidate in (url_or_id, feed_id(url_or_id)):
            if self.r.sismember(self.keys.feeds, candidate):
                return candidate
        return None

    def ids(self) -> list[str]:
        return sorted(as_str(x) for x in self.r.smembers(self.keys.feeds))

    def get(self, fid: str) -> dict[str, str]:
        raw = self.r.hgetall(self.keys.feed(fid))
        return {as_str(k): as_str(v) for k, v in raw.items()}

    def all(self) -> list[dict[str, Any]]:
        ids = self.ids()
        pipe = self.r.pipeline()
        for fid in ids:
            pipe.hgetall(self.keys.feed(fid))
            pipe.zscore(self.keys.due, fid)
        out = pipe.execute()
        feeds: list[dict[str, Any]] = []
        for i, fid in enumerate(ids):
            state: dict[str, Any] = {as_str(k): as_str(v) for k, v in out[2 * i].items()}
            state["id"] = fid
            state["next_poll"] = out[2 * i + 1]
            feeds.append(state)
        return feeds

    def spec(self, fid: str) -> FeedSpec | None:
        return self.spec_from(self.get(fid))

    @staticmethod
    def spec_from(state: dict[str, str]) -> FeedSpec | None:
        if not state.get("url"):
            return None
        return FeedSpec(
            url=state["url"],
            title=state.get("title", ""),
            tags=json.loads(state.get("tags") or "[]"),
            language=state.get("language", ""),
            topic=state.get("topic", ""),
        )

    def claim_due(self, limit: int, lease: float, everything: bool = False) -> list[str]:
        now = time.time()
        upto = "+inf" if everything else str(now)
        ids = self._claim(keys=[self.keys.due], args=[upto, limit, now + lease])
        return [as_str(x) for x in ids]

    def release(self, ids: list[str]) -> None:
        """Give claimed feeds back to the schedule, due now."""
        if ids:
            self.r.zadd(self.keys.due, dict.fromkeys(ids, time.time()), xx=True)

    def get_many(self, ids: list[str]) -> list[dict[str, str]]:
        pipe = self.r.pipeline(transaction=False)
        for fid in ids:
            pipe.hgetall(self.keys.feed(fid))
        # bytes replies (the client does not decode): .decode() directly, it is the hot path
        return [{k.decode(): v.decode() for k, v in raw.items()} for raw in pipe.execute()]

    def save(self, fid: str, fields: dict[str, Any], next_due: float, pipe: Any = None) -> None:
        """Store poll state and the next due time (on `pipe` when given, else now, in one
        transaction); only if the feed is still registered."""
        own = pipe is None
        pipe = self.r.pipeline() if own else pipe
        if fields:
            pipe.hset(self.keys.feed(fid), mapping={k: str(v) for k, v in fields.items()})
        pipe.zadd(self.keys.due, {fid: next_due}, xx=True)
        if own:
            pipe.execute()
