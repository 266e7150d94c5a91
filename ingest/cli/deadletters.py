"""`deadletter list/show` and `replay`: the articles that failed, and re-running them."""

from __future__ import annotations

import json
import re
import sys
import time

import click
import redis

from ingest.cli.app import App, cli, pass_app
from ingest.core import bodies, timefmt
from ingest.core.keys import Keys


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
    try:
        return timefmt.to_ts(value)
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
    from ingest.core.deadletters import letters

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
    from ingest.core import deadletters
    from ingest.core.escape import terminal

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
    from ingest.core.deadletters import letters
    from workers.context import Context
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
