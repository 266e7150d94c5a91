"""`news-ingest`: the command-line contract (see README and docs/architecture.md)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import redis

from ingest import bodies, logs
from ingest import settings as settings_mod
from ingest.connection import (
    FAILOVER_WAIT_S,
    POLL_FAILOVER_WAIT_S,
    StateDirError,
    connect,
    redact,
    redis_url,
)
from ingest.feedlist import FeedListError, FeedSpec, dump_opml, load
from ingest.keys import Keys
from ingest.registry import Registry
from ingest.settings import Settings


class App:
    def __init__(self, settings: Settings, feeds: str | None, redis_override: str = "") -> None:
        self.settings = settings
        self.feeds = feeds
        self.redis_override = redis_override

    @contextlib.contextmanager
    def redis(self, failover_wait: float = FAILOVER_WAIT_S) -> Iterator[tuple[str, redis.Redis]]:
        with self._url() as url:
            try:
                r = connect(url, failover_wait)
            except ValueError as exc:  # a malformed redis+sentinel:// URL
                raise click.ClickException(f"bad Redis URL: {exc}") from exc
            try:
                r.ping()
            except redis.ConnectionError as exc:
                raise click.ClickException(
                    f"Redis at {redact(url)} is not reachable: {exc}"
                ) from exc
            try:
                yield url, r
            finally:
                r.close()

    @contextlib.contextmanager
    def _url(self) -> Iterator[str]:
        try:
            with redis_url(self.settings) as url:
                yield url
        except StateDirError as exc:
            raise click.ClickException(str(exc)) from exc

    def feed_specs(self) -> list[FeedSpec] | None:
        """The --feeds file's feeds, else those of config/feeds.yaml in the working directory,
        else None. Never the packaged example unasked: its feeds are real public sites."""
        local = settings_mod.LOCAL_CONFIG / "feeds.yaml"
        path = Path(self.feeds) if self.feeds else (local if local.is_file() else None)
        if path is None:
            return None
        try:
            return load(path)
        except FeedListError as exc:
            raise click.ClickException(str(exc)) from exc


def load_settings(config: str | None) -> Settings:
    """The settings, resolved once (the App hands them to every role), or a one-line error."""
    if config and not Path(config).is_file():
        raise click.BadParameter(f"no such file: {config}", param_hint="--config")
    try:
        return settings_mod.load(config)
    except ValueError as exc:
        raise click.ClickException(f"invalid settings: {exc}") from exc


_pass_app = click.make_pass_decorator(App)


def pass_app(f: Any) -> Any:
    """Pass the App, and accept the common options after the subcommand too
    (`news-ingest run --once --feeds f.opml` as well as `news-ingest --feeds f.opml run --once`)."""
    inner = _pass_app(f)

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        app = click.get_current_context().find_object(App)
        redis_url, feeds, config = (kwargs.pop(k) for k in ("redis_url_", "feeds_", "config_"))
        if app is not None:
            if config:
                app.settings = load_settings(config)
            # a URL given on the command line (either side) beats the file's redis.url
            if redis_url or (config and app.redis_override):
                app.settings = app.settings.with_overrides(
                    redis={"url": redis_url or app.redis_override}
                )
            if feeds:
                app.feeds = feeds
        return inner(*args, **kwargs)

    for name, flag, help_ in (
        ("config_", "--config", "Settings TOML."),
        ("feeds_", "--feeds", "A YAML feed list or an OPML file."),
        ("redis_url_", "--redis-url", "Redis/Valkey URL."),
    ):
        wrapper = click.option(flag, name, default=None, help=help_)(wrapper)
    return wrapper


@click.group()
@click.version_option(package_name="news-ingest", prog_name="news-ingest")
@click.option("--redis-url", envvar="NEWS_INGEST_REDIS_URL", help="Redis/Valkey URL "
              "(else REDIS_URL, else the embedded server under $NEWS_INGEST_HOME).")  # fmt: skip
@click.option("--feeds", "feeds", envvar="NEWS_INGEST_FEEDS", type=click.Path(),
              help="A YAML feed list or an OPML file.")  # fmt: skip
@click.option("--config", type=click.Path(), help="Settings TOML (default: $NEWS_INGEST_CONFIG, else config/settings.toml, over the packaged defaults).")
@click.option("--log-level", default="info", show_default=True)
@click.option("--log-json/--log-console", default=None, help="Default: JSON unless on a TTY.")
@click.pass_context
def cli(
    ctx: click.Context, redis_url: str | None, feeds: str | None, config: str | None,
    log_level: str, log_json: bool | None,
) -> None:  # fmt: skip
    """Feeds in, clean deduplicated classified articles out, in a Redis Stream."""
    logs.configure(log_level, log_json)
    settings = load_settings(config)
    if redis_url:
        settings = settings.with_overrides(redis={"url": redis_url})
    ctx.obj = App(settings, feeds, redis_url or "")


# ------------------------------------------------------------------ run / poll / worker


def _register(app: App, r: redis.Redis) -> list[str] | None:
    specs = app.feed_specs()
    if specs is None:
        return None
    registry = Registry(r, Keys(app.settings.redis.prefix))
    for spec in specs:
        registry.add(spec)
    return [s.id for s in specs]


@cli.command()
@click.option("--once", is_flag=True, help="Poll every feed once, process everything, exit 0.")
@click.option("--workers", type=int, help="Worker processes (default: worker.count).")
@click.option(
    "--metrics-port",
    type=int,
    default=9108,
    show_default=True,
    help="Serve /metrics, /healthz, /readyz here while running (0: off).",
)
@click.option("--metrics-host", default="0.0.0.0", show_default=True)
@pass_app
def run(app: App, once: bool, workers: int | None, metrics_port: int,
        metrics_host: str) -> None:  # fmt: skip
    """Everything in one process tree: embedded Valkey if needed, the poller, N workers, and
    (unless --once) the metrics endpoint."""
    from ingest import runner

    if workers is not None:
        app.settings = app.settings.with_overrides(worker={"count": workers})
    with app.redis(POLL_FAILOVER_WAIT_S) as (url, r):  # r is the poller's
        ids = _register(app, r)
        if once:
            stats = runner.run_once(app.settings, r, url, ids if app.feeds else None)
            from ingest import counters

            arts = counters.read(r, Keys(app.settings.redis.prefix), "articles")
            click.echo(json.dumps({"feeds": stats.feeds, "new_items": stats.items_new,
                                   "enqueued": stats.enqueued, "polls": stats.by_outcome,
                                   "articles": arts}))  # fmt: skip
        else:
            servers = []

            def serve_metrics() -> None:
                import threading

                from ingest.metrics import serve

                # its own connection: the endpoint answers from another thread
                httpd = serve(app.settings, connect(url), metrics_port, metrics_host)
                threading.Thread(target=httpd.serve_forever, daemon=True).start()
                servers.append(httpd)

            try:
                runner.run_forever(app.settings, r, url, serve_metrics if metrics_port else None)
            finally:
                for httpd in servers:
                    httpd.shutdown()


@cli.command()
@click.option("--once", is_flag=True, help="Poll every feed once and exit.")
@pass_app
def poll(app: App, once: bool) -> None:
    """The poller alone (Procfile/compose role)."""
    import asyncio
    import signal

    from ingest.poller import Poller

    with app.redis(POLL_FAILOVER_WAIT_S) as (_url, r):
        ids = _register(app, r)

        async def main() -> None:
            poller = Poller(app.settings, r)
            try:
                if once:
                    await poller.run_once(ids if app.feeds else None)
                    return
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                await poller.run_forever(stop)
            finally:
                await poller.aclose()

        asyncio.run(main())


@cli.command()
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@pass_app
def worker(app: App, burst: bool) -> None:
    """One RQ SimpleWorker on the articles queue (Procfile/compose role)."""
    from ingest import runner

    with app.redis() as (_url, r):
        runner.run_worker(app.settings, r, burst=burst)


# ------------------------------------------------------------------ feeds


@cli.group()
def feeds() -> None:
    """The feed registry."""


@feeds.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@pass_app
def feeds_import(app: App, path: str) -> None:
    """Register every feed of a YAML list or an OPML file."""
    try:
        specs = load(path)
    except FeedListError as exc:
        raise click.ClickException(str(exc)) from exc
    with app.redis() as (_url, r):
        registry = Registry(r, Keys(app.settings.redis.prefix))
        added = sum(registry.add(spec) for spec in specs)
    click.echo(f"{len(specs)} feeds read, {added} new")


@feeds.command("add")
@click.argument("url")
@click.option("--title", default="")
@click.option("--tag", "tags", multiple=True)
@click.option("--language", default="")
@click.option("--topic", default="", help="A medtop code used as a prior.")
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Fetch and parse the URL first; follow a page's feed autodiscovery link.",
)
@pass_app
def feeds_add(app: App, url: str, title: str, tags: tuple[str, ...], language: str, topic: str,
              check: bool) -> None:  # fmt: skip
    """Register one feed (after checking that it is one)."""
    from ingest.feedlist import check_url
    from ingest.outcomes import FetchError
    from ingest.probe import probe

    try:
        url = check_url(url, "url")
    except FeedListError as exc:
        raise click.ClickException(str(exc)) from exc
    if check:
        try:
            found = asyncio.run(probe(url, app.settings.fetch, app.settings.poll.max_items))
        except FetchError as exc:
            raise click.ClickException(f"{url} is not a usable feed: {exc.outcome}: {exc}") from exc
        if found.discovered_from:
            click.echo(f"{url} is a page; it announces the feed {found.url}")
        url = found.url
        title = title or found.title
        language = language or found.language
        click.echo(f"{found.format} feed, {found.items} items, title {found.title!r}")
    with app.redis() as (_url, r):
        new = Registry(r, Keys(app.settings.redis.prefix)).add(
            FeedSpec(url, title, list(tags), language, topic)
        )
    click.echo(("added " if new else "updated ") + url)


@feeds.command("remove")
@click.argument("url_or_id")
@pass_app
def feeds_remove(app: App, url_or_id: str) -> None:
    """Unregister a feed by URL or id."""
    with app.redis() as (_url, r):
        if not Registry(r, Keys(app.settings.redis.prefix)).remove(url_or_id):
            raise click.ClickException(f"no such feed: {url_or_id}")
    click.echo(f"removed {url_or_id}")


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def feeds_list(app: App, as_json: bool) -> None:
    """Feeds with their state: next poll, interval, health, last error, items seen."""
    with app.redis() as (_url, r):
        rows = Registry(r, Keys(app.settings.redis.prefix)).all()
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    now = time.time()
    for row in rows:
        nxt = f"{(row['next_poll'] or now) - now:+.0f}s" if row.get("next_poll") else "-"
        click.echo(f"{row.get('health') or 'new':9} next {nxt:>8}  every {row.get('interval') or '-':>6}s"
                   f"  seen {row.get('items_seen') or 0:>5}  {row['url']}"
                   + (f"  [{row['last_error']}]" if row.get("last_error") else ""))  # fmt: skip


@feeds.command("export")
@pass_app
def feeds_export(app: App) -> None:
    """The registry as OPML on stdout."""
    with app.redis() as (_url, r):
        registry = Registry(r, Keys(app.settings.redis.prefix))
        specs = [s for fid in registry.ids() if (s := registry.spec(fid)) is not None]
    click.echo(dump_opml(specs))


# ------------------------------------------------------------------ status / tail


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--watch", type=float, help="Refresh every S seconds until Ctrl+C.")
@pass_app
def status(app: App, as_json: bool, watch: float | None) -> None:
    """Queues, workers, stream and consumer lag, throughput, feed health. Exits 1 when the
    service is not ready (no live worker, poller heartbeat stale), for container health checks."""
    from ingest.status import gather

    with app.redis() as (_url, r):
        while True:
            data = gather(app.settings, r)
            if as_json:
                click.echo(json.dumps(data, indent=None))
            else:
                if watch:
                    click.clear()
                _print_status(data)
            if not watch:
                break
            try:
                time.sleep(watch)
            except KeyboardInterrupt:
                break
    if not data["ready"]:
        sys.exit(1)


def _print_status(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="news-ingest", show_header=False)
    table.add_row("ready", "yes" if data["ready"] else "NO: " + "; ".join(data["problems"]))
    for name, q in data["queues"].items():
        table.add_row(
            f"queue {name}", f"depth {q['depth']}  started {q['started']}  failed {q['failed']}"
        )
    table.add_row("workers", str(data["workers"]))
    s = data["stream"]
    lag = ", ".join(f"{g['name']}: {g['lag']}" for g in s["groups"]) or "no consumer groups"
    table.add_row("stream", f"{s['key']}  length {s['length']}  lag {lag}")
    t = data["throughput"]
    table.add_row("published", f"{t['last_minute']}/min  {t['last_hour']}/h  {t['last_day']}/day")
    table.add_row("articles", json.dumps(data["articles"]))
    table.add_row("polls", json.dumps(data["polls"]))
    table.add_row("dead letters", str(data["deadletters"]))
    f = data["feeds"]
    table.add_row("feeds", f"{f['total']}  {json.dumps(f['by_health'])}  stale {len(f['stale'])}")
    for w in f["worst"]:
        table.add_row("  failing", f"{w['url']} ({w['errors']}x) {w['last_error']}")
    for url in f["stale"][:10]:
        table.add_row("  stale", url)
    for site in data["sites"][:10]:
        mark = "  DRIFT" if site["drifting"] else ""
        today = "-" if site["today"] is None else f"{site['today']:.0%}"
        base = "-" if site["baseline"] is None else f"{site['baseline']:.0%}"
        table.add_row("  site", f"{site['site']}: extracted {today} of {site['today_n']} today, "
                                f"baseline {base} of {site['baseline_n']}{mark}")  # fmt: skip
    console.print(table)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One article record per line.")
@click.option("--from-start", is_flag=True, help="Start at the oldest entry, not new ones only.")
@click.option("--count", type=int, help="Stop after N articles.")
@click.option("--group", help="Read through this consumer group (created if missing).")
@click.option("--consumer", default="tail", show_default=True)
@click.option("--block", type=float, default=0, help="With --count: give up after S seconds.")
@pass_app
def tail(app: App, as_json: bool, from_start: bool, count: int | None, group: str | None,
         consumer: str, block: float) -> None:  # fmt: skip
    """Read the article stream."""
    keys = Keys(app.settings.redis.prefix)
    seen = 0
    deadline = time.monotonic() + block if block else None
    with app.redis() as (_url, r):
        stream = keys.articles
        last = "0-0" if from_start else "$"
        if group:
            with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: it exists already
                r.xgroup_create(stream, group, id="0" if from_start else "$", mkstream=True)
        while count is None or seen < count:
            if deadline is not None and time.monotonic() > deadline:
                break
            want = min(100, count - seen) if count else 100
            resp: Any
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
                resp = r.xread({stream: last}, count=want, block=1000)
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
    data = fields.get(b"data", b"{}").decode()
    if as_json:
        click.echo(data)
        return
    rec = json.loads(data)
    topics = ",".join(t["label"].split(",")[0] for t in rec.get("topics", []))
    event = fields.get(b"event", b"").decode()
    click.echo(f"{rec.get('published_at') or '-':20} {rec.get('language', '')} [{topics}] "
               f"{event} {rec.get('title', '')} <{rec.get('url')}>")  # fmt: skip


@cli.command()
@click.option("--port", type=int, default=9108, show_default=True)
@click.option("--host", default="0.0.0.0", show_default=True)
@pass_app
def metrics(app: App, port: int, host: str) -> None:
    """Serve Prometheus /metrics, /healthz and /readyz."""
    from ingest.metrics import serve

    with app.redis() as (_url, r):
        httpd = serve(app.settings, r, port, host)
        click.echo(f"serving http://{host}:{httpd.server_address[1]}/metrics", err=True)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            httpd.server_close()


@cli.command()
@click.argument("url")
@click.option("--scan", type=int, default=10000, show_default=True,
              help="Stream and dead-letter entries to search, newest first.")  # fmt: skip
@pass_app
def explain(app: App, url: str, scan: int) -> None:
    """What the system knows about one article URL: seen, published (stream id), or why not."""
    from ingest.seen import SeenStore, UrlMark, url_field
    from ingest.urls import article_id, canonicalize

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
        from ingest.observe import read_trace

        trace = read_trace(r, keys, article_id(url)) or read_trace(r, keys, aid)
        entries: Any = r.xrevrange(keys.articles, count=scan)
        letters: Any = r.xrevrange(keys.deadletter, count=scan)
        published = [
            {"stream_id": eid.decode(), "event": f[b"event"].decode()}
            for eid, f in entries
            if f.get(b"id", b"").decode() == aid
        ]
        dead = [
            {"at": f[b"at"].decode(), "reason": f[b"reason"].decode(),
             "detail": f.get(b"detail", b"").decode()}
            for _eid, f in letters
            if f.get(b"article_id", b"").decode() == aid
        ]  # fmt: skip
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
    }, indent=2))  # fmt: skip


# ------------------------------------------------------------------ dead letters / replay


def _since(value: str | None) -> float:
    """Seconds ago ('3600', '2h', '30m', '1d') or an ISO time, to a unix time; 0 for none."""
    if not value:
        return 0.0
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1] in units and value[:-1].isdigit():
        return time.time() - int(value[:-1]) * units[value[-1]]
    if value.isdigit():
        return time.time() - int(value)
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise click.BadParameter(f"not a duration or ISO time: {value}") from exc


@cli.group()
def deadletter() -> None:
    """Articles that failed, with their reason and raw page."""


@deadletter.command("list")
@click.option("--since", help="Only newer: 30m, 2h, 1d, seconds, or an ISO time.")
@click.option("--site", default="", help="Only this host.")
@click.option("--reason", default="", help="Only this outcome (timeout, paywall, ...).")
@click.option("--count", type=int, help="At most N entries.")
@pass_app
def deadletter_list(app: App, since: str | None, site: str, reason: str,
                    count: int | None) -> None:  # fmt: skip
    """One JSON line per dead letter, oldest first."""
    from workers.replay import letters

    with app.redis() as (_url, r):
        keys = Keys(app.settings.redis.prefix)
        for letter in letters(r, keys, since=_since(since), site=site, reason=reason, count=count):
            click.echo(json.dumps(letter.summary()))


@deadletter.command("show")
@click.argument("entry_id")
@click.option("--body", is_flag=True, help="Print the stored raw page instead.")
@pass_app
def deadletter_show(app: App, entry_id: str, body: bool) -> None:
    """One dead letter in full (by its stream id)."""
    from workers.replay import DeadLetter

    with app.redis() as (_url, r):
        found: Any = r.xrange(Keys(app.settings.redis.prefix).deadletter, entry_id, entry_id)
    if not found:
        raise click.ClickException(f"no dead letter {entry_id}")
    letter = DeadLetter.from_entry(*found[0])
    if body:
        if not letter.body_z:
            raise click.ClickException(f"dead letter {entry_id} has no stored body")
        sys.stdout.buffer.write(bodies.unpack(letter.body_z))
        return
    click.echo(json.dumps(letter.summary(), indent=2))


@cli.command()
@click.option("--since", help="Only letters newer than this: 30m, 2h, 1d, or an ISO time.")
@click.option("--site", default="", help="Only this host.")
@click.option("--reason", default="", help="Only this outcome.")
@click.option("--dry-run", is_flag=True, help="List what would be replayed.")
@pass_app
def replay(app: App, since: str | None, site: str, reason: str, dry_run: bool) -> None:
    """Re-run failed articles from their stored page through the current extractor and
    settings; publishes what now passes, once (a second replay finds them published)."""
    from workers.pipeline import Context
    from workers.replay import letters
    from workers.replay import replay as run_replay

    with app.redis() as (_url, r):
        keys = Keys(app.settings.redis.prefix)
        chosen = list(letters(r, keys, since=_since(since), site=site, reason=reason))
        if dry_run:
            for letter in chosen:
                click.echo(json.dumps(letter.summary()))
            return
        results = run_replay(Context.build(app.settings, r), chosen)
    tally: dict[str, int] = {}
    for letter, outcome in results:
        tally[outcome] = tally.get(outcome, 0) + 1
        click.echo(json.dumps({"id": letter.id, "url": letter.url, "was": letter.reason,
                               "now": outcome}))  # fmt: skip
    click.echo(json.dumps({"replayed": len(results), "outcomes": tally}), err=True)


# ------------------------------------------------------------------ offline tools


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--url", help="The page's URL (with a single file).")
@pass_app
def extract(app: App, files: tuple[str, ...], url: str | None) -> None:
    """HTML (or .html.gz) files to JSON lines {path, url, title, text, ...}."""
    from workers.decode import decode
    from workers.extract import from_page

    if url and len(files) != 1:
        raise click.BadParameter("--url needs exactly one file", param_hint="--url")
    failures = 0
    for path in files:
        try:
            raw = Path(path).read_bytes()
            if path.endswith(".gz"):
                raw = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            click.echo(f"error: {path}: {exc}", err=True)
            failures += 1
            continue
        html, charset = decode(raw)
        ex = from_page(html, url or "")
        click.echo(json.dumps({
            "path": path, "url": url or ex.canonical_url, "title": ex.title, "text": ex.text,
            "authors": ex.authors, "published_at": ex.date, "site_name": ex.site_name,
            "image": ex.image, "description": ex.description, "charset": charset,
            "extraction": {"method": ex.method, **ex.quality},
        }, ensure_ascii=False))  # fmt: skip
    if failures:
        sys.exit(1)


@cli.group(invoke_without_command=True)
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="JSON lines {id, title, text}; default (or -) stdin.")  # fmt: skip
@click.option("--config", "config_", help="Settings TOML.")
@click.pass_context
def classify(ctx: click.Context, input_path: str | None, config_: str | None) -> None:
    """JSON lines {id, title, text} to JSON lines {id, language, topics} (with the configured
    model when classify.model is set, else the lexicon); `classify train` fits a model.
    Optional fields, as a worker has them: language (the feed's declared one), tags (the
    item's feed tags), topic (the feed's configured IPTC code, a prior)."""
    if ctx.invoked_subcommand is not None:
        return
    from workers import classify as clf

    app = ctx.find_object(App)
    assert app is not None
    if config_:
        app.settings = load_settings(config_)
    cfg = app.settings.classify
    lexicon = clf.cached_lexicon(cfg.taxonomy)
    model = None
    if cfg.model:
        from workers.topic_model import TopicModel, assign

        model = TopicModel.load(cfg.model)
    stream = (open(input_path, encoding="utf-8")  # noqa: SIM115
              if input_path and input_path != "-" else sys.stdin)  # fmt: skip
    bad = 0
    with stream:
        for n, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                click.echo(f"error: line {n}: {exc}", err=True)
                bad += 1
                continue
            title, text = str(doc.get("title") or ""), str(doc.get("text") or "")
            # as the worker sees an item: its feed tags, and its feed's configured topic (prior)
            raw_tags = doc.get("tags") or []
            tags = [raw_tags] if isinstance(raw_tags, str) else (
                [str(t) for t in raw_tags] if isinstance(raw_tags, list) else [])  # fmt: skip
            prior = str(doc.get("topic") or "")
            lang = clf.language(f"{title}\n{text}", declared=str(doc.get("language") or ""),
                                allowed=tuple(cfg.languages))  # fmt: skip
            if model is not None:
                found = assign(model, lexicon, title, text, tags=tags, prior=prior,
                               max_topics=cfg.max_topics, min_score=cfg.min_score,
                               trust=cfg.model_trust, lang=lang)  # fmt: skip
            else:
                found = clf.topics(lexicon, title, text, tags=tags, prior=prior,
                                   max_topics=cfg.max_topics, min_score=cfg.min_score,
                                   lang=lang)  # fmt: skip
            click.echo(json.dumps({
                "id": doc.get("id"),
                "language": lang,
                "topics": found,
            }, ensure_ascii=False))  # fmt: skip
    if bad:
        click.echo(f"{bad} line(s) skipped", err=True)


@classify.command("train")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", default="var/topic-model.npz", show_default=True, help="Model file.")
@click.option(
    "--self-label",
    is_flag=True,
    help="PATH is unlabelled: label it with the lexicon (confident cases) and train.",
)
@click.option(
    "--min-score",
    type=float,
    default=0.35,
    show_default=True,
    help="With --self-label: the lexicon's least score to trust.",
)
@click.pass_context
def classify_train(ctx: click.Context, path: str, out: str, self_label: bool,
                   min_score: float) -> None:  # fmt: skip
    """Fit a topic model on JSON lines {title, text, label} (label: an IPTC code, e.g.
    medtop:04000000), or on an unlabelled archive with --self-label. Set classify.model to
    the file written (NEWS_INGEST_CLASSIFY_MODEL) to make the workers use it."""
    try:
        from workers import topic_model
    except ImportError as exc:  # depends on the install
        raise click.ClickException("training needs scikit-learn: pip install '.[train]'") from exc
    from workers import classify as clf

    app = ctx.find_object(App)
    assert app is not None
    docs, bad = [], 0
    for n, line in enumerate(Path(path).read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            title, text = str(doc.get("title") or ""), str(doc.get("text") or "")
            label = str(doc.get("label") or "")
            if not text or (not self_label and not label):
                raise ValueError("needs text" + ("" if self_label else " and label"))
        except (ValueError, AttributeError) as exc:
            click.echo(f"error: line {n}: {exc}", err=True)
            bad += 1
            continue
        docs.append((title, text, label))
    if self_label:
        lexicon = clf.cached_lexicon(app.settings.classify.taxonomy)
        docs = topic_model.self_label(lexicon, [(t, x) for t, x, _l in docs], min_score)
    try:
        model = topic_model.train(docs, self_labelled=self_label)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    counts: dict[str, int] = {}
    for _t, _x, label in docs:
        counts[label] = counts.get(label, 0) + 1
    click.echo(json.dumps({"model": out, "documents": len(docs), "skipped": bad,
                           "labels": counts}))  # fmt: skip


def main() -> None:
    cli(prog_name="news-ingest")


if __name__ == "__main__":
    main()
