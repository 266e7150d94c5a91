"""The root group: global options, settings resolved once, and the `App` every command gets."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import redis

from ingest.core import logs
from ingest.core import settings as settings_mod
from ingest.core.connection import (
    FAILOVER_WAIT_S,
    StateDirError,
    connect,
    redis_url,
    restarting_owned,
)
from ingest.core.settings import Settings
from ingest.core.urls import redact_url
from ingest.feeds.feedlist import FeedListError, FeedSpec, load


class App:
    def __init__(self, settings: Settings, feeds: str | None, redis_override: str = "") -> None:
        self.settings = settings
        self.feeds = feeds
        self.redis_override = redis_override

    @contextlib.contextmanager
    def redis(self, role: str = "", join: bool = False,
              failover_wait: float = FAILOVER_WAIT_S) -> Iterator[tuple[str, redis.Redis]]:  # fmt: skip
        """`role`: this command owns the embedded server (run, server); `join`: it only uses
        the one another process runs (poll, worker). See ingest/core/connection.py; its
        EmbeddedError is reported by `main`."""
        with self._url(role, join) as url:
            try:
                r = connect(url, failover_wait)
                restarting_owned(r.ping)  # a server killed as it came up is started again
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
