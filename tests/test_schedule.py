from ingest.core import outcomes
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


# ---------------------------------------------------------------- after_poll: the whole decision

NOW = 1_700_000_000.0
AB = schedule.Bounds(min_interval=120, max_interval=21600, max_backoff=86400, default_interval=900)


def failed(exc: outcomes.FetchError) -> schedule.PollResult:
    return schedule.PollResult(exc.outcome, {"last_error": str(exc)}, error=exc)


def after(
    result: schedule.PollResult, egress_down: bool = False, **state: str
) -> schedule.NextPoll:
    return schedule.after_poll(state, result, egress_down, AB, NOW)


def test_after_a_first_good_poll_the_feed_is_healthy_at_the_default_interval() -> None:
    nxt = after(schedule.PollResult("ok", {"etag": '"v1"'}, new=3), errors="2", items_seen="5")
    assert (nxt.outcome, nxt.errors, nxt.delay, nxt.until) == ("ok", 0, 900, 0.0)
    assert nxt.changes["health"] == "healthy" and nxt.changes["errors"] == 0
    assert nxt.changes["items_seen"] == 8 and nxt.changes["etag"] == '"v1"'
    assert nxt.changes["last_polled"] == nxt.changes["last_new_at"] == f"{NOW:.0f}"
    assert "rate" not in nxt.changes  # a first poll's items are a backlog, not a rate
    assert nxt.defer_host_for is None


def test_only_changed_fields_are_saved() -> None:
    state = {"errors": "0", "health": "healthy", "interval": "900", "last_error": "",
             "deferred_items": "0", "last_new_at": "1", "items_seen": "4", "last_outcome": "ok"}  # fmt: skip
    nxt = schedule.after_poll(state, schedule.PollResult("not_modified"), False, AB, NOW)
    assert set(nxt.changes) == {"last_polled", "last_outcome"}


def test_the_items_dates_set_the_cadence_of_a_feed_not_watched_yet() -> None:
    nxt = after(schedule.PollResult("ok", new=2, dated_rate=500.0), last_polled=f"{NOW - 600:.0f}")
    assert nxt.delay == 120 and "rate" in nxt.changes  # busy by its dates: min_interval


def test_deferred_items_bring_the_feed_back_when_their_host_is_free() -> None:
    result = schedule.PollResult("deferred", new=1, retry_in=30.0,
                                 deferred={"host_deferred": 2, "robots_unavailable": 1})  # fmt: skip
    nxt = after(result)
    assert (nxt.delay, nxt.until, nxt.errors) == (30.0, NOW + 30, 0)
    assert nxt.changes["deferred_items"] == 3
    assert nxt.changes["deferred_until"] == f"{NOW + 30:.0f}"
    assert after(schedule.PollResult("deferred", retry_in=0.2, deferred={"x": 1})).delay == 1.0


def test_errors_back_off_exponentially_and_the_health_follows() -> None:
    exc = outcomes.HTTPStatusError(status=500)
    first = after(failed(exc), interval="600")
    assert (first.errors, first.delay, first.changes["health"]) == (1, 600, "degraded")
    third = after(failed(exc), interval="600", errors="2")
    assert (third.errors, third.delay, third.changes["health"]) == (3, 2400, "failing")
    assert after(failed(exc), interval="600", errors="40").delay == 86400  # capped
    assert third.until == 0.0 and third.outcome == "http_error"


def test_a_blameless_failure_backs_off_without_growing_the_streak() -> None:
    nxt = after(failed(outcomes.BotWall(status=403)), interval="600", errors="2")
    assert (nxt.errors, nxt.delay) == (2, 1200)
    assert after(failed(outcomes.BotWall(status=403)), interval="600").delay == 600


def test_network_failures_while_egress_is_down_are_ours_not_the_feeds() -> None:
    nxt = after(failed(outcomes.Timeout("read timed out")), egress_down=True, errors="1")
    assert (nxt.outcome, nxt.errors, nxt.delay) == ("egress_down", 1, 120)
    assert nxt.changes["last_error"] == "egress down: read timed out"
    assert nxt.changes["last_outcome"] == "egress_down"
    charged = after(failed(outcomes.Timeout("read timed out")), errors="1")
    assert (charged.outcome, charged.errors) == ("timeout", 2)
    # an HTTP error proves the network works: charged, whatever the monitor says
    http = after(failed(outcomes.HTTPStatusError(status=500)), egress_down=True)
    assert (http.outcome, http.errors) == ("http_error", 1)


def test_a_busy_host_defers_the_feed_to_its_free_turn_and_a_429_pushes_the_host_out() -> None:
    busy = after(failed(outcomes.HostDeferred(retry_after=40)), errors="1")
    assert (busy.delay, busy.until, busy.errors, busy.defer_host_for) == (40, NOW + 40, 1, None)
    limited = after(failed(outcomes.RateLimited(retry_after=100)), interval="60")
    assert limited.defer_host_for == 100
    assert limited.until == NOW + 100 * schedule.RATE_LIMITED_LAG
    assert limited.delay == 100 * schedule.RATE_LIMITED_LAG and limited.errors == 0
    assert after(failed(outcomes.RateLimited(retry_after=10)), interval="600").delay == 600


def test_410_is_gone_at_once_and_404_after_three() -> None:
    said = after(failed(outcomes.Gone(status=410)))
    assert (said.changes["health"], said.delay) == ("gone", 86400)
    assert after(failed(outcomes.Gone(status=404)), errors="1").changes["health"] == "degraded"
    assert after(failed(outcomes.Gone(status=404)), errors="2").changes["health"] == "gone"
    dns = outcomes.DNSError("NXDOMAIN", permanent=True)
    assert after(failed(dns), errors="2").changes["health"] == "gone"
    assert after(failed(outcomes.DNSError("SERVFAIL")), errors="2").changes["health"] == "failing"
