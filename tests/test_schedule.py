from ingest.feeds import schedule
from ingest.net.fetch import MAX_RETRY_AFTER_S, parse_retry_after

B = schedule.Bounds(min_interval=120, max_interval=21600, max_backoff=86400)


def test_busy_feeds_poll_often_quiet_feeds_rarely_within_bounds() -> None:
    busy = schedule.interval_for(500, B, 900)  # 500 items a day
    quiet = schedule.interval_for(1, B, 900)
    assert busy == 120  # clamped to min
    assert quiet == 21600  # 43200/day gap -> clamped to max
    assert 120 < schedule.interval_for(48, B, 900) < 21600


def test_server_hints_are_lower_bounds() -> None:
    assert schedule.interval_for(500, B, 900, hint_s=3600) == 3600
    assert schedule.interval_for(1, B, 900, hint_s=60) == 21600


def test_rate_is_smoothed() -> None:
    first = schedule.update_rate(None, 10, 86400)
    assert first == 10
    assert 10 < (schedule.update_rate(first, 100, 86400) or 0) < 100


def test_one_quiet_window_slows_polling_a_step_not_to_the_maximum() -> None:
    prior = schedule.default_rate(900)
    assert schedule.interval_for(prior, B, 900) == 900
    rate = schedule.update_rate(None, 0, 300, prior)
    assert rate is not None and 900 < schedule.interval_for(rate, B, 900) < 1500
    for _ in range(30):  # a feed that stays silent drifts to the maximum, step by step
        rate = schedule.update_rate(rate, 0, 3600, prior)
    assert schedule.interval_for(rate, B, 900) == 21600


def test_first_poll_is_a_backlog_not_a_rate() -> None:
    assert schedule.update_rate(None, 10, 0) is None  # -> the default interval, not 10/day
    assert schedule.interval_for(None, B, 900) == 900


def test_cadence_from_the_items_own_dates() -> None:
    now = 1_000_000.0
    hourly = [now - h * 3600 for h in range(24)]
    assert 23 < (schedule.rate_from_dates(hourly, now) or 0) < 26
    assert schedule.rate_from_dates([now - 60], now) is None  # one item says nothing
    assert schedule.rate_from_dates([now - 30 * 86400, now - 40 * 86400], now) is None  # old


def test_backoff_grows_and_is_capped() -> None:
    delays = [schedule.backoff(n, 900, B) for n in range(1, 12)]
    assert delays[0] == 900 and delays[1] == 1800
    assert max(delays) == 86400 and delays == sorted(delays)


def test_health_states() -> None:
    assert schedule.health(0) == "healthy"
    assert schedule.health(1) == "degraded"
    assert schedule.health(5) == "failing"
    assert schedule.health(5, gone=True) == "gone"


def test_cache_hints_and_retry_after() -> None:
    assert schedule.cache_hint({"cache-control": "public, max-age=600"}) == 600
    assert schedule.cache_hint({}) is None
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 100) == 100
    assert parse_retry_after("soon") is None
    # hostile or broken headers: capped at a day, never an error or a block for millennia
    assert parse_retry_after("99999999999999999999") == MAX_RETRY_AFTER_S
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT") == MAX_RETRY_AFTER_S
    assert parse_retry_after("\u00b2") is None  # a digit to str.isdigit, not to float()
    assert parse_retry_after("Fri, 31 Dec 99999 23:59:59 GMT") in (None, MAX_RETRY_AFTER_S)
