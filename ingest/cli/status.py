"""`status` (one screen or JSON; exit 1 when not ready) and the `metrics` endpoint."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
import redis

from ingest.cli.app import App, cli, pass_app


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--watch", type=click.FloatRange(0, min_open=True),
              help="Refresh every S seconds until Ctrl+C.")  # fmt: skip
@pass_app
def status(app: App, as_json: bool, watch: float | None) -> None:
    """Queues, workers, stream and consumer lag, throughput, feed health. Exits 1 when the
    service is not ready (no live worker, poller heartbeat stale), for container health checks.
    During a Redis outage it says so (not ready), and --watch goes on until Redis is back."""
    from ingest.core.escape import terminal
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

    from ingest.core.escape import markup
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
