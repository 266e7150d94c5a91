"""`explain URL`: what happened to one article, from its trace, marks and letters."""

from __future__ import annotations

import json
from typing import Any

import click

from ingest import explain as explain_mod
from ingest.cli.app import App, cli, pass_app
from ingest.core import timefmt
from ingest.core.keys import Keys


@cli.command()
@click.argument("url")
@click.option("--scan", type=click.IntRange(min=1), default=10000, show_default=True,
              help="Stream and dead-letter entries to search, newest first.")  # fmt: skip
@pass_app
def explain(app: App, url: str, scan: int) -> None:
    """What the system knows about one article URL: seen, published (stream id), or why not."""
    from ingest.core.seen import SeenStore, UrlMark, url_field
    from ingest.core.urls import article_id, canonicalize
    from ingest.feeds.feedparse import page_url

    if not page_url("", url):
        raise click.BadParameter(f"not an http(s) URL: {url!r}", param_hint="URL")
    keys = Keys(app.settings.redis.prefix)
    aid = article_id(url)
    with app.redis() as (_url, r):
        store = SeenStore(r, keys, app.settings.dedup.window_days, app.settings.dedup.shards)
        raw = store.get_many([url_field(aid)])[0]
        seen: dict[str, Any] | None = None
        if raw is not None and store.is_mark(raw):
            mark = UrlMark.unpack(raw)
            seen = {"article_id": mark.article_id, "content_hash": mark.content_hash,
                    "simhash": f"{mark.simhash:016x}", "words": mark.words,
                    "cluster_id": mark.cluster_id}  # fmt: skip
        elif raw is not None:  # another URL of a story published under its canonical URL
            seen = {"article_id": bytes(raw).hex(), "via": "alias of the canonical URL"}
            aid = seen["article_id"]
        marker: Any = r.get(keys.inflight(article_id(url)))
        from ingest.core.observe import read_trace

        trace = read_trace(r, keys, article_id(url)) or read_trace(r, keys, aid)
        aid = str(trace.get("article_id") or aid)  # published under another id (canonical, title)
        entries: Any = r.xrevrange(keys.articles, count=scan)
        from ingest.core import deadletters

        published = [
            {"stream_id": eid.decode(), "event": f[b"event"].decode()}
            for eid, f in entries
            if f.get(b"id", b"").decode() == aid
        ]
        dead = [
            {"id": d.id, "at": d.at, "reason": d.reason, "detail": d.detail,
             "fetch": d.summary()["fetch"]}
            for d in deadletters.letters(r, keys, article_id=aid, scan=scan, newest_first=True)
        ]  # fmt: skip
    for key in ("at", "listed_at"):  # unix seconds in Redis; one date form on screen
        if key in trace:
            trace[key] = timefmt.from_unix(trace[key])
    for letter in dead:
        letter["at"] = timefmt.from_unix(letter["at"]) or letter["at"]
    verdict = explain_mod.verdict(explain_mod.Facts(
        published=published, trace=trace, seen=seen, dead=dead,
        marker=marker.decode() if marker else None))  # fmt: skip
    click.echo(json.dumps({
        "url": url, "canonical_url": canonicalize(url), "article_id": aid,
        "seen": seen, "marker": marker.decode() if marker else None,
        "published": published, "deadletters": dead, "trace": trace, "verdict": verdict,
        "template_lines": (trace.get("extraction") or {}).get("template_lines", []),
    }, indent=2))  # fmt: skip
