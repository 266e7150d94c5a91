"""Publication: the seen-marks and the XADD in one atomic step (a Lua script).

A job may run twice (RQ delivers at least once; a worker killed mid-job is re-run). The script
re-checks, inside Redis, that the article's URL keys still hold what the worker read and that no
other article has claimed its content hash; only then does it mark everything and append to the
stream. A crash before the script leaves nothing marked (the re-run publishes); a crash after it
leaves the article marked and published once (the re-run finds it seen and stops).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from ingest.connection import as_str
from ingest.keys import Keys

# KEYS: 1 stream, 2 hash key, 3.. url keys (first one is the article's own), then guid key(s)
# ARGV: 1 expected url value ('' = absent), 2 new url value, 3 ttl s, 4 maxlen, 5 n_url_keys,
#       6 event, 7 article id, 8 data json, 9 check_hash ('1'/'0')
PUBLISH = """
local n_url = tonumber(ARGV[5])
local expected = ARGV[1]
for i = 3, 2 + n_url do
  local cur = redis.call('GET', KEYS[i]) or ''
  if i == 3 then
    if cur ~= expected then return {'conflict', cur} end
  elseif cur ~= '' and expected == '' then
    return {'duplicate', cur}
  end
end
if ARGV[9] == '1' then
  local owner = redis.call('GET', KEYS[2])
  if owner and owner ~= ARGV[7] then return {'duplicate_content', owner} end
end
local ttl = tonumber(ARGV[3])
for i = 3, #KEYS do redis.call('SET', KEYS[i], ARGV[2], 'EX', ttl) end
redis.call('SET', KEYS[2], ARGV[7], 'EX', ttl)
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*',
  'id', ARGV[7], 'event', ARGV[6], 'data', ARGV[8])
return {'published', id}
"""


@dataclass
class PublishResult:
    outcome: str  # published | duplicate | duplicate_content | conflict
    detail: str  # stream id, or the value that blocked publication


def url_value(article_id: str, content_hash: str, simhash: int, words: int) -> str:
    """What a seen-URL key holds: enough to tell a duplicate from a correction."""
    return f"{article_id}|{content_hash}|{simhash:016x}|{words}"


def parse_url_value(value: str) -> tuple[str, str, int, int]:
    aid, chash, sim, words = ([*value.split("|"), "", "", "0", "0"])[:4]
    return aid, chash, int(sim or "0", 16), int(words or "0")


class Publisher:
    def __init__(self, r: redis.Redis, keys: Keys, ttl_s: int, maxlen: int) -> None:
        self.r = r
        self.keys = keys
        self.ttl = ttl_s
        self.maxlen = maxlen
        self._script = r.register_script(PUBLISH)

    def publish(
        self, record: dict[str, Any], *, url_ids: list[str], guid_keys: list[str],
        expected: str, event: str,
    ) -> PublishResult:  # fmt: skip
        aid = record["id"]
        url_keys = [self.keys.seen_url(i) for i in dict.fromkeys([aid, *url_ids])]
        keys = [self.keys.articles, self.keys.seen_hash(record["content_hash"]), *url_keys,
                *guid_keys]  # fmt: skip
        args = [
            expected,
            url_value(
                aid, record["content_hash"], int(record["simhash"], 16), record["word_count"]
            ),
            self.ttl,
            self.maxlen,
            len(url_keys),
            event,
            aid,
            json.dumps(record, ensure_ascii=False, separators=(",", ":")),
            "1" if event == "created" else "0",
        ]
        outcome, detail = self._script(keys=keys, args=args)
        return PublishResult(as_str(outcome), as_str(detail))
