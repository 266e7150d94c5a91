"""`feeds import/add/list/remove/export`: the registry as a user edits it."""

from __future__ import annotations

import asyncio
import json
import time

import click

from ingest.cli.app import App, cli, pass_app
from ingest.core.keys import Keys
from ingest.feeds.feedlist import FeedListError, FeedSpec, dump_opml, load
from ingest.feeds.registry import Registry


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
    from ingest.core.escape import terminal
    from ingest.core.outcomes import FetchError
    from ingest.feeds.feedlist import check_url
    from ingest.feeds.probe import probe

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
    from ingest.core.escape import terminal
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
