"""`news-ingest`: the command-line contract (see README and docs/architecture.md).

One module per command group, as rq/cli does; importing them registers their commands on the
root group (`ingest.cli.app.cli`). `ingest.cli:main` is the entry point.
"""

from __future__ import annotations

import sys

import click
import redis

from ingest.cli import deadletters, explain, feeds, offline, roles, status, stream
from ingest.cli.app import cli
from ingest.core.embedded import EmbeddedError

COMMAND_MODULES = (roles, feeds, status, stream, explain, deadletters, offline)


def main() -> None:
    try:
        cli(prog_name="news-ingest")
    except EmbeddedError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except redis.RedisError as exc:  # the server went away under a command (its owner stopped)
        click.echo(f"Error: Redis: {exc}", err=True)
        sys.exit(1)
