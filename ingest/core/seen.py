"""What the service remembers about articles, compactly: seen URLs, GUIDs, content owners and the
near-duplicate band index, in time-generation hashes that expire as a whole.

Layout: `<prefix>seen:<gen>:<shard>` hashes, where `gen` is a half-window period
(window_days / 2) and `shard` comes from the field's bytes. Fields are 9 binary bytes (a kind
letter and 8 hash bytes) and values a few dozen bytes, so each hash stays in Redis' compact
listpack encoding (up to 128 entries by default: raise `dedup.shards` past ~60k articles a day).
A mark is written to the current generation and read from the current and the two before, so it
lives between one window and one and a half; a generation key expires when it can no longer be
read. No per-article key, no per-article TTL: about 190 bytes per article all told
(`bench/dedup.py` measures it: 193 at 100,000 articles).

Kinds: `u` URL (own URL: packed `UrlMark`; other URLs of the story: the article id), `g` feed
GUID, `h` content hash -> article id, `b` MinHash band -> article ids (8 bytes each, newest last,
at most BAND_MAX kept), `c` an article another site's page names as its canonical -> the id of
that page's published copy (a claim: workers/dedup.py checks the texts before it counts).
"""

from __future__ import annotations

import hashlib
import struct
import time
from dataclasses import dataclass
from typing import Any

import redis

from ingest.core.keys import Keys

GENERATIONS = 3  # read window: the current generation and the two before
BAND_MAX = 16  # article ids kept per band bucket and generation
_MARK_V1 = struct.Struct(">8s8sQH8s")  # article id, content hash, simhash, words, cluster id
# ... then 4 bytes of the feed's id and 4 of the item's title: an item of the same feed with
# another title is a distinct post, flagged and never dropped as a copy (workers/dedup.py).
_MARK = struct.Struct(">8s8sQH8s4s4s")
MARK_SIZES = (_MARK.size, _MARK_V1.size)


def tag(text: str) -> str:
    """4 bytes (8 hex digits) naming a feed or a title in a URL mark; "" stays ""."""
    return hashlib.blake2b(text.encode(), digest_size=4).hexdigest() if text else ""


@dataclass(frozen=True)
class UrlMark:
    article_id: str  # hex
    content_hash: str  # hex, first 8 bytes
    simhash: int
    words: int
    cluster_id: str  # hex
    feed_tag: str = ""  # hex, 4 bytes ("" in marks written before it existed)
    title_tag: str = ""

    def pack(self) -> bytes:
        return _MARK.pack(
            bytes.fromhex(self.article_id), bytes.fromhex(self.content_hash[:16]),
            self.simhash, min(self.words, 65535), bytes.fromhex(self.cluster_id),
            bytes.fromhex(self.feed_tag or "00000000"), bytes.fromhex(self.title_tag or "00000000"),
        )  # fmt: skip

    @classmethod
    def unpack(cls, raw: bytes) -> UrlMark:
        if len(raw) == _MARK_V1.size:
            aid, chash, sim, words, cluster = _MARK_V1.unpack(raw)
            return cls(aid.hex(), chash.hex(), sim, words, cluster.hex())
        aid, chash, sim, words, cluster, feed, title = _MARK.unpack(raw)
        untagged = b"\x00" * 4
        return cls(aid.hex(), chash.hex(), sim, words, cluster.hex(),
                   "" if feed == untagged else feed.hex(),
                   "" if title == untagged else title.hex())  # fmt: skip


def _h8(*parts: str) -> bytes:
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest()


def url_field(article_id: str) -> bytes:
    return b"u" + bytes.fromhex(article_id)


def guid_field(feed_id: str, guid_hash: str) -> bytes:
    return b"g" + _h8(feed_id, guid_hash)


def hash_field(content_hash: str) -> bytes:
    return b"h" + bytes.fromhex(content_hash[:16])


def band_field(index: int, value: int) -> bytes:
    return b"b" + bytes([index]) + value.to_bytes(4, "big")


def claim_field(target_id: str) -> bytes:
    return b"c" + bytes.fromhex(target_id)


# KEYS: GENERATIONS keys per field (current generation first): the marks, then the band fields.
# ARGV: 1 n_field, 2 n_band, 3 the asking article's id (8 bytes: not its own candidate),
#   4 candidates kept, 5 key prefix of the seen hashes, 6 current generation, 7 shards,
#   8 n_resolve, then n_resolve 1-based indexes of marks whose value is an article id whose own
#   URL mark is wanted too, then one ARGV per field.
# The marks of the candidates and of the resolved ids are found here, their keys built as
# SeenStore.key builds them (shard: the id's first 4 bytes, big-endian, modulo the shards), so a
# lookup is one round trip however many candidates it names (tests/test_dedup_decide.py).
# Candidates: most shared bands first, ties in the order first met (newest generation first).
LOOKUP = """
local G = __GENERATIONS__
local nf, nb, own, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local prefix, gen, shards = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local nr = tonumber(ARGV[8])
local F = 8 + nr
local function key(m, j) return KEYS[G * (m - 1) + j] end
local values = {}
for m = 1, nf do
  values[m] = false
  for j = 1, G do
    local v = redis.call('HGET', key(m, j), ARGV[F + m])
    if v then values[m] = v break end
  end
end
local count, order = {}, {}
for m = nf + 1, nf + nb do
  local inband = {}
  for j = 1, G do
    local v = redis.call('HGET', key(m, j), ARGV[F + m])
    if v then
      for i = 1, #v - 7, 8 do
        local id = string.sub(v, i, i + 7)
        if id ~= own and not inband[id] then
          inband[id] = true
          if not count[id] then count[id] = 0 order[#order + 1] = id end
          count[id] = count[id] + 1
        end
      end
    end
  end
end
local first = {}
for i, id in ipairs(order) do first[id] = i end
table.sort(order, function(a, b)
  if count[a] ~= count[b] then return count[a] > count[b] end
  return first[a] < first[b]
end)
local shared, wanted, taken = {}, {}, {}
for i = 1, math.min(limit, #order) do
  local id = order[i]
  shared[i] = {id, count[id]}
  wanted[i] = id
  taken[id] = true
end
for k = 1, nr do
  local v = values[tonumber(ARGV[8 + k])]
  if v and #v == 8 and not taken[v] then wanted[#wanted + 1] = v taken[v] = true end
end
local marks = {}
for i, id in ipairs(wanted) do
  local b1, b2, b3, b4 = string.byte(id, 1, 4)
  local shard = string.format('%x', (((b1 * 256 + b2) * 256 + b3) * 256 + b4) % shards)
  local mark = false
  for j = 0, G - 1 do
    mark = redis.call('HGET', prefix .. string.format('%d', gen - j) .. ':' .. shard, 'u' .. id)
    if mark then break end
  end
  marks[i] = {id, mark}
end
return {values, shared, marks}
""".replace("__GENERATIONS__", str(GENERATIONS))


@dataclass
class Lookup:
    """What one `SeenStore.lookup_ranked` read found."""

    values: list[bytes | None]  # each field's newest value, in the order asked
    shared: list[tuple[str, int]]  # band candidates (hex ids) and the bands each shares
    marks: dict[str, UrlMark]  # own-URL marks of the candidates and of the resolved ids


class SeenStore:
    def __init__(self, r: redis.Redis, keys: Keys, window_days: float, shards: int = 4096):
        self.r = r
        self.keys = keys
        self.period = max(window_days * 86400 / 2, 60.0)
        self.shards = shards
        self._lookup = r.register_script(LOOKUP)

    def generation(self, now: float | None = None) -> int:
        return int((time.time() if now is None else now) // self.period)

    def expire_at(self, gen: int) -> int:
        """A generation is read while it is one of the last GENERATIONS: it expires after."""
        return int((gen + GENERATIONS) * self.period) + 60

    def shard(self, field: bytes) -> int:
        return int.from_bytes(field[1:5], "big") % self.shards

    def key(self, gen: int, field: bytes) -> str:
        return self.keys.seen(gen, self.shard(field))

    def read_keys(self, field: bytes, now: float | None = None) -> list[str]:
        gen = self.generation(now)
        return [self.key(gen - i, field) for i in range(GENERATIONS)]

    def put(self, pipe: Any, field: bytes, value: bytes) -> None:
        """One mark in the current generation (queued on `pipe`)."""
        gen = self.generation()
        key = self.key(gen, field)
        pipe.hset(key, field, value)
        pipe.expireat(key, self.expire_at(gen))

    # ------------------------------------------------------------------ reads

    def get_many(self, fields: list[bytes]) -> list[bytes | None]:
        """Each field's newest value across the readable generations, in one round trip."""
        return self.lookup(fields, [])[0]

    def band_members(self, bands: list[int]) -> list[list[str]]:
        """Article ids in each band's buckets (all readable generations)."""
        return self.lookup([], bands)[1]

    def lookup(
        self, fields: list[bytes], bands: list[int]
    ) -> tuple[list[bytes | None], list[list[str]]]:
        """Marks and band buckets together, in one round trip."""
        band_fields = [band_field(i, b) for i, b in enumerate(bands)]
        pipe = self.r.pipeline(transaction=False)
        for field in fields + band_fields:
            for key in self.read_keys(field):
                pipe.hget(key, field)
        raw = pipe.execute()
        values: list[bytes | None] = []
        for i in range(len(fields)):
            found = raw[i * GENERATIONS : (i + 1) * GENERATIONS]
            values.append(next((v for v in found if v is not None), None))
        members = []
        for i in range(len(fields), len(fields) + len(band_fields)):
            ids: list[str] = []
            for value in raw[i * GENERATIONS : (i + 1) * GENERATIONS]:
                if value:
                    ids.extend(bytes(value[j : j + 8]).hex() for j in range(0, len(value), 8))
            members.append(ids)
        return values, members

    def lookup_ranked(
        self, fields: list[bytes], bands: list[int], exclude: str, limit: int,
        resolve: tuple[int, ...] = (),
    ) -> Lookup:  # fmt: skip
        """Marks, the `limit` articles sharing most of `bands` (not `exclude`), and the own-URL
        marks of those and of the article ids held by `fields[i]` for i in `resolve`: one
        round trip (the LOOKUP script)."""
        band_fields = [band_field(i, b) for i, b in enumerate(bands)]
        keys: list[str] = []
        for f in fields + band_fields:
            keys.extend(self.read_keys(f))
        args: list[Any] = [
            len(fields), len(band_fields), bytes.fromhex(exclude), limit,
            self.keys.k("seen", ""), self.generation(), self.shards, len(resolve),
            *(i + 1 for i in resolve), *fields, *band_fields,
        ]  # fmt: skip
        raw_values, raw_shared, raw_marks = self._lookup(keys=keys, args=args)
        values = [bytes(v) if v is not None else None for v in raw_values]
        values += [None] * (len(fields) - len(values))  # a trailing nil ends a Lua array
        shared = [(bytes(aid).hex(), int(n)) for aid, n in raw_shared]
        marks = {}
        for entry in raw_marks:
            if len(entry) == 2 and self.is_mark(entry[1]):
                marks[bytes(entry[0]).hex()] = UrlMark.unpack(bytes(entry[1]))
        return Lookup(values, shared, marks)

    def url_mark(self, article_id: str) -> UrlMark | None:
        return self.url_marks([article_id])[0]

    def url_marks(self, article_ids: list[str]) -> list[UrlMark | None]:
        """The own-URL marks of these articles, in one round trip (None: not a known article)."""
        raws = self.get_many([url_field(a) for a in article_ids])
        return [
            UrlMark.unpack(bytes(v)) if v is not None and self.is_mark(v) else None for v in raws
        ]

    def known(self, fields: list[bytes]) -> list[bool]:
        return [v is not None for v in self.get_many(fields)]

    def is_mark(self, raw: Any) -> bool:
        return bool(raw) and len(raw) in MARK_SIZES
