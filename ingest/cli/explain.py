"""`explain URL`: what happened to one article, from its trace, marks and letters."""

from __future__ import annotations

import json
from typing import Any

import click

from ingest.cli.app import App, cli, pass_app
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
            trace[key] = _iso_time(trace[key])
    for letter in dead:
        letter["at"] = _iso_time(letter["at"]) or letter["at"]
    traced = trace.get("outcome")
    if published:
        verdict = f"published ({published[0]['event']}, stream id {published[0]['stream_id']})"
    elif traced in ("duplicate", "near_duplicate"):
        verdict = f"not published: {traced} ({trace.get('detail', '')})"
    elif traced and traced not in ("published", "updated", "near_duplicate_published"):
        verdict = f"not published: {traced} {trace.get('detail', '')}".strip()
    elif seen:
        verdict = "seen and published earlier (the stream entry may have been trimmed)"
    elif dead:
        verdict = f"not published: {dead[0]['reason']} {dead[0]['detail']}".strip()
    elif marker:
        verdict = f"not published: {marker.decode()}"
    else:
        verdict = "unknown: never listed by a polled feed, or forgotten after the dedup window"
    click.echo(json.dumps({
        "url": url, "canonical_url": canonicalize(url), "article_id": aid,
        "seen": seen, "marker": marker.decode() if marker else None,
        "published": published, "deadletters": dead, "trace": trace, "verdict": verdict,
        "template_lines": (trace.get("extraction") or {}).get("template_lines", []),
    }, indent=2))  # fmt: skip


def _iso_time(value: Any) -> str | None:
    """Unix seconds as the service's one date form: ISO 8601 UTC to the second, with Z."""
    from datetime import UTC, datetime

    try:
        when = datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")
