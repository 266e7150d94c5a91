"""Near-duplicate detection across sites: recall, false positives, lookup cost, memory.

    python bench/dedup.py [--originals N] [--unrelated N] [--scale N]

The 91 pages of ../shared/data/extraction are published first (their own HTML, through the real
worker pipeline and a real Valkey). Then four syndicated copies of each, every one on another
site, inside another site's template and with tracking parameters on its URL:
  headline  the same body under a changed headline
  added     plus a paragraph (an editor's note)
  trimmed   without its last paragraph
  rewired   a dateline in front, a credit line at the end
and three syndication shapes (issue 21):
  tracking  the original itself under a tracking-parameter URL (another feed's link)
  wire      another host, another template, rel=canonical to the original, an "originally
            appeared on" note
  partner   another host, another template, a changed headline, no canonical
Each copy must come out a duplicate of its original (recall). Same-feed distinct posts: the
unrelated articles cut to short posts (their first sentence) between one feed's shared intro and
footer, and SIB-200's Chinese and Japanese one-line sentences, ten posts to a feed, the feed's
furniture computed as the poller does (ingest/feeds/identity.py): any post dropped as a copy of
another is a false merge (flagged `possible_duplicate_of` is reported apart). Then the 683
MasakhaNEWS English and French dev articles, unrelated to the pages and to each other, are processed as new
stories: each one flagged as a near-duplicate is a false positive. Lookup cost is the time of the
dedup decision (Redis reads + candidate checks) per article; memory is Redis' used_memory for the
seen state (stream and queues excluded) per article remembered.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import html
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

from ingest.core import bodies  # noqa: E402
from ingest.core.embedded import EmbeddedValkey, free_port  # noqa: E402
from ingest.core.settings import Settings  # noqa: E402
from ingest.core.urls import article_id  # noqa: E402
from ingest.feeds import identity  # noqa: E402
from ingest.feeds.feedparse import FeedItem  # noqa: E402
from workers import pipeline  # noqa: E402
from workers.context import Context  # noqa: E402
from workers.dedup import Fingerprints, Item  # noqa: E402


@contextlib.contextmanager
def fresh_service() -> Iterator[tuple[redis.Redis, Context]]:
    """A worker context on an empty embedded Valkey, stopped afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        valkey = EmbeddedValkey(Path(tmp), free_port())
        valkey.start()
        try:
            r = redis.Redis.from_url(valkey.url)
            yield r, Context.build(Settings(), r)
        finally:
            valkey.stop()


TEMPLATE = """<!doctype html><html><head><title>{title} | {site}</title>
<meta property="og:site_name" content="{site}"></head><body>
<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/business">Business</a>
<a href="/sport">Sport</a></nav></header>
<main><article><h1>{title}</h1><p class="byline">By Staff, {site}</p>{paras}</article>
<aside><h3>Most read</h3><ul><li><a href="/x1">Markets close higher</a></li>
<li><a href="/x2">Storm warning issued for the coast</a></li></ul></aside></main>
<footer>Copyright {site}. All rights reserved. <a href="/privacy">Privacy</a></footer>
</body></html>"""


def page(title: str, paras: list[str], site: str) -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paras)
    return TEMPLATE.format(title=html.escape(title), site=site, paras=body)


WIRE = """<!doctype html><html><head><meta charset="utf-8"><title>{title} - Wire</title>
<link rel="canonical" href="{canonical}"></head><body><div id="top"><a href="/">Wire</a> |
<a href="/markets">Markets</a> | <a href="/world">World</a></div><div class="story">
<h2>{title}</h2><div class="meta">Published by the wire desk</div>{paras}
<p class="note">This story originally appeared on {origin} and is republished here with
permission.</p></div><div class="more"><b>More from the wire</b><ul><li><a href="/w/1">Oil
prices steady ahead of talks</a></li><li><a href="/w/2">Ferry strike called off</a></li></ul>
</div><div id="foot">Wire Ltd. Terms apply.</div></body></html>"""
PARTNER = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><header><a href="/">The Partner Gazette</a><nav><a href="/local">Local</a>
<a href="/sport">Sport</a></nav></header><section><article><header><h1>{title}</h1>
<time>Nov 19</time></header>{paras}</article></section><footer>Partner content.</footer>
</body></html>"""
FOOTER = ("Thank you for reading this post via RSS. If you enjoy the newsletter, consider "
          "becoming a member: members keep the site free of ads and trackers, get every issue a "
          "day early and join our monthly call. Reply to this email with tips or corrections.")
INTRO = ("Good morning. Here is what happened overnight, in one short item, before the full "
         "edition lands in your inbox at seven.")


def payload(url: str, body: str, title: str, feed: str, furniture: tuple[str, ...] = (),
            summary: str = "") -> dict[str, Any]:  # fmt: skip
    return {
        "feed": {"id": feed, "url": f"http://127.0.0.1/{feed}.xml", "title": feed, "tags": [],
                 "language": "", "topic": ""},
        "item": {"guid": url, "link": url, "title": title, "authors": [], "published_at": None,
                 "tags": [], "summary": summary, "content": "", "image": ""},
        "furniture": list(furniture),
        "link": url, "link_id": article_id(url), "guid_hash": article_id(url),
        "page": {"url": url, "status": 200, "content_type": "text/html; charset=utf-8",
                 "outcome": "ok", "html_z": bodies.pack(body.encode()), "error": ""},
        "discovered_at": time.time(), "fetched_at": "2026-11-27T00:00:00Z",
    }  # fmt: skip


def copies(title: str, paras: list[str]) -> dict[str, tuple[str, list[str]]]:
    return {
        "headline": (f"{title} - what we know", paras),
        "added": (
            title,
            [
                *paras,
                "Editor's note: this article has been updated with new "
                "information from local officials.",
            ],
        ),
        "trimmed": (title, paras[:-1] if len(paras) > 2 else paras),
        "rewired": (
            title,
            [
                f"LONDON (Wire) - {paras[0]}",
                *paras[1:],
                "Reporting by Jane Doe; Editing by John Smith",
            ],
        ),
    }


def syndicated(url: str, title: str, paras: list[str], n: int) -> dict[str, tuple[str, str, str]]:
    """kind -> (url, page, feed title) of the syndication shapes of one original."""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paras)
    sep = "&" if "?" in url else "?"
    headline = f"{title.split(' ')[0]} update: {paras[0][:50].lower()}"
    return {
        "wire": (f"https://wire{n}.example/w/{n}?utm_source=rss",
                 WIRE.format(title=html.escape(title), canonical=html.escape(url), paras=body,
                             origin="the original site"), title),
        "partner": (f"https://partner{n}.example/p/{n}",
                    PARTNER.format(title=html.escape(headline), paras=body), headline),
        "tracking": (f"{url}{sep}utm_source=top&utm_medium=feed&fbclid=z{n}", "", title),
    }  # fmt: skip


def same_feed_posts(unrelated: list[tuple[str, list[str]]]) -> list[list[tuple[str, str]]]:
    """Feeds of ten distinct short posts each: (title, text) lines."""
    posts = []
    for title, paras in unrelated:
        first = re.split(r"(?<=[.!?])\s", paras[0])[0] if paras else ""
        if len(first.split()) >= 6:
            posts.append((title, "\n".join([INTRO, first, FOOTER])))
    for line in (SHARED / "classification" / "sib200_langid.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["lang"] in ("zh", "ja"):
            posts.append((row["text"][:24], row["text"]))
    return [posts[i : i + 10] for i in range(0, len(posts), 10)]


def same_feed(unrelated: list[tuple[str, list[str]]]) -> tuple[int, int, int]:
    """Distinct short posts of feeds, on a service of their own: (posts, false merges, flagged)."""
    with fresh_service() as (r, ctx):
        merges, flagged, distinct = 0, 0, 0
        for f, posts in enumerate(same_feed_posts(unrelated)):
            items = [FeedItem(guid=f"p{f}-{i}", title=t, summary=text)
                     for i, (t, text) in enumerate(posts)]  # fmt: skip
            furniture = identity.furniture(items)
            for i, (title, text) in enumerate(posts):
                url = f"https://brief{f}.example/post/{i}"
                paras = text.split("\n")
                out = pipeline.process(ctx, payload(url, page(title, paras, f"brief{f}"), title,
                                                    f"brief{f}", furniture, text))  # fmt: skip
                distinct += 1
                merges += out in ("near_duplicate", "duplicate")
                flagged += out == "published" and b"possible_duplicate_of\":\"" in (
                    r.xrevrange("news:articles", count=1)[0][1][b"data"]
                )
    return distinct, merges, flagged


def seen_memory(r: redis.Redis) -> int:
    """Valkey's memory without what is not seen state: in-flight markers, metrics, the
    per-article traces (observability, 3 days), the texts kept for the next topic refit
    (`learn`), the site-template counts (`tpl`), the stream and dead letters."""
    for pattern in ("news:inflight:*", "news:metrics:*", "news:trace:*", "news:learn:*",
                    "news:tpl:*"):  # fmt: skip
        keys = r.keys(pattern)
        if keys:
            r.delete(*keys)
    r.delete("news:articles", "news:deadletter")
    return settled_memory(r)


def settled_memory(r: redis.Redis, timeout: float = 30) -> int:
    """used_memory once the deletes above are done: Valkey 8+ frees a deleted key in a
    background thread (lazyfree-lazy-user-del yes), and read at once, used_memory still holds
    what is being freed (a 100,000-article run read 205 B/article instead of 193 so)."""
    end = time.monotonic() + timeout
    while int(r.info("memory").get("lazyfree_pending_objects", 0)) and time.monotonic() < end:
        time.sleep(0.05)
    return int(r.info("memory")["used_memory"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--originals", type=int, default=0, help="at most N originals (0: all)")
    parser.add_argument("--unrelated", type=int, default=0, help="at most N unrelated (0: all)")
    parser.add_argument("--scale", type=int, default=100_000, help="articles of the memory run")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    truth = json.loads((SHARED / "extraction" / "ground-truth.json").read_text())
    originals = []
    for doc_id, meta in truth.items():
        raw = gzip.decompress((SHARED / "extraction" / "html" / f"{doc_id}.html.gz").read_bytes())
        paras = [p.strip() for p in meta["articleBody"].split("\n") if p.strip()]
        if len(" ".join(paras).split()) >= 60:  # too short to call anything a copy of it
            originals.append((doc_id, meta.get("url") or f"http://site{doc_id[:6]}.test/a",
                              raw.decode("utf-8", "replace"), paras))  # fmt: skip
    unrelated = []
    for name in ("masakhanews_eng_dev.jsonl", "masakhanews_fra_dev.jsonl"):
        for line in (SHARED / "classification" / name).read_text().splitlines():
            row = json.loads(line)
            unrelated.append((row["title"], [p for p in row["text"].split("\n") if p.strip()]))
    if args.originals:
        originals = originals[: args.originals]
    if args.unrelated:
        unrelated = unrelated[:: max(1, len(unrelated) // args.unrelated)][: args.unrelated]

    with fresh_service() as (r, ctx):
        base_mem = seen_memory(r)
        ids: dict[str, str] = {}
        for doc_id, url, raw, _paras in originals:
            out = pipeline.process(ctx, payload(url, raw, "", "origin"))
            ids[doc_id] = article_id(url) if out == "published" else ""
        published = sum(1 for v in ids.values() if v)

        hits: dict[str, list[bool]] = {}
        decide_s: list[float] = []
        original_decide = pipeline.decide

        def timed(*args: Any) -> Any:
            t = time.perf_counter()
            try:
                return original_decide(*args)
            finally:
                decide_s.append(time.perf_counter() - t)

        pipeline.decide = timed  # type: ignore[assignment]
        for n, (doc_id, url0, raw0, paras) in enumerate(originals):
            if not ids[doc_id]:
                continue
            for kind, (title, body) in copies(paras[0][:60], paras).items():
                site = f"copy{n}-{kind}.example"
                url = f"https://{site}/story/{n}?utm_source=feed&utm_medium=rss&fbclid=x{n}"
                out = pipeline.process(ctx, payload(url, page(title, body, site), title, kind))
                hits.setdefault(kind, []).append(out in ("near_duplicate", "duplicate"))
            for kind, (url, html_page, title) in syndicated(url0, paras[0][:60], paras, n).items():
                out = pipeline.process(ctx, payload(url, html_page or raw0, title, kind))
                hits.setdefault(kind, []).append(out in ("near_duplicate", "duplicate"))
        false_pos = 0
        for i, (title, paras) in enumerate(unrelated):
            url = f"https://unrelated{i}.example/news/{i}"
            out = pipeline.process(ctx, payload(url, page(title, paras, "other"), title, "u"))
            false_pos += out in ("near_duplicate", "duplicate")
        pipeline.decide = original_decide  # type: ignore[assignment]
        remembered = published + len(unrelated) - false_pos
        mem = seen_memory(r) - base_mem

    distinct, merges, flagged = same_feed(unrelated)
    copies_total = sum(len(v) for v in hits.values())
    found = sum(sum(v) for v in hits.values())
    print(f"originals published: {published}; syndicated copies: {copies_total}; "
          f"unrelated articles: {len(unrelated)}")  # fmt: skip
    for kind, v in hits.items():
        print(f"  recall {kind:9} {sum(v) / len(v):.3f} ({sum(v)}/{len(v)})")
    print(f"recall (all copies): {found / copies_total:.3f}")
    print(f"same-feed distinct posts: {distinct}; false merges: {merges}; flagged "
          f"possible_duplicate_of (kept): {flagged}")  # fmt: skip
    print(f"false positives: {false_pos}/{len(unrelated)} = {false_pos / len(unrelated):.4f}")
    print(f"dedup decision per article: median {statistics.median(decide_s) * 1e6:.0f} us, "
          f"p95 {sorted(decide_s)[int(len(decide_s) * 0.95)] * 1e6:.0f} us")  # fmt: skip
    print(f"seen-state memory, this small run: {mem / remembered:.0f} bytes per article "
          f"({remembered} remembered; the fixed cost of the shard hashes dominates)")  # fmt: skip
    n, per_article, lookup_us = at_scale(args.scale)
    print(f"seen-state memory at scale ({n} articles, one generation): {per_article:.0f} bytes "
          f"per article; lookup {lookup_us:.0f} us per article")  # fmt: skip


def at_scale(n: int = 100_000) -> tuple[int, float, float]:
    """Marks of n synthetic articles written by the real publish script (2 URLs, a GUID, a
    content hash and 4 bands each); the stream is dropped before measuring."""
    import random

    from ingest.core.seen import UrlMark

    rng = random.Random(7)
    with fresh_service() as (r, ctx):
        base = seen_memory(r)
        for i in range(n):
            aid, alias, chash = (f"{rng.getrandbits(64):016x}" for _ in range(3))
            sim = rng.getrandbits(64)
            bands = [rng.getrandbits(32) for _ in range(4)]
            ctx.publisher.publish(
                {"id": aid}, url_ids=[aid, alias], guid=("feed", f"g{i}"), expected=b"",
                event="created", bands=bands, mark=UrlMark(aid, chash, sim, 500, aid),
                item_version=b"v001",
            )  # fmt: skip
            if i % 20_000 == 0:
                r.delete("news:articles")
        mem = seen_memory(r) - base
        fp = Fingerprints("ab" * 16, 1, [1, 2, 3, 4], 500, 498)
        started = time.perf_counter()
        for i in range(2000):
            pipeline.decide(ctx, Item(f"{i:016x}", [f"{i:016x}"]), fp)
        lookup = (time.perf_counter() - started) / 2000 * 1e6
    return n, mem / n, lookup


if __name__ == "__main__":
    main()
