"""`explain`'s verdict rules, pure (the command itself is tried for real in test_end_to_end.py,
test_replay.py and test_injection.py)."""

from __future__ import annotations

from ingest.core import timefmt
from ingest.explain import Facts, verdict

ENTRY = {"stream_id": "1700000000000-0", "event": "new"}
LETTER = {"reason": "timeout", "detail": "read 30 s"}


def test_a_stream_entry_beats_everything_else() -> None:
    facts = Facts(published=[ENTRY], trace={"outcome": "timeout"}, dead=[LETTER], marker="x")
    assert verdict(facts) == "published (new, stream id 1700000000000-0)"


def test_a_duplicate_names_what_it_copies() -> None:
    facts = Facts(trace={"outcome": "near_duplicate", "detail": "of abc123"})
    assert verdict(facts) == "not published: near_duplicate (of abc123)"


def test_a_traced_failure_beats_marks_and_letters() -> None:
    facts = Facts(trace={"outcome": "not_article", "detail": "link share 0.7"},
                  seen={"article_id": "a"}, dead=[LETTER])  # fmt: skip
    assert verdict(facts) == "not published: not_article link share 0.7"


def test_a_published_trace_with_a_trimmed_stream_is_seen_earlier() -> None:
    facts = Facts(trace={"outcome": "published"}, seen={"article_id": "a"})
    assert verdict(facts).startswith("seen and published earlier")


def test_a_dead_letter_then_a_marker_then_unknown() -> None:
    assert verdict(Facts(dead=[LETTER])) == "not published: timeout read 30 s"
    assert verdict(Facts(marker="robots_disallowed")) == "not published: robots_disallowed"
    assert verdict(Facts()).startswith("unknown:")


def test_stored_unix_times_are_shown_in_the_one_format() -> None:
    assert timefmt.from_unix("1700000000") == "2023-11-14T22:13:20Z"
    assert timefmt.from_unix(1700000000.7) == "2023-11-14T22:13:20Z"
    assert timefmt.from_unix("not a time") is None
    assert timefmt.from_unix(1e300) is None
    assert timefmt.iso_utc("2026-12-02T19:00:00+01:00") == "2026-12-02T18:00:00Z"
    assert timefmt.iso_utc("2026-12-02T18:00:00") == "2026-12-02T18:00:00Z"  # naive is UTC
    assert timefmt.iso_utc("yesterday") is None
