"""`news-ingest`: the command-line contract (see README and docs/architecture.md)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import re
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
    redis_url,
)
from ingest.embedded import EmbeddedError
from ingest.feedlist import FeedListError, FeedSpec, dump_opml, load
from ingest.keys import Keys
from ingest.registry import Registry
from ingest.settings import Settings
from ingest.urls import redact_url


class App:
    def __init__(self, settings: Settings, feeds: str | None, redis_override: str = "") -> None:
        self.settings = settings
        self.feeds = feeds
        self.redis_override = redis_override

    @contextlib.contextmanager
    def redis(self, role: str = "", join: bool = False,
              failover_wait: float = FAILOVER_WAIT_S) -> Iterator[tuple[str, redis.Redis]]:  # fmt: skip
        """`role`: this command owns the embedded server (run, server); `join`: it only uses
        the one another process runs (poll, worker). See ingest/connection.py; its
        EmbeddedError is reported by `main`."""
        with self._url(role, join) as url:
            try:
                r = connect(url, failover_wait)
                r.ping()
            except redis.ConnectionError as exc:  # never echo the URL's password
                raise click.ClickException(
                    f"Redis at {redact_url(url)} is not reachable: {exc}"
                ) from exc
            except (ValueError, redis.RedisError) as exc:  # `notaurl`, `redis://host/99`
                raise click.BadParameter(
                    f"{redact_url(url)}: {exc}", param_hint="--redis-url"
                ) from exc
            try:
                yield url, r
            finally:
                r.close()

    @contextlib.contextmanager
    def _url(self, role: str = "", join: bool = False) -> Iterator[str]:
        try:
            with redis_url(self.settings, role, join) as url:
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
@click.option("--log-level", default="info", show_default=True, type=click.Choice(
    ["debug", "info", "warning", "error", "critical"], case_sensitive=False))  # fmt: skip
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
    """Register the --feeds file's feeds (their ids), or seed an empty registry once from
    config/feeds.yaml (None): after that the registry is the truth, and `feeds remove` holds
    across restarts."""
    keys = Keys(app.settings.redis.prefix)
    registry = Registry(r, keys)
    if not app.feeds:
        seeded = keys.k("feeds", "seeded")
        if r.exists(seeded):
            return None
        specs = app.feed_specs() if not registry.ids() else []
        for spec in specs or []:
            registry.add(spec)
        # marked only once the registry holds feeds: a first start with no config/feeds.yaml
        # must not stop a later one (with the file in place) from seeding
        if specs or registry.ids():
            r.set(seeded, f"{time.time():.0f}")
        if specs:
            click.echo(f"registry seeded with {len(specs)} feeds from {settings_mod.default_file('feeds.yaml')}", err=True)
        return None
    specs = app.feed_specs() or []
    for spec in specs:
        registry.add(spec)
    return [s.id for s in specs]


@cli.command()
@click.option("--once", is_flag=True, help="Poll every feed once, wait up to run.once_deadline "
              "for deferred work, process the queue; exit 0, or 3 when work is left.")  # fmt: skip
@click.option("--workers", type=int, help="Worker processes (default: worker.count).")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve /metrics, /healthz, /readyz here while running (default metrics.port, 9108, "
    "or NEWS_INGEST_METRICS_PORT; 0: off).",
)
@click.option("--metrics-host", help="Default metrics.host, 0.0.0.0.")
@pass_app
def run(app: App, once: bool, workers: int | None, metrics_port: int | None,
        metrics_host: str | None) -> None:  # fmt: skip
    """Everything in one process tree: embedded Valkey if needed, the poller, N workers, and
    (unless --once) the metrics endpoint."""
    from ingest import runner

    app.settings = app.settings.with_overrides(
        worker={"count": workers}, metrics={"port": metrics_port, "host": metrics_host}
    )
    httpd = None
    if not once and app.settings.metrics.port:
        from ingest.metrics import PortInUse, bind

        try:  # before anything starts: a taken port is one error and nothing left running
            httpd = bind(app.settings.metrics.port, app.settings.metrics.host)
        except PortInUse as exc:
            raise click.ClickException(str(exc)) from exc
    try:
        with app.redis(role="run", failover_wait=POLL_FAILOVER_WAIT_S) as (url, r):  # the poller's
            ids = _register(app, r)
            if once:
                stats = runner.run_once(app.settings, r, url, ids if app.feeds else None)
                from ingest import counters
                from ingest import once as once_mod

                arts = counters.read(r, Keys(app.settings.redis.prefix), "articles")
                left = once_mod.summary(stats.left)
                click.echo(json.dumps({"feeds": stats.feeds, "new_items": stats.items_new,
                                       "enqueued": stats.enqueued, "polls": stats.by_outcome,
                                       "articles": arts, "deferred": stats.deferred,
                                       "work_left": {**left, "jobs": stats.jobs_left}}))  # fmt: skip
                if stats.left or stats.jobs_left:
                    sys.exit(once_mod.WORK_LEFT_EXIT)
                return

            def serve_metrics() -> None:
                import threading

                from ingest.metrics import attach

                if httpd is not None:  # its own connection: it answers from another thread
                    attach(httpd, app.settings, connect(url))
                    threading.Thread(target=httpd.serve_forever, daemon=True).start()

            status = runner.run_forever(app.settings, r, url, serve_metrics,
                                        inherited=[httpd.fileno()] if httpd else [])  # fmt: skip
    finally:
        if httpd is not None:
            if httpd.registry is not None:
                httpd.shutdown()
            httpd.server_close()
    sys.exit(status)


@cli.command()
@click.option("--once", is_flag=True, help="Poll every feed once, wait up to run.once_deadline "
              "for deferred feeds and items, exit (3 when some are left).")  # fmt: skip
@pass_app
def poll(app: App, once: bool) -> None:
    """The poller alone (Procfile/compose role). Without a Redis URL it uses the embedded server
    that `news-ingest server` (or `run`) runs in the data dir."""
    import asyncio
    import os
    import signal

    import structlog

    from ingest.poller import Poller

    log = structlog.get_logger("ingest.cli")
    with app.redis(join=True, failover_wait=POLL_FAILOVER_WAIT_S) as (_url, r):
        ids = _register(app, r)
        left: dict[str, Any] = {}  # --once: feeds still deferred at the deadline

        async def main() -> None:
            poller = Poller(app.settings, r)
            try:
                if once:
                    stats = await poller.run_once(
                        ids if app.feeds else None, deadline=app.settings.run.once_deadline
                    )
                    left.update(stats.left)
                    return
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()

                def on_signal(sig: signal.Signals) -> None:
                    if stop.is_set():
                        log.warning("stop_forced", signal=sig.name)
                        os._exit(1)
                    log.info("stopping", signal=sig.name, grace_s=app.settings.run.shutdown_grace,
                             waiting_for={"feeds_in_progress": len(poller.in_progress)})  # fmt: skip
                    stop.set()

                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, on_signal, sig)
                await poller.run_forever(stop)
                log.info("stopped", left=poller.left)
            finally:
                await poller.aclose()

        asyncio.run(main())
        if left:  # what the deadline left: said once, and in the exit status
            import structlog

            from ingest import once as once_mod

            structlog.get_logger("ingest.poller").warning("work_left", **once_mod.summary(left))
            sys.exit(once_mod.WORK_LEFT_EXIT)


@cli.command()
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@pass_app
def worker(app: App, burst: bool) -> None:
    """One RQ SimpleWorker on the articles queue (Procfile/compose role). Without a Redis URL it
    uses the embedded server that `news-ingest server` (or `run`) runs in the data dir."""
    from ingest import runner

    with app.redis(join=True) as (_url, r):
        runner.run_worker(app.settings, r, burst=burst)


@cli.command()
@pass_app
def server(app: App) -> None:
    """Only the embedded Valkey, until SIGTERM/SIGINT (Procfile role): for `poll` and `worker`
    without a Redis URL. Refuses when another live process owns this data dir's server."""
    import signal

    if app.settings.redis_url():
        raise click.ClickException(
            "a Redis URL is configured (--redis-url, NEWS_INGEST_REDIS_URL or REDIS_URL): "
            "there is no embedded server to run"
        )
    with app.redis(role="server") as (url, _r):
        # blocked only now: the server process must not inherit the mask
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        click.echo(f"serving {url} from {app.settings.redis.data_dir}", err=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


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
    from ingest.escape import terminal
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
            raise click.ClickException(
                terminal(f"{url} is not a usable feed: {exc.outcome}: {exc}")
            ) from exc
        if found.discovered_from:
            click.echo(terminal(f"{url} is a page; it announces the feed {found.url}"))
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
    """Feeds with their state: next poll, interval, health, last error, items seen. With
    --json, one object per feed with typed values (ints, floats, lists; `next_in` seconds, 0
    when due, and `due`)."""
    from ingest.escape import terminal
    from ingest.status import feed_view, next_label

    with app.redis() as (_url, r):
        rows = Registry(r, Keys(app.settings.redis.prefix)).all()
    now = time.time()
    for view in (feed_view(row, now) for row in rows):
        if as_json:
            click.echo(json.dumps(view))
            continue
        every = f"{view['interval']}s" if view["interval"] is not None else "-"
        click.echo(
            terminal(
                f"{view['health']:9} next {next_label(view):>8}  every {every:>7}"
                f"  seen {view['items_seen'] or 0:>5}  {view['url']}"
                + (f"  [{view['last_error']}]" if view.get("last_error") else "")
            )
        )


@feeds.command("export")
@pass_app
def feeds_export(app: App) -> None:
    """The registry as OPML on stdout (characters XML cannot hold are dropped)."""
    with app.redis() as (_url, r):
        registry = Registry(r, Keys(app.settings.redis.prefix))
        specs = [s for fid in registry.ids() if (s := registry.spec(fid)) is not None]
    click.echo(dump_opml(specs))


# ------------------------------------------------------------------ status / tail


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--watch", type=click.FloatRange(0, min_open=True),
              help="Refresh every S seconds until Ctrl+C.")  # fmt: skip
@pass_app
def status(app: App, as_json: bool, watch: float | None) -> None:
    """Queues, workers, stream and consumer lag, throughput, feed health. Exits 1 when the
    service is not ready (no live worker, poller heartbeat stale), for container health checks.
    During a Redis outage it says so (not ready), and --watch goes on until Redis is back."""
    from ingest.escape import terminal
    from ingest.status import gather, unreachable

    with app.redis() as (_url, r):
        while True:
            try:
                data = gather(app.settings, r)
            except redis.RedisError as exc:
                data = unreachable(exc)
            if as_json:
                click.echo(json.dumps(data, indent=None))
            else:
                if watch:
                    click.clear()
                if data["redis"]["ok"]:
                    _print_status(data)
                else:
                    click.echo(terminal("NOT READY: " + "; ".join(data["problems"])))
            if not watch:
                break
            try:
                time.sleep(watch)
            except KeyboardInterrupt:
                break
    if not data["ready"]:
        sys.exit(1)


def _print_status(data: dict[str, Any]) -> None:
    """The status screen. Every cell goes through `markup`: feed URLs, errors and site names come
    from outside, and Rich would read `[/]` in them as markup (MarkupError) and pass escapes."""
    from rich.console import Console
    from rich.table import Table

    from ingest.escape import markup
    from ingest.status import count_line

    console = Console()
    table = Table(title="news-ingest", show_header=False)

    def row(label: str, value: str) -> None:
        table.add_row(markup(label), markup(value))

    row("ready", "yes" if data["ready"] else "NO: " + "; ".join(data["problems"]))
    for name, q in data["queues"].items():
        row(f"queue {name}", f"depth {q['depth']}  started {q['started']}  failed {q['failed']}")
    row("workers", f"{data['workers']} live (fresh heartbeat)")
    s = data["stream"]
    lag = ", ".join(f"{g['name']}: {g['lag']}" for g in s["groups"]) or "no consumer groups"
    row("stream", f"{s['key']}  length {s['length']}  lag {lag}")
    t = data["throughput"]
    row("published", f"{t['last_minute']} in the last {t['window_s']} s  {t['last_hour']} in "
                     f"the last hour  {t['last_day']} in the last day")  # fmt: skip
    row("articles (all)", count_line(data["articles"]) or "none yet")
    row("polls (all)", count_line(data["polls"]) or "none yet")
    d = data["deferred"]
    row("deferred items", f"waiting {d['waiting']}  so far {count_line(d['by_reason']) or 'none'}")
    row("dead letters", str(data["deadletters"]))
    f = data["feeds"]
    row("feeds", f"{f['total']}: {count_line(f['by_health']) or 'none'}  stale {len(f['stale'])}")
    for w in f["worst"]:
        row(f"  {w['health']}", f"{w['url']} ({w['errors']}x) {w['last_error']}")
    for url in f["stale"][:10]:
        row("  stale", url)
    for site in data["sites"][:10]:
        mark = "  DRIFT" if site["drifting"] else ""
        today = "-" if site["today"] is None else f"{site['today']:.0%}"
        base = "-" if site["baseline"] is None else f"{site['baseline']:.0%}"
        row("  site", f"{site['site']}: extracted {today} of {site['today_n']} today, "
                      f"baseline {base} of {site['baseline_n']}{mark}")  # fmt: skip
    for lang, info in data.get("topic_models", {}).get("languages", {}).items():
        m = info["model"]
        model = ("no model yet" if m is None else
                 f"model {m['version']}, {m['age_seconds'] / 3600:.1f} h old, "
                 f"{m['documents']} texts, agreement {m['agreement']:.0%}")  # fmt: skip
        last = info["last_refit"] or {}
        refit = f"; last refit {last['outcome']}" if last else ""
        row(f"topics {lang}", f"{model}; archive {info['archive']}{refit}")
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
    """Read the article stream (through a Redis outage: it waits, and resumes where it was)."""
    from ingest.escape import terminal

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
    sent raw to the terminal (`ingest.escape`)."""
    from ingest.escape import json_line, terminal

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


@cli.command()
@click.option("--port", type=int, help="Default metrics.port (9108, NEWS_INGEST_METRICS_PORT).")
@click.option("--host", help="Default metrics.host (0.0.0.0).")
@pass_app
def metrics(app: App, port: int | None, host: str | None) -> None:
    """Serve Prometheus /metrics, /healthz and /readyz."""
    from ingest.metrics import PortInUse, serve

    host = host or app.settings.metrics.host
    with app.redis() as (_url, r):
        try:
            httpd = serve(app.settings, r, port or app.settings.metrics.port, host)
        except PortInUse as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"serving http://{host}:{httpd.server_address[1]}/metrics", err=True)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            httpd.server_close()


@cli.command()
@click.argument("url")
@click.option("--scan", type=click.IntRange(min=1), default=10000, show_default=True,
              help="Stream and dead-letter entries to search, newest first.")  # fmt: skip
@pass_app
def explain(app: App, url: str, scan: int) -> None:
    """What the system knows about one article URL: seen, published (stream id), or why not."""
    from ingest.feedparse import page_url
    from ingest.seen import SeenStore, UrlMark, url_field
    from ingest.urls import article_id, canonicalize

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
        from ingest.observe import read_trace

        trace = read_trace(r, keys, article_id(url)) or read_trace(r, keys, aid)
        aid = str(trace.get("article_id") or aid)  # published under another id (canonical, title)
        entries: Any = r.xrevrange(keys.articles, count=scan)
        from ingest import deadletters

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


# ------------------------------------------------------------------ dead letters / replay


def _since(value: str | None) -> float:
    """Seconds ago ('3600', '2h', '30m', '1d') or an ISO time, to a unix time; 0 for none."""
    if not value:
        return 0.0
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    when: float | None = None
    if value[-1] in units and value[:-1].isdigit():
        when = time.time() - int(value[:-1]) * units[value[-1]]
    elif value.isdigit():
        when = time.time() - int(value)
    if when is not None:
        if when < 0:  # stream ids start at 1970
            raise click.BadParameter(f"{value} reaches back before 1970", param_hint="--since")
        return when
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError) as exc:
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
    from ingest.deadletters import letters

    with app.redis() as (_url, r):
        keys = Keys(app.settings.redis.prefix)
        for letter in letters(r, keys, since=_since(since), site=site, reason=reason, count=count):
            click.echo(json.dumps(letter.summary()))


@deadletter.command("show")
@click.argument("entry_id")
@click.option("--body", is_flag=True, help="Print the stored raw page instead.")
@pass_app
def deadletter_show(app: App, entry_id: str, body: bool) -> None:
    """One dead letter in full (by its stream id). --body writes the stored page as it came
    when stdout is a file or a pipe; on a terminal, its control characters are shown instead."""
    from ingest import deadletters
    from ingest.escape import terminal

    if not re.fullmatch(r"\d+(-\d+)?", entry_id):
        raise click.BadParameter(f"not a stream id (like 1700000000000-0): {entry_id!r}",
                                 param_hint="ENTRY_ID")  # fmt: skip
    with app.redis() as (_url, r):
        try:
            letter = deadletters.get(r, Keys(app.settings.redis.prefix), entry_id)
        except redis.ResponseError as exc:  # not a stream id at all
            raise click.BadParameter(f"not a dead letter id: {entry_id!r} ({exc})",
                                     param_hint="ENTRY_ID") from exc  # fmt: skip
    if letter is None:
        raise click.ClickException(f"no dead letter {terminal(entry_id)}")
    if body:
        if not letter.body_z:
            raise click.ClickException(f"dead letter {letter.id} has no stored body")
        try:
            raw = bodies.unpack(letter.body_z)
        except bodies.Unreadable as exc:
            raise click.ClickException(f"dead letter {letter.id}: {exc}") from exc
        if sys.stdout.isatty():
            click.echo(terminal(raw.decode("utf-8", "replace"), lines=True))
        else:
            sys.stdout.buffer.write(raw)
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
    settings; publishes what now passes, once (a second replay finds them published). Letters
    of failed fetches (gone, http_error, bot_wall, timeout ...) hold no page a fix could change:
    they are skipped and counted, and --reason naming one is refused."""
    from ingest.deadletters import letters
    from workers.pipeline import Context
    from workers.replay import plan, refused_reason
    from workers.replay import replay as run_replay

    if reason and refused_reason(reason):
        raise click.BadParameter(
            f"{reason!r} letters are failed fetches: the stored body, if any, is the server's "
            "answer, not the page, and replay re-runs stored pages only",
            param_hint="--reason",
        )
    with app.redis() as (_url, r):
        keys = Keys(app.settings.redis.prefix)
        chosen = plan(list(letters(r, keys, since=_since(since), site=site, reason=reason)))
        if dry_run:
            for letter in chosen.run:
                click.echo(json.dumps(letter.summary()))
            click.echo(json.dumps({"would_replay": len(chosen.run), "skipped": chosen.skipped}),
                       err=True)  # fmt: skip
            return
        results = run_replay(Context.build(app.settings, r), chosen.run)
    tally: dict[str, int] = {}
    for letter, outcome in results:
        tally[outcome] = tally.get(outcome, 0) + 1
        click.echo(json.dumps({"id": letter.id, "url": letter.url, "was": letter.reason,
                               "now": outcome}))  # fmt: skip
    click.echo(json.dumps({"replayed": len(results), "outcomes": tally,
                           "skipped": chosen.skipped}), err=True)  # fmt: skip


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
            "authors": ex.authors, "published_at": ex.date,  # ISO 8601 UTC, seconds, Z
            "site_name": ex.site_name,
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
        from workers.topic_model import ModelFormatError, TopicModel, assign

        try:
            model = TopicModel.load(cfg.model)
        except (OSError, ModelFormatError) as exc:
            raise click.ClickException(f"classify.model {cfg.model}: {exc}") from exc
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
            if cfg.local_labels:
                clf.localise(lexicon, found, lang)
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


@classify.command("refit")
@click.option("--language", "languages", multiple=True,
              help="Only this language (ISO 639-1); repeatable. Default: every archived one.")
@click.option("--force", is_flag=True, help="Refit even a model younger than classify.learn_every.")
@click.pass_context
def classify_refit(ctx: click.Context, languages: tuple[str, ...], force: bool) -> None:
    """Refit the models learnt from the stream now (what the scheduled job does; README,
    "Learning topics"), and install those that pass the agreement gate."""
    from workers import learn

    app = ctx.find_object(App)
    assert app is not None
    with app.redis() as (_url, r):
        results = learn.refit(app.settings, r, langs=languages, force=force)
    for o in results:
        click.echo(json.dumps({"language": o.lang, "outcome": o.outcome, "detail": o.detail,
                               "documents": o.documents, "agreement": o.agreement,
                               "previous": o.previous, "version": o.version}))  # fmt: skip


def main() -> None:
    try:
        cli(prog_name="news-ingest")
    except EmbeddedError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except redis.RedisError as exc:  # the server went away under a command (its owner stopped)
        click.echo(f"Error: Redis: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
