"""Tests for the breaker's sliding windows and rate triggers, on a FakeClock."""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import pytest

from syncq.breaker import CircuitBreaker, CircuitState
from syncq.breaker._windows import (
    CountWindow,
    TimeWindow,
    WindowTotals,
    window_totals,
)
from syncq.testing import FakeClock

CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN


class DependencyDownError(Exception):
    """A fake error that signals a failing dependency."""


def succeed() -> str:
    return "ok"


def fail() -> None:
    raise DependencyDownError("connection refused")


def make_breaker(clock: FakeClock, **kwargs: Any) -> CircuitBreaker:
    options: dict[str, Any] = {
        "failure_threshold": None,
        "reset_timeout": 10.0,
        "failure_rate_threshold": 0.5,
        "window_size": 4,
        "name": "api",
        "clock": clock,
    }
    options.update(kwargs)
    return CircuitBreaker(**options)


def run(breaker: CircuitBreaker, pattern: str) -> None:
    """Call through `breaker` once per letter: "s" succeeds, "f" fails."""
    for letter in pattern:
        if letter == "s":
            breaker.call(succeed)
        else:
            with pytest.raises(DependencyDownError):
                breaker.call(fail)


class TestCountWindow:
    def test_count_window_counts_outcomes(self) -> None:
        window = CountWindow(3)

        window.record(0.0, failed=True, slow=False)
        window.record(0.0, failed=False, slow=True)

        assert window_totals(window, 0.0) == WindowTotals(2, 1, 1)

    def test_count_window_drops_oldest_when_full(self) -> None:
        window = CountWindow(2)
        window.record(0.0, failed=True, slow=True)
        window.record(0.0, failed=False, slow=False)

        window.record(0.0, failed=False, slow=False)

        assert window_totals(window, 0.0) == WindowTotals(2, 0, 0)

    def test_count_window_clear_empties(self) -> None:
        window = CountWindow(2)
        window.record(0.0, failed=True, slow=True)

        window.clear()

        assert window_totals(window, 0.0) == WindowTotals(0, 0, 0)


class TestTimeWindow:
    def test_time_window_uses_one_second_buckets(self) -> None:
        window = TimeWindow(30.0)

        assert window.bucket_seconds == 1.0

    def test_time_window_bucket_count_bounded(self) -> None:
        window = TimeWindow(3600.0)

        assert window.bucket_seconds == 36.0

    def test_time_window_keeps_recent_outcomes(self) -> None:
        window = TimeWindow(10.0)
        window.record(0.5, failed=True, slow=False)

        totals = window_totals(window, 9.9)

        assert totals == WindowTotals(1, 1, 0)

    def test_time_window_drops_expired_bucket(self) -> None:
        window = TimeWindow(10.0)
        window.record(0.5, failed=True, slow=False)
        window.record(5.0, failed=False, slow=True)

        totals = window_totals(window, 10.0)

        assert totals == WindowTotals(1, 0, 1)

    def test_time_window_empty_after_long_gap(self) -> None:
        window = TimeWindow(10.0)
        window.record(1.0, failed=True, slow=True)

        totals = window_totals(window, 500.0)

        assert totals == WindowTotals(0, 0, 0)

    def test_time_window_late_outcome_joins_newest(self) -> None:
        window = TimeWindow(10.0)
        window.record(5.0, failed=False, slow=False)

        window.record(2.0, failed=True, slow=False)

        assert window_totals(window, 14.9) == WindowTotals(2, 1, 0)


class TestRateValidation:
    @pytest.mark.parametrize(
        ("kwargs", "error", "fragment"),
        [
            ({"failure_rate_threshold": 0}, ValueError, "failure_rate_threshold"),
            ({"failure_rate_threshold": 0.0}, ValueError, "failure_rate_threshold"),
            ({"failure_rate_threshold": -0.5}, ValueError, "failure_rate_threshold"),
            ({"failure_rate_threshold": 1.01}, ValueError, "failure_rate_threshold"),
            ({"failure_rate_threshold": math.nan}, ValueError, "got nan"),
            ({"failure_rate_threshold": math.inf}, ValueError, "got inf"),
            ({"failure_rate_threshold": True}, TypeError, "failure_rate_threshold"),
            ({"failure_rate_threshold": "0.5"}, TypeError, "failure_rate_threshold"),
            ({"window_type": "calls"}, ValueError, "window_type"),
            ({"window_type": None}, ValueError, "window_type"),
            ({"window_size": 0}, ValueError, "window_size"),
            ({"window_size": -3}, ValueError, "window_size"),
            ({"window_size": 2.5}, TypeError, "window_size"),
            ({"window_size": True}, TypeError, "window_size"),
            ({"window_type": "time", "window_size": 0.0}, ValueError, "window_size"),
            ({"window_type": "time", "window_size": -1}, ValueError, "window_size"),
            (
                {"window_type": "time", "window_size": math.nan},
                ValueError,
                "window_size",
            ),
            (
                {"window_type": "time", "window_size": math.inf},
                ValueError,
                "window_size",
            ),
            ({"window_type": "time", "window_size": False}, TypeError, "window_size"),
            ({"window_type": "time", "window_size": "5"}, TypeError, "window_size"),
            ({"minimum_calls": 0}, ValueError, "minimum_calls"),
            ({"minimum_calls": -1}, ValueError, "minimum_calls"),
            ({"minimum_calls": 1.0}, TypeError, "minimum_calls"),
            ({"minimum_calls": True}, TypeError, "minimum_calls"),
            ({"minimum_calls": 5}, ValueError, "at most window_size=4"),
            ({"failure_rate_threshold": None}, ValueError, "could never open"),
        ],
        ids=repr,
    )
    def test_rate_options_reject_bad_argument(
        self,
        clock: FakeClock,
        kwargs: dict[str, Any],
        error: type[Exception],
        fragment: str,
    ) -> None:
        with pytest.raises(error, match=fragment):
            make_breaker(clock, **kwargs)

    def test_rate_options_checked_without_threshold(self) -> None:
        with pytest.raises(ValueError, match="window_type"):
            CircuitBreaker(window_type="sliding")

    def test_rate_threshold_of_one_accepted(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, failure_rate_threshold=1)

        run(breaker, "ffff")

        assert breaker.state is OPEN


class TestFailureRateCountWindow:
    def test_failure_rate_opens_at_threshold(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        run(breaker, "sfsf")

        assert breaker.state is OPEN

    def test_failure_rate_below_threshold_stays_closed(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, window_size=5, failure_rate_threshold=0.5)

        run(breaker, "sfsfs")

        assert breaker.state is CLOSED

    def test_failure_rate_waits_for_minimum_calls(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        run(breaker, "fff")

        assert breaker.state is CLOSED

    def test_failure_rate_minimum_calls_below_size(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, minimum_calls=2)

        run(breaker, "ff")

        assert breaker.state is OPEN

    def test_failure_rate_forgets_calls_out_of_window(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, failure_rate_threshold=0.75)

        run(breaker, "ffsssfs")

        assert breaker.state is CLOSED

    def test_failure_rate_success_can_open(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        run(breaker, "fff")

        run(breaker, "s")

        assert breaker.state is OPEN

    def test_failure_rate_exact_decimal_threshold(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, window_size=10, failure_rate_threshold=0.3)

        run(breaker, "sssssssfff")

        assert breaker.state is OPEN

    def test_failure_rate_window_cleared_on_close(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        run(breaker, "sfsf")
        clock.advance(10.0)
        run(breaker, "s")

        run(breaker, "fff")

        assert breaker.state is CLOSED

    def test_failure_rate_ignores_neutral_outcomes(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, ignore_exceptions=(KeyError,))
        run(breaker, "ss")

        for _ in range(4):
            with pytest.raises(KeyError):
                breaker.call(_raise_key_error)

        assert breaker.state is CLOSED

    def test_failure_rate_counts_permit_outcomes(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        for _ in range(4):
            breaker.acquire_permission().record_failure(DependencyDownError())

        assert breaker.state is OPEN

    def test_failure_rate_with_consecutive_trigger(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, failure_threshold=2, window_size=10)

        run(breaker, "sff")

        assert breaker.state is OPEN

    def test_failure_rate_leaves_failure_count(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        run(breaker, "sff")

        assert breaker.failure_count == 2


def _raise_key_error() -> None:
    raise KeyError("id")


class TestFailureRateTimeWindow:
    def test_time_rate_opens_at_threshold(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock, window_type="time", window_size=10.0, minimum_calls=4
        )

        run(breaker, "sfsf")

        assert breaker.state is OPEN

    def test_time_rate_waits_for_minimum_calls(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, window_type="time", window_size=10.0)

        run(breaker, "fffffffff")

        assert breaker.state is CLOSED

    def test_time_rate_default_minimum_is_ten(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, window_type="time", window_size=10.0)

        run(breaker, "ffffffffff")

        assert breaker.state is OPEN

    def test_time_rate_forgets_old_failures(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock, window_type="time", window_size=10.0, minimum_calls=4
        )
        run(breaker, "fff")
        clock.advance(10.0)

        run(breaker, "sssf")

        assert breaker.state is CLOSED

    def test_time_rate_counts_failures_within_window(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock, window_type="time", window_size=10.0, minimum_calls=4
        )
        run(breaker, "fff")
        clock.advance(8.0)

        run(breaker, "s")

        assert breaker.state is OPEN

    def test_time_rate_accepts_fractional_seconds(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock, window_type="time", window_size=0.5, minimum_calls=2
        )
        run(breaker, "f")
        clock.advance(0.5)

        run(breaker, "f")

        assert breaker.state is CLOSED


class TestRateLogging:
    def test_rate_logging_names_trigger(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock)

        with caplog.at_level(logging.INFO, logger="syncq.breaker"):
            run(breaker, "sfsf")

        assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
            (
                logging.WARNING,
                "circuit breaker 'api' opened because the failure rate over the "
                "last 4 calls was 0.5, at or above its threshold, and rejects "
                "calls for 10 s",
            )
        ]

    def test_rate_logging_consecutive_trigger_unchanged(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock, failure_threshold=2, window_size=10)

        with caplog.at_level(logging.INFO, logger="syncq.breaker"):
            run(breaker, "ff")

        assert "after consecutive failures" in caplog.records[0].getMessage()


def _start_threads(count: int, worker: Any) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=worker, name=f"breaker-rate-test-{i}")
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    return threads


def _alive_after_join(threads: list[threading.Thread]) -> list[threading.Thread]:
    for thread in threads:
        thread.join(timeout=10.0)
    return [thread for thread in threads if thread.is_alive()]


class TestRateConcurrency:
    @pytest.mark.timeout(30)
    @pytest.mark.parametrize("window_type", ["count", "time"])
    def test_rate_window_loses_no_counts(
        self, clock: FakeClock, window_type: str
    ) -> None:
        thread_count = 16
        calls_each = 200
        total = thread_count * calls_each
        window_size = total if window_type == "count" else 60.0
        breaker = make_breaker(
            clock,
            window_type=window_type,
            window_size=window_size,
            minimum_calls=total,
            failure_rate_threshold=0.5,
        )
        start = threading.Barrier(thread_count)
        unexpected: list[BaseException] = []

        def worker() -> None:
            try:
                start.wait(timeout=5.0)
                for index in range(calls_each):
                    if index % 2:
                        breaker.call(succeed)
                    else:
                        breaker.acquire_permission().record_failure(
                            DependencyDownError()
                        )
            except BaseException as exc:
                unexpected.append(exc)

        alive = _alive_after_join(_start_threads(thread_count, worker))

        # The breaker opens only when the window contains every call and half of
        # them failed, so a lost count of either kind leaves it closed.
        assert alive == []
        assert unexpected == []
        assert breaker.state is OPEN


def make_slow_breaker(clock: FakeClock, **kwargs: Any) -> CircuitBreaker:
    options: dict[str, Any] = {
        "failure_rate_threshold": None,
        "slow_call_duration": 2.0,
        "slow_call_rate_threshold": 0.5,
    }
    options.update(kwargs)
    return make_breaker(clock, **options)


def take_seconds(clock: FakeClock, seconds: float) -> str:
    clock.advance(seconds)
    return "ok"


def fail_after(clock: FakeClock, seconds: float) -> None:
    clock.advance(seconds)
    raise DependencyDownError("timed out upstream")


class TestSlowCallValidation:
    @pytest.mark.parametrize(
        ("kwargs", "error", "fragment"),
        [
            ({"slow_call_duration": 0}, ValueError, "slow_call_duration"),
            ({"slow_call_duration": -1.0}, ValueError, "slow_call_duration"),
            ({"slow_call_duration": math.nan}, ValueError, "slow_call_duration"),
            ({"slow_call_duration": math.inf}, ValueError, "slow_call_duration"),
            ({"slow_call_duration": True}, TypeError, "slow_call_duration"),
            ({"slow_call_duration": "2"}, TypeError, "slow_call_duration"),
            ({"slow_call_rate_threshold": 0}, ValueError, "slow_call_rate"),
            ({"slow_call_rate_threshold": 1.5}, ValueError, "slow_call_rate"),
            ({"slow_call_rate_threshold": math.nan}, ValueError, "slow_call_rate"),
            ({"slow_call_rate_threshold": False}, TypeError, "slow_call_rate"),
            ({"slow_call_rate_threshold": [0.5]}, TypeError, "slow_call_rate"),
            (
                {"slow_call_duration": None},
                ValueError,
                "needs slow_call_duration",
            ),
        ],
        ids=repr,
    )
    def test_slow_options_reject_bad_argument(
        self,
        clock: FakeClock,
        kwargs: dict[str, Any],
        error: type[Exception],
        fragment: str,
    ) -> None:
        with pytest.raises(error, match=fragment):
            make_slow_breaker(clock, **kwargs)

    def test_slow_duration_alone_keeps_breaker_closed(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker(slow_call_duration=1.0, clock=clock)

        for _ in range(10):
            breaker.call(take_seconds, clock, 5.0)

        assert breaker.state is CLOSED


class TestSlowCalls:
    def test_slow_rate_opens_at_threshold(self, clock: FakeClock) -> None:
        breaker = make_slow_breaker(clock)

        for seconds in (3.0, 0.5, 3.0, 0.5):
            breaker.call(take_seconds, clock, seconds)

        assert breaker.state is OPEN

    def test_slow_rate_below_threshold_stays_closed(self, clock: FakeClock) -> None:
        breaker = make_slow_breaker(clock)

        for seconds in (3.0, 0.5, 0.5, 0.5):
            breaker.call(take_seconds, clock, seconds)

        assert breaker.state is CLOSED

    def test_slow_call_at_duration_is_not_slow(self, clock: FakeClock) -> None:
        breaker = make_slow_breaker(clock, slow_call_rate_threshold=0.25)

        for _ in range(4):
            breaker.call(take_seconds, clock, 2.0)

        assert breaker.state is CLOSED

    def test_slow_failure_counts_as_slow(self, clock: FakeClock) -> None:
        breaker = make_slow_breaker(clock)

        for _ in range(2):
            with pytest.raises(DependencyDownError):
                breaker.call(fail_after, clock, 3.0)
        run(breaker, "ss")

        assert breaker.state is OPEN

    def test_slow_permit_timed_from_acquire(self, clock: FakeClock) -> None:
        breaker = make_slow_breaker(clock)

        for _ in range(4):
            permit = breaker.acquire_permission()
            clock.advance(2.5)
            permit.record_success()

        assert breaker.state is OPEN

    def test_slow_rate_in_time_window(self, clock: FakeClock) -> None:
        breaker = make_slow_breaker(
            clock, window_type="time", window_size=30.0, minimum_calls=3
        )

        for _ in range(3):
            breaker.call(take_seconds, clock, 4.0)

        assert breaker.state is OPEN

    def test_slow_trial_success_closes(self, clock: FakeClock) -> None:
        breaker = make_slow_breaker(clock)
        for _ in range(4):
            breaker.call(take_seconds, clock, 3.0)
        clock.advance(10.0)

        breaker.call(take_seconds, clock, 3.0)

        assert breaker.state is CLOSED

    def test_slow_rate_with_failure_rate(self, clock: FakeClock) -> None:
        breaker = make_slow_breaker(clock, failure_rate_threshold=0.75)

        run(breaker, "ff")
        breaker.call(take_seconds, clock, 3.0)
        breaker.call(take_seconds, clock, 3.0)

        assert breaker.state is OPEN

    def test_slow_rate_logging_names_trigger(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_slow_breaker(clock)

        with caplog.at_level(logging.WARNING, logger="syncq.breaker"):
            for _ in range(4):
                breaker.call(take_seconds, clock, 3.0)

        message = caplog.records[0].getMessage()
        assert "because the slow-call rate over the last 4 calls was 1" in message

    @pytest.mark.timeout(30)
    def test_slow_window_loses_no_counts(self, clock: FakeClock) -> None:
        thread_count = 16
        calls_each = 100
        total = thread_count * calls_each
        breaker = make_slow_breaker(
            clock, window_size=total, minimum_calls=total, slow_call_duration=1.0
        )
        start = threading.Barrier(thread_count)
        # The main thread joins this one to move the clock between the halves.
        clock_moved = threading.Barrier(thread_count + 1)
        unexpected: list[BaseException] = []

        def worker() -> None:
            try:
                start.wait(timeout=5.0)
                permits = [breaker.acquire_permission() for _ in range(calls_each)]
                for permit in permits[: calls_each // 2]:
                    permit.record_success()
                clock_moved.wait(timeout=5.0)
                clock_moved.wait(timeout=5.0)
                for permit in permits[calls_each // 2 :]:
                    permit.record_failure(DependencyDownError())
            except BaseException as exc:
                unexpected.append(exc)

        threads = _start_threads(thread_count, worker)
        clock_moved.wait(timeout=5.0)
        clock.advance(5.0)
        clock_moved.wait(timeout=5.0)
        alive = _alive_after_join(threads)

        # Half the calls end after the clock moved, so they are slow. The
        # breaker opens only when the window contains every call and half of
        # them were slow, so a lost count of either kind leaves it closed.
        assert alive == []
        assert unexpected == []
        assert breaker.state is OPEN
