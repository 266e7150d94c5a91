"""Replay: dead letters re-run from their stored page through the current extractor and settings.

Only what a fix can change is re-run: a letter whose page arrived (fetch `ok`, a 2xx status) and
is stored. A failed fetch (`gone`, `http_error`, `bot_wall`, `timeout` ...: `FETCH_FAILURES`)
stored at most the server's error page, which no extractor or setting turns into the article;
those letters are skipped and counted, and `replay --reason gone` is refused. A re-run sees the
original fetch facts (status, content type, final URL), and one that does not publish writes
nothing (no new letter, counter or trace: `workers.outcome.finish`), so replaying twice changes
nothing the first replay did not; what the first one published comes out `duplicate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from ingest.core.deadletters import FETCH_FAILURES, DeadLetter
from workers.context import Context
from workers.pipeline import process

log = structlog.get_logger("workers.replay")


def skip_reason(letter: DeadLetter) -> str | None:
    """Why replay leaves this letter alone, None when it is re-run: the failed fetch's outcome,
    or `no_body`."""
    if letter.reason in FETCH_FAILURES:
        return letter.reason
    if not letter.fetch.ok:
        return letter.fetch.outcome if letter.fetch.outcome != "ok" else "http_error"
    if not letter.body_z:
        return "no_body"
    return None


def refused_reason(reason: str) -> bool:
    """`replay --reason R` for a reason no fix can change."""
    return reason in FETCH_FAILURES


@dataclass
class Plan:
    run: list[DeadLetter] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # why -> letters


def plan(chosen: list[DeadLetter]) -> Plan:
    """Which letters to re-run, and how many are skipped for which reason."""
    out = Plan()
    for letter in chosen:
        why = skip_reason(letter)
        if why is None:
            out.run.append(letter)
        else:
            out.skipped[why] = out.skipped.get(why, 0) + 1
    return out


def replay(ctx: Context, chosen: list[DeadLetter]) -> list[tuple[DeadLetter, str]]:
    """Re-run each letter (as chosen by `plan`); the outcome of each (`crashed` for a bug, logged
    with its traceback, so that one letter cannot stop the rest)."""
    results = []
    for letter in chosen:
        try:
            outcome = process(ctx, letter.payload())
        except Exception:
            log.exception("replay_crashed", letter=letter.id, article_id=letter.article_id,
                          feed_url=letter.feed_url, stage="replay")  # fmt: skip
            outcome = "crashed"
        results.append((letter, outcome))
    return results
