"""Near-duplicate detection across sites: recall, false positives, lookup cost, memory.

    python bench/dedup.py

The 91 pages of ../shared/data/extraction are published first (their own HTML, through the real
worker pipeline and a real Valkey). Then four syndicated copies of each, every one on another
site, inside another site's template and with tracking parameters on its URL:
  headline  the same body under a changed headline
  added     plus a paragraph (an editor's note)
  trimmed   without its last paragraph
  rewired   a dateline in front, a credit line at the end
Each copy must come out `near_duplicate` of its original (recall). Then the 941 MasakhaNEWS
English and French dev articles, unrelated to the pages and to each other, are processed as new
stories: each one flagged as a near-duplicate is a false positive. Lookup cost is the time of the
dedup decision (Redis reads + candidate checks) per article; memory is Redis' used_memory for the
seen state (stream and queues excluded) per article remembered.
"""

from __future__ import annotations

import contextlib
import gzip
import html
import json
import logging
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

from ingest import bodies  # noqa: E402
from ingest.embedded import EmbeddedValkey, free_port  # noqa: E402
from ingest.settings import Settings  # noqa: E402
from ingest.urls import article_id  # noqa: E402
from workers import pipeline  # noqa: E402


@contextlib.contextmanager
def fresh_service() -> Iterator[tuple[redis.Redis, pipeline.Context]]:
    """A worker context on an empty embedded Valkey, stopped afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        valkey = EmbeddedValkey(Path(tmp), free_port())
        valkey.start()
        try:
            r = redis.Redis.from_url(valkey.url)
            yield r, pipeline.Context.build(Settings(), r)
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


def payload(url: str, body: str, title: str, feed: str) -> dict[str, Any]:
    return {
        "feed": {"id": feed, "url": f"http://127.0.0.1/{feed}.xml", "title": feed, "tags": [],
                 "language": "", "topic": ""},
        "item": {"guid": url, "link": url, "title": title, "authors": [], "published_at": None,
                 "tags": [], "summary": "", "content": "", "image": ""},
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


def seen_memory(r: redis.Redis) -> int:
    """Valkey's memory without what is not seen state: in-flight markers, metrics, the
    per-article traces (observability, 3 days), the stream and dead letters."""
    for pattern in ("news:inflight:*", "news:metrics:*", "news:trace:*"):
        keys = r.keys(pattern)
        if keys:
            r.delete(*keys)
    r.delete("news:articles", "news:deadletter")
    return int(r.info("memory")["used_memory"])


def main() -> None:
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
        for n, (doc_id, _url, _raw, paras) in enumerate(originals):
            if not ids[doc_id]:
                continue
            for kind, (title, body) in copies(paras[0][:60], paras).items():
                site = f"copy{n}-{kind}.example"
                url = f"https://{site}/story/{n}?utm_source=feed&utm_medium=rss&fbclid=x{n}"
                out = pipeline.process(ctx, payload(url, page(title, body, site), title, kind))
                hits.setdefault(kind, []).append(out in ("near_duplicate", "duplicate"))
        false_pos = 0
        for i, (title, paras) in enumerate(unrelated):
            url = f"https://unrelated{i}.example/news/{i}"
            out = pipeline.process(ctx, payload(url, page(title, paras, "other"), title, "u"))
            false_pos += out in ("near_duplicate", "duplicate")
        pipeline.decide = original_decide  # type: ignore[assignment]
        remembered = published + len(unrelated) - false_pos
        mem = seen_memory(r) - base_mem

    copies_total = sum(len(v) for v in hits.values())
    found = sum(sum(v) for v in hits.values())
    print(f"originals published: {published}; syndicated copies: {copies_total}; "
          f"unrelated articles: {len(unrelated)}")  # fmt: skip
    for kind, v in hits.items():
        print(f"  recall {kind:9} {sum(v) / len(v):.3f} ({sum(v)}/{len(v)})")
    print(f"recall (all copies): {found / copies_total:.3f}")
    print(f"false positives: {false_pos}/{len(unrelated)} = {false_pos / len(unrelated):.4f}")
    print(f"dedup decision per article: median {statistics.median(decide_s) * 1e6:.0f} us, "
          f"p95 {sorted(decide_s)[int(len(decide_s) * 0.95)] * 1e6:.0f} us")  # fmt: skip
    print(f"seen-state memory, this small run: {mem / remembered:.0f} bytes per article "
          f"({remembered} remembered; the fixed cost of the shard hashes dominates)")  # fmt: skip
    n, per_article, lookup_us = at_scale()
    print(f"seen-state memory at scale ({n} articles, one generation): {per_article:.0f} bytes "
          f"per article; lookup {lookup_us:.0f} us per article")  # fmt: skip


def at_scale(n: int = 100_000) -> tuple[int, float, float]:
    """Marks of n synthetic articles written by the real publish script (2 URLs, a GUID, a
    content hash and 4 bands each); the stream is dropped before measuring."""
    import random

    from ingest.seen import UrlMark

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
        fp = pipeline.Fingerprints("ab" * 16, 1, [1, 2, 3, 4], 500)
        started = time.perf_counter()
        for i in range(2000):
            pipeline.decide(ctx, f"{i:016x}", [f"{i:016x}"], fp)
        lookup = (time.perf_counter() - started) / 2000 * 1e6
    return n, mem / n, lookup


if __name__ == "__main__":
    main()
