"""Site template learning, shared by every worker: lines that recur on many articles of one site.

trafilatura's `deduplicate` option drops a paragraph it has already seen many times, but only
within one process and one run. This lifts the idea to the whole stream: per site, Redis keeps a
compact, decaying count of line fingerprints, and a line of a new article is dropped as the
site's template (a byline box, a newsletter prompt, a related list, a footer) when it has been
seen on at least `template.min_articles` OTHER articles of that site within the window.

What is counted: distinct articles, not lines. Each article's distinct line fingerprints are
added once; an article already counted (an update of the same URL, a second feed listing it)
adds nothing and, when judged, subtracts itself (conservatively, from every line), so a quote
that appears in two updates of one story is never its own evidence.

Storage, per site `s` and generation `g` (a slice of the window; `window_days / generations`):

* `<prefix>tpl:<s>:<g>:lines`    HASH  8-byte line fingerprint -> articles seen with it
* `<prefix>tpl:<s>:<g>:stories`  SET   article ids already counted, as 60-bit integers
* `<prefix>tpl:sites`            ZSET  site -> last time an article of it was learned

Decay is by generation: a judgement sums the live generations, new counts go to the current
one, and each generation's keys expire when it leaves the window. Memory is bounded: at most
`max_lines` fingerprints and `max_stories` ids per site and generation (a full generation still
counts the lines it knows, it only stops taking new ones), and at most `max_sites` sites learn
at once (a site beyond that is judged on nothing and learns nothing). The figures are in
docs/benchmarks.md ("Site template learning"), measured by
tests/test_template.py::test_memory_per_site_is_bounded.

A page whose lines are nearly all known (under MOSTLY_KNOWN of its text would be left) is a copy
of a story the site already published under another URL, not template: it is left whole, for
the dedup stage to name.

Cost: one script call, so one round trip, per article (bench/stages.py times it).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from ingest.core.keys import Keys
from ingest.core.settings import TemplateSettings
from ingest.core.urls import host_of
from workers.extract import PAGE_STEPS, Extracted

MAX_PER_ARTICLE = 1000  # distinct lines of one article judged and counted
MOSTLY_KNOWN = 0.25  # less than this share of the text left: a copy of a story, not a template
_WORD = re.compile(r"\w+")

# KEYS: sites zset, then (lines, stories) for each live generation, the current one first.
# ARGV: now, site, story id, ttl, max_lines, max_stories, max_sites, horizon, then fingerprints.
# Returns {known (0/1), learned (0/1), count of each fingerprint summed over the generations}.
_SCRIPT = """
local now = tonumber(ARGV[1])
local site, story, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local max_lines, max_stories = tonumber(ARGV[5]), tonumber(ARGV[6])
local max_sites, horizon = tonumber(ARGV[7]), tonumber(ARGV[8])
local fps = {}
for i = 9, #ARGV do fps[#fps + 1] = ARGV[i] end
local ngen = (#KEYS - 1) / 2
local known = 0
for g = 1, ngen do
  if redis.call('SISMEMBER', KEYS[2 * g + 1], story) == 1 then known = 1 break end
end
local counts = {}
for i = 1, #fps do counts[i] = 0 end
if #fps > 0 then
  for g = 1, ngen do
    local got = redis.call('HMGET', KEYS[2 * g], unpack(fps))
    for i = 1, #fps do
      if got[i] then counts[i] = counts[i] + tonumber(got[i]) end
    end
  end
end
local learned = 0
if known == 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - horizon)
  local listed = redis.call('ZSCORE', KEYS[1], site)
  if listed or redis.call('ZCARD', KEYS[1]) < max_sites then
    if redis.call('SCARD', KEYS[3]) < max_stories then
      redis.call('SADD', KEYS[3], story)
      local size = redis.call('HLEN', KEYS[2])
      for i = 1, #fps do
        if size < max_lines or redis.call('HEXISTS', KEYS[2], fps[i]) == 1 then
          if redis.call('HINCRBY', KEYS[2], fps[i], 1) == 1 then size = size + 1 end
        end
      end
      redis.call('EXPIRE', KEYS[2], ttl)
      redis.call('EXPIRE', KEYS[3], ttl)
      learned = 1
    end
    redis.call('ZADD', KEYS[1], now, site)
  end
end
local out = {known, learned}
for i = 1, #fps do out[#out + 1] = counts[i] end
return out
"""


def fingerprint(line: str) -> bytes | None:
    """8 bytes naming a line up to case, punctuation and spacing; None for a line with no word.
    Digits count: a daily market or weather report repeats its sentences with new figures,
    and those are the story."""
    words = _WORD.findall(line.casefold())
    if not words:
        return None
    return hashlib.blake2b(" ".join(words).encode(), digest_size=8).digest()


def to_drop(counts: list[int], known: bool, min_articles: int) -> list[bool]:
    """Which lines are template: seen on at least `min_articles` articles other than this one.
    An article already counted is taken off every line's count (it may have added any of them),
    so its own repeated sentences never reach the threshold by themselves."""
    own = 1 if known else 0
    return [count - own >= min_articles for count in counts]


@dataclass
class Verdict:
    text: str
    dropped: list[str] = field(default_factory=list)
    known: bool = False  # the article was already counted (an update, another listing)
    learned: bool = False  # its lines were added to the site's counts
    copy: bool = False  # almost all of it was known: left whole for dedup to judge


class SiteTemplates:
    """The shared per-site counts (thin Redis adapter around one Lua script)."""

    def __init__(self, r: redis.Redis, keys: Keys, settings: TemplateSettings) -> None:
        self.r = r
        self.keys = keys
        self.settings = settings
        self._script = r.register_script(_SCRIPT)

    def apply(self, site: str, story_id: str, text: str, now: float | None = None) -> Verdict:
        """Count this article's lines for its site and return its text without the lines the
        site's other articles share (one round trip)."""
        cfg = self.settings
        lines = [line for line in text.splitlines() if line.strip()]
        if not cfg.enabled or not site or not lines:
            return Verdict(text)
        fps = [fingerprint(line) for line in lines]
        # a bound on one call's work (and on Lua's unpack); later lines are neither counted nor
        # dropped
        unique = list(dict.fromkeys(fp for fp in fps if fp is not None))[:MAX_PER_ARTICLE]
        now = time.time() if now is None else now
        step = cfg.generation_seconds
        current = int(now // step)
        gens = [current - i for i in range(max(1, cfg.generations))]
        keys = [self.keys.template_sites]
        for gen in gens:
            keys += [self.keys.template_lines(site, gen), self.keys.template_stories(site, gen)]
        story = story_number(story_id)
        ttl = step * max(1, cfg.generations) + step  # the generation leaves the window, then goes
        args: list[Any] = [now, site, story, ttl, cfg.max_lines, cfg.max_stories, cfg.max_sites,
                           step * max(1, cfg.generations), *unique]  # fmt: skip
        raw: Any = self._script(keys=keys, args=args)
        known, learned = bool(int(raw[0])), bool(int(raw[1]))
        count_of = dict(zip(unique, (int(c) for c in raw[2:]), strict=True))
        drop = to_drop([count_of.get(fp, 0) if fp else 0 for fp in fps], known, cfg.min_articles)
        kept = [line for line, gone in zip(lines, drop, strict=True) if not gone]
        dropped = [line for line, gone in zip(lines, drop, strict=True) if gone]
        if sum(map(len, kept)) < MOSTLY_KNOWN * sum(map(len, lines)):
            # nearly every line known: another copy of a story already counted (the site
            # republished it under a new URL), not a template; dedup decides what it is
            return Verdict(text, [], known, learned, copy=True)
        return Verdict("\n".join(kept), dropped, known, learned)


def strip(templates: SiteTemplates, page_url: str, story_id: str, ex: Extracted) -> list[str]:
    """Take the site's template lines out of a page's body (a body from the feed is left alone);
    the lines dropped, cut to 120 characters, are what the trace (`explain`) lists."""
    if ex.method not in PAGE_STEPS or not ex.text or not templates.settings.enabled:
        return []
    verdict = templates.apply(host_of(page_url).removeprefix("www."), story_id, ex.text)
    if verdict.dropped:
        ex.text = verdict.text
        ex.quality["template_dropped"] = len(verdict.dropped)
    return [line[:120] for line in verdict.dropped]


def story_number(story_id: str) -> int:
    """An article id as a 60-bit integer: Redis keeps a set of small integers as a packed
    array (8 bytes a member) instead of a hash table."""
    try:
        return int(story_id[:15], 16)
    except ValueError:
        return int.from_bytes(hashlib.blake2b(story_id.encode(), digest_size=8).digest()[:7])
