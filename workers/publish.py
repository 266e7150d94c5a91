"""Publication: the seen-marks and the XADD in one atomic step (a Lua script).

A job may run twice (RQ delivers at least once; a worker killed mid-job is re-run). The script
re-checks, inside Redis, that the article's own URL mark still holds what the worker read and
that no other article has claimed its URLs or its content hash; only then does it write every
mark (ingest/core/seen.py) and append to the stream. A crash before the script leaves nothing marked
(the re-run publishes); a crash after it leaves the article marked and published once (the re-run
finds it seen and stops).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import redis

from ingest.core import counters
from ingest.core.connection import as_str
from ingest.core.keys import Keys
from ingest.core.seen import (
    BAND_MAX,
    GENERATIONS,
    SeenStore,
    UrlMark,
    band_field,
    guid_field,
    hash_field,
    url_field,
)

# KEYS: 1 stream, then GENERATIONS keys per mark (current generation first), marks in the order
#   own URL, other URLs, content hash, GUIDs, bands; then the articles counter hash and this
#   10-second throughput bucket (counted in the same step, so a crash cannot skew them).
# ARGV: 1 n_other, 2 n_guid, 3 n_band, 4 expected own mark ('' = absent), 5 new own mark,
#   6 article id (8 bytes), 7 expire-at of the current generation, 8 maxlen, 9 event,
#   10 article id (hex), 11 data json, 12 check content owner ('1'/'0'), 13 ids per band bucket,
#   14 the feed item's version (the GUID mark's value), 15 the outcome to count,
#   16 number of routing streams (their keys come just before the two counter keys),
#   17.. one field per mark.
PUBLISH = """
local n_other, n_guid, n_band = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local G = __GENERATIONS__
local function field(m) return ARGV[17 + m] end
local function base(m) return 2 + G * m end
local function get(m)
  for j = 0, G - 1 do
    local v = redis.call('HGET', KEYS[base(m) + j], field(m))
    if v then return v end
  end
  return false
end
local cur = get(0) or ''
if cur ~= ARGV[4] then return {'conflict', cur} end
if ARGV[4] == '' then
  for m = 1, n_other do
    local v = get(m)
    if v then return {'duplicate', v} end
  end
end
local hm = 1 + n_other
if ARGV[12] == '1' then
  local owner = get(hm)
  if owner and owner ~= ARGV[6] then return {'duplicate_content', owner} end
end
local exp = tonumber(ARGV[7])
local function put(m, value)
  redis.call('HSET', KEYS[base(m)], field(m), value)
  redis.call('EXPIREAT', KEYS[base(m)], exp)
end
put(0, ARGV[5])
for m = 1, n_other do put(m, ARGV[6]) end
put(hm, ARGV[6])
for m = hm + 1, hm + n_guid do put(m, ARGV[14]) end
local cap = tonumber(ARGV[13]) * 8
for m = hm + n_guid + 1, hm + n_guid + n_band do
  local v = (redis.call('HGET', KEYS[base(m)], field(m)) or '') .. ARGV[6]
  if #v > cap then v = string.sub(v, #v - cap + 1) end
  put(m, v)
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[8], '*',
  'id', ARGV[10], 'event', ARGV[9], 'data', ARGV[11])
local n_routes = tonumber(ARGV[16])
for i = #KEYS - 1 - n_routes, #KEYS - 2 do
  redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[8], '*',
    'id', ARGV[10], 'event', ARGV[9], 'data', ARGV[11], 'main_id', id)
end
redis.call('HINCRBY', KEYS[#KEYS - 1], ARGV[15], 1)
redis.call('INCR', KEYS[#KEYS])
redis.call('EXPIRE', KEYS[#KEYS], 86520)
return {'published', id}
""".replace("__GENERATIONS__", str(GENERATIONS))


@dataclass
class PublishResult:
    outcome: str  # published | duplicate | duplicate_content | conflict
    detail: str  # stream id, or the article id that blocked publication


def _blocker(raw: Any) -> str:
    """The article id in a blocking mark (an 8-byte id or a packed own-URL mark)."""
    value = bytes(raw or b"")
    if len(value) == 8:
        return value.hex()
    try:
        return UrlMark.unpack(value).article_id
    except struct.error:  # neither shape: show the raw bytes
        return value.hex()


class Publisher:
    def __init__(self, r: redis.Redis, keys: Keys, seen: SeenStore, maxlen: int) -> None:
        self.r = r
        self.keys = keys
        self.seen = seen
        self.maxlen = maxlen
        self._script = r.register_script(PUBLISH)

    def publish(
        self, record: dict[str, Any], *, url_ids: list[str], guid: tuple[str, str] | None,
        expected: bytes, event: str, bands: list[int], mark: UrlMark, item_version: bytes = b"",
        count_as: str = "published", routes: list[str] | None = None,
        check_owner: bool | None = None,
    ) -> PublishResult:  # fmt: skip
        """`check_owner` (default: for a created article) refuses a text whose content hash
        another article holds; a flagged distinct post of the same feed is published anyway."""
        aid = record["id"]
        others = [i for i in dict.fromkeys(url_ids) if i != aid]
        fields = [url_field(aid), *(url_field(i) for i in others), hash_field(mark.content_hash)]
        guids = [guid_field(*guid)] if guid else []
        band_fields = [band_field(i, b) for i, b in enumerate(bands)]
        fields += guids + band_fields
        keys = [self.keys.articles]
        for field in fields:
            keys.extend(self.seen.read_keys(field))
        bucket = counters.throughput_bucket(self.keys)
        keys += [*(routes or []), self.keys.counters("articles"), bucket]
        gen = self.seen.generation()
        owner_check = event == "created" if check_owner is None else check_owner
        args: list[Any] = [
            len(others), len(guids), len(band_fields), expected, mark.pack(),
            bytes.fromhex(aid), self.seen.expire_at(gen), self.maxlen, event, aid,
            json.dumps(record, ensure_ascii=False, separators=(",", ":")),
            "1" if owner_check else "0", BAND_MAX, item_version or b"\x00" * 4, count_as,
            len(routes or []), *fields,
        ]  # fmt: skip
        outcome, detail = self._script(keys=keys, args=args)
        outcome = as_str(outcome)
        return PublishResult(
            outcome, as_str(detail) if outcome == "published" else _blocker(detail)
        )
