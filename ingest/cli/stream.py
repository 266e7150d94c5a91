"""`tail`: the article stream read directly or through a consumer group."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import click
import redis

from ingest.cli.app import App, cli, pass_app
from ingest.core.keys import Keys


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One article record per line.")
@click.option("--from-start", is_flag=True, help="Start at the oldest entry, not new ones only.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after N articles.")
@click.option("--group", help="Read through this consumer group (created if missing).")
@click.option("--consumer", default="tail", show_default=True)
@click.option("--block", type=click.FloatRange(min=0), default=0,
              help="With --count: give up after S seconds.")  # fmt: skip
@pass_app
def tail(app: App, as_json: bool, from_start: bool, count: int | None, group: str | None,
         consumer: str, block: float) -> None:  # fmt: skip
    """Read the article stream (through a Redis outage: it waits, and resumes where it was)."""
    from ingest.core.escape import terminal

    keys = Keys(app.settings.redis.prefix)
    seen = 0
    deadline = time.monotonic() + block if block else None
    with app.redis() as (_url, r):
        stream = keys.articles
        last = "0-0" if from_start else "$"
        if group:
            with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: it exists already
                r.xgroup_create(stream, group, id="0" if from_start else "$", mkstream=True)
        down = False
        while count is None or seen < count:
            if deadline is not None and time.monotonic() > deadline:
                break
            want = min(100, count - seen) if count else 100
            resp: Any
            try:
                if group:
                    try:
                        resp = r.xreadgroup(group, consumer, {stream: ">"}, count=want, block=1000)
                    except redis.ResponseError as exc:
                        if "NOGROUP" not in str(exc):
                            raise
                        # the group is gone (a failover lost it, or someone deleted it): again,
                        # from the start; entries may repeat, never go unread (README, Sentinel)
                        with contextlib.suppress(redis.ResponseError):
                            r.xgroup_create(stream, group, id="0", mkstream=True)
                        continue
                elif from_start:
                    resp = r.xread({stream: last}, count=want, block=None)
                    if not resp and count is None:
                        break  # --from-start without --count: print what is there and stop
                else:
                    if last == "$":  # from the newest entry now, so an outage loses none
                        newest: Any = r.xrevrange(stream, count=1)
                        last = newest[0][0].decode() if newest else "0-0"
                    resp = r.xread({stream: last}, count=want, block=1000)
            except (redis.ConnectionError, redis.TimeoutError) as exc:  # an outage: say so
                # once, and resume where we were
                if not down:
                    click.echo(terminal(f"redis unreachable ({exc}); waiting"), err=True)
                down = True
                time.sleep(1.0)
                continue
            if down:
                click.echo("redis is back", err=True)
                down = False
            for _stream, entries in resp or []:
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    _print_entry(fields, as_json)
                    if group:
                        r.xack(stream, group, entry_id)
                    seen += 1
            if not resp and from_start:
                time.sleep(0.2)  # XREAD from an id does not block: poll gently


def _print_entry(fields: dict[bytes, bytes], as_json: bool) -> None:
    """One stream entry: titles and URLs come from feeds, so escapes in them are shown, never
    sent raw to the terminal (`ingest.core.escape`)."""
    from ingest.core.escape import json_line, terminal

    data = fields.get(b"data", b"{}").decode("utf-8", "replace")
    if as_json:
        click.echo(json_line(data))
        return
    try:
        rec = json.loads(data)
        topics = ",".join(str(t["label"]).split(",")[0] for t in rec.get("topics", []))
    except (ValueError, TypeError, KeyError, AttributeError):
        click.echo(terminal(f"(unreadable entry) {data[:200]}"))
        return
    event = fields.get(b"event", b"").decode("utf-8", "replace")
    click.echo(
        terminal(
            f"{rec.get('published_at') or '-':20} {rec.get('language', '')} "
            f"[{topics}] {event} {rec.get('title', '')} <{rec.get('url')}>"
        )
    )
