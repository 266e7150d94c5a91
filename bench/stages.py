"""Where a worker's CPU goes, stage by stage, on the 91 extraction pages: one process, no Redis.

    python bench/stages.py

Times each step the worker runs on a page (unpack, decode, parse, metadata, anchors,
trafilatura's precision pass, paywall scan, cleaner, site template, fingerprints, language,
topics) with
`time.process_time`, and the poller's packing of the page body, next to `trafilatura.extract` on the same page (the floor of
bench/pipeline.py), and prints milliseconds per page, largest first. What bench/pipeline.py
measures beyond their sum is Redis, RQ and the poller's fetch and feed parsing, except the site
template step (workers/template.py), which is one script call to a Valkey this bench starts on
127.0.0.1: its CPU here is the client's, and its wall time per call is printed apart.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from typing import Any

import trafilatura
from common import ROOT, SHARED
from common import valkey as temporary_valkey
from trafilatura.utils import load_html

from ingest.core import bodies
from ingest.core.keys import Keys
from ingest.core.settings import TemplateSettings
from ingest.core.urls import article_id
from workers import classify, extract, language, metadata
from workers.decode import decode
from workers.dedup import Fingerprints
from workers.template import SiteTemplates

PAGES = SHARED / "extraction" / "html"


def main() -> None:
    with temporary_valkey() as server:
        run(server.url)


def run(redis_url: str) -> None:
    import redis

    templates = SiteTemplates(redis.Redis.from_url(redis_url), Keys(), TemplateSettings())
    wall = 0.0
    pages = [gzip.decompress(p.read_bytes()) for p in sorted(PAGES.glob("*.html.gz"))]
    lexicon = classify.cached_lexicon(str(ROOT / "ingest" / "defaults" / "taxonomy.yaml"))
    language.detect("A first call loads the language model, outside the timings.")
    spent: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        started = time.process_time()
        out = fn(*args)
        spent[name] = spent.get(name, 0.0) + time.process_time() - started
        return out

    for page in pages:
        body_z = timed("pack (poller)", bodies.pack, page)
        body = timed("unpack", bodies.unpack, body_z)
        html, _charset = timed("decode", decode, body, "text/html")
        tree = timed("parse (load_html)", load_html, html)
        timed("metadata", metadata.read, tree)
        timed("anchors", extract.anchor_texts, tree)
        raw = timed("trafilatura precision pass", extract._trafilatura, tree, "", True, True)
        timed("paywall scan", extract.paywall_signal, body)
        text, _removed = timed("cleaner", extract.clean, raw)
        # all pages as one site: the worst case for the counts each call reads and writes
        started = time.perf_counter()
        timed("site template (1 round trip)", templates.apply, "bench.example",
              article_id(str(len(spent)) + text[:64]), text)  # fmt: skip
        wall += time.perf_counter() - started
        timed("fingerprints", Fingerprints.of, text)
        lang = timed("language", language.detect, text)
        timed("topics", lambda t, lg: classify.topics(lexicon, "", t, lang=lg), text, lang)
        timed("FLOOR trafilatura.extract", trafilatura.extract, html)
    floor = spent.pop("FLOOR trafilatura.extract")
    n = len(pages)
    print(f"{n} pages; ms CPU per page")
    for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {name:28} {seconds / n * 1000:6.2f}")
    total = sum(spent.values())
    print(f"  {'sum of the stages':28} {total / n * 1000:6.2f}")
    print(f"  {'floor: trafilatura.extract':28} {floor / n * 1000:6.2f}  "
          f"(stages / floor: {total / floor:.2f})")  # fmt: skip
    print(f"  site template wall time per article (one script call): {wall / n * 1000:.2f} ms")


if __name__ == "__main__":
    main()
