"""`run --once`'s pure decisions (ingest/once.py): which deferred feeds to poll again, and when."""

from __future__ import annotations

from ingest.once import Left, next_round, summary


def left(outcome: str, until: float, host: str = "h", **items: int) -> Left:
    return Left(f"http://{host}/{outcome}", host, outcome, until, dict(items))


def test_due_feeds_are_polled_and_the_rest_waited_for() -> None:
    todo = {"a": left("deferred", 10, host_deferred=3), "b": left("host_deferred", 20, host="x")}
    assert next_round(todo, now=5, end=100) == ([], 10)
    assert next_round(todo, now=10, end=100) == (["a"], None)
    assert next_round(todo, now=25, end=100) == (["a", "b"], None)


def test_nothing_that_can_come_due_before_the_deadline_is_waited_for() -> None:
    todo = {"a": left("deferred", 600, robots_unavailable=2)}
    assert next_round(todo, now=0, end=180) == ([], None)
    assert next_round({}, now=0, end=180) == ([], None)


def test_no_round_begins_after_the_deadline() -> None:
    # a round that ran past the deadline: what came due meanwhile is left, not polled again
    todo = {"a": left("deferred", 170, host_deferred=1)}
    assert next_round(todo, now=175, end=180) == (["a"], None)
    assert next_round(todo, now=181, end=180) == ([], None)


def test_a_rate_limited_feed_goes_after_the_other_work_of_its_host() -> None:
    # Polled together, its next 429 would block the host again before the healthy feed's turn.
    todo = {"limited": left("rate_limited", 10), "healthy": left("deferred", 8, host_deferred=3)}
    assert next_round(todo, now=10, end=100) == (["healthy"], None)
    del todo["healthy"]  # done
    assert next_round(todo, now=10, end=100) == (["limited"], None)
    # ... unless that work cannot be done before the deadline anyway
    todo["slow"] = left("deferred", 500, robots_unavailable=1)
    assert next_round(todo, now=10, end=100) == (["limited"], None)
    # other hosts do not hold it back
    todo = {"limited": left("rate_limited", 10), "other": left("deferred", 50, host="x")}
    assert next_round(todo, now=10, end=100) == (["limited"], None)


def test_a_rate_limited_feed_held_back_wakes_with_its_hosts_work() -> None:
    todo = {"limited": left("rate_limited", 5), "healthy": left("host_deferred", 30)}
    assert next_round(todo, now=6, end=100) == ([], 30)


def test_summary_counts_feeds_by_outcome_and_items_by_reason() -> None:
    todo = {
        "a": left("deferred", 1, host_deferred=2, robots_unavailable=1),
        "b": left("deferred", 1, host_deferred=1),
        "c": left("rate_limited", 1),
    }
    assert summary(todo) == {
        "feeds": {"deferred": 2, "rate_limited": 1},
        "items": {"host_deferred": 3, "robots_unavailable": 1},
    }
