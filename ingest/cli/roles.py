"""The long-running roles: `run` (poller + supervised workers), `poll`, `worker`, `server`."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import click
import redis

from ingest.cli.app import App, cli, pass_app
from ingest.core import settings as settings_mod
from ingest.core.connection import (
    POLL_FAILOVER_WAIT_S,
    connect,
    restarting_owned,
)
from ingest.core.keys import Keys
from ingest.feeds.registry import Registry


def _register(app: App, r: redis.Redis) -> list[str] | None:
    """Register the --feeds file's feeds (their ids), or seed an empty registry once from
    config/feeds.yaml (None): after that the registry is the truth, and `feeds remove` holds
    across restarts."""
    keys = Keys(app.settings.redis.prefix)
    registry = Registry(r, keys)
    if not app.feeds:
        seeded = keys.feeds_seeded
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

    if not once:
        runner.hold_signals()  # a stop while the tree is built is acted on once it is up
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
            # idempotent, so made again if the server dies under it before run_forever's
            # loop would restart it
            ids = restarting_owned(lambda: _register(app, r))
            if once:
                from ingest import once as once_mod
                from ingest.core import counters

                keys = Keys(app.settings.redis.prefix)
                # the counters are all-time: this run's articles are what it added to them
                before = counters.read(r, keys, "articles")
                stats = runner.run_once(app.settings, r, url, ids if app.feeds else None)
                arts = once_mod.added(before, counters.read(r, keys, "articles"))
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
        from ingest.core.embedded import revive_owned

        # a server that dies (killed, crashed) is started again: this role exists to serve
        while signal.sigtimedwait({signal.SIGINT, signal.SIGTERM}, 1.0) is None:
            revive_owned()
