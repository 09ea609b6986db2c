"""Tests for the breaker's metrics snapshot, on a FakeClock."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest

from syncq.breaker import BreakerMetrics, CircuitBreaker, CircuitState
from syncq.errors import CircuitOpenError
from syncq.testing import FakeClock

CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN


class DependencyDownError(Exception):
    """A fake error that signals a failing dependency."""


class BadRequestError(Exception):
    """A fake error that the caller caused, not the dependency."""


def succeed() -> str:
    return "ok"


def fail() -> None:
    raise DependencyDownError("connection refused")


def call_failing(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(DependencyDownError):
            breaker.call(fail)


def take_seconds(clock: FakeClock, seconds: float) -> str:
    clock.advance(seconds)
    return "ok"


def make_breaker(clock: FakeClock, **kwargs: Any) -> CircuitBreaker:
    options: dict[str, Any] = {
        "failure_threshold": 3,
        "reset_timeout": 10.0,
        "name": "db",
        "clock": clock,
    }
    options.update(kwargs)
    return CircuitBreaker(**options)


class TestMetricsCounters:
    def test_metrics_start_at_zero(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        metrics = breaker.metrics()

        assert metrics == BreakerMetrics(
            state=CLOSED,
            calls=0,
            successes=0,
            failures=0,
            ignored=0,
            rejections=0,
            slow_calls=0,
            failure_count=0,
            window_calls=0,
            failure_rate=None,
            slow_call_rate=None,
        )

    def test_metrics_count_successes_and_failures(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.call(succeed)
        call_failing(breaker, 2)
        breaker.call(succeed)

        metrics = breaker.metrics()

        assert metrics.calls == 4
        assert metrics.successes == 2
        assert metrics.failures == 2
        assert metrics.failure_count == 0

    def test_metrics_count_rejections(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker, 3)
        for _ in range(2):
            with pytest.raises(CircuitOpenError):
                breaker.call(succeed)

        metrics = breaker.metrics()

        assert metrics.rejections == 2
        assert metrics.calls == 3
        assert metrics.state is OPEN

    def test_metrics_count_ignored(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, ignore_exceptions=(BadRequestError,))
        with pytest.raises(BadRequestError):
            breaker.call(_raise, BadRequestError())
        breaker.acquire_permission().release()

        metrics = breaker.metrics()

        assert metrics.ignored == 2
        assert metrics.successes == 0

    def test_metrics_count_result_failures(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, result_predicate=lambda result: result is None)

        breaker.call(lambda: None)

        assert breaker.metrics().failures == 1

    def test_metrics_count_slow_calls(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, slow_call_duration=1.0)

        breaker.call(take_seconds, clock, 2.0)
        breaker.call(take_seconds, clock, 0.5)

        assert breaker.metrics().slow_calls == 1

    def test_metrics_count_trial_calls(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker, 3)
        clock.advance(10.0)

        breaker.call(succeed)

        metrics = breaker.metrics()
        assert metrics.calls == 4
        assert metrics.successes == 1

    def test_metrics_count_stale_outcomes(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        stale = breaker.acquire_permission()
        breaker.open()

        stale.record_failure(DependencyDownError())

        assert breaker.metrics().failures == 1
        assert breaker.failure_count == 0

    def test_metrics_count_settled_permit_once(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        permit = breaker.acquire_permission()
        permit.record_failure(DependencyDownError())

        permit.record_failure(DependencyDownError())

        assert breaker.metrics().failures == 1

    def test_metrics_kept_by_reset(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker, 2)

        breaker.reset()

        assert breaker.metrics().failures == 2

    def test_metrics_count_calls_while_disabled(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.disable()

        call_failing(breaker, 5)

        assert breaker.metrics().failures == 5

    def test_metrics_snapshot_is_frozen(self, clock: FakeClock) -> None:
        metrics = make_breaker(clock).metrics()

        with pytest.raises(dataclasses.FrozenInstanceError):
            metrics.calls = 5  # type: ignore[misc]

    def test_metrics_state_half_opens_when_due(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker, 3)
        clock.advance(10.0)

        assert breaker.metrics().state is HALF_OPEN


def _raise(exc: BaseException) -> None:
    raise exc


class TestMetricsRates:
    def test_metrics_failure_rate_of_window(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock, failure_threshold=None, failure_rate_threshold=0.9, window_size=4
        )
        breaker.call(succeed)
        call_failing(breaker)

        metrics = breaker.metrics()

        assert metrics.window_calls == 2
        assert metrics.failure_rate == 0.5

    def test_metrics_slow_call_rate_of_window(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock,
            slow_call_duration=1.0,
            slow_call_rate_threshold=1.0,
            window_size=4,
        )
        breaker.call(take_seconds, clock, 2.0)
        breaker.call(succeed)
        breaker.call(succeed)
        breaker.call(succeed)

        assert breaker.metrics().slow_call_rate == 0.25

    def test_metrics_time_window_rate_expires(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock,
            failure_threshold=None,
            failure_rate_threshold=0.9,
            window_type="time",
            window_size=10.0,
        )
        call_failing(breaker)
        clock.advance(10.0)

        metrics = breaker.metrics()

        assert metrics.window_calls == 0
        assert metrics.failure_rate is None

    def test_metrics_rate_kept_while_open(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock, failure_threshold=None, failure_rate_threshold=0.5, window_size=2
        )
        call_failing(breaker, 2)

        metrics = breaker.metrics()

        assert metrics.state is OPEN
        assert metrics.failure_rate == 1.0


def _start_threads(count: int, worker: Any) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=worker, name=f"breaker-metrics-test-{i}")
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    return threads


class TestMetricsConcurrency:
    @pytest.mark.timeout(30)
    @pytest.mark.parametrize(
        "options",
        [
            {},
            {"failure_rate_threshold": 1.0, "window_size": 100},
            {"failure_rate_threshold": 1.0, "window_type": "time"},
            {"slow_call_duration": 5.0},
        ],
        ids=["plain", "count-window", "time-window", "timed"],
    )
    def test_metrics_lose_no_counts(
        self, clock: FakeClock, options: dict[str, Any]
    ) -> None:
        thread_count = 16
        calls_each = 150
        breaker = make_breaker(
            clock,
            failure_threshold=10_000,
            ignore_exceptions=(BadRequestError,),
            **options,
        )
        start = threading.Barrier(thread_count)
        reader_done = threading.Event()
        snapshots: list[BreakerMetrics] = []
        unexpected: list[BaseException] = []

        def worker() -> None:
            try:
                start.wait(timeout=5.0)
                for index in range(calls_each):
                    if index % 3 == 0:
                        breaker.call(succeed)
                    elif index % 3 == 1:
                        with pytest.raises(DependencyDownError):
                            breaker.call(fail)
                    else:
                        with pytest.raises(BadRequestError):
                            breaker.call(_raise, BadRequestError())
            except BaseException as exc:
                unexpected.append(exc)

        def reader() -> None:
            while not reader_done.is_set():
                snapshots.append(breaker.metrics())

        threads = _start_threads(thread_count, worker)
        reading = threading.Thread(target=reader, name="breaker-metrics-reader")
        reading.start()
        for thread in threads:
            thread.join(timeout=10.0)
        reader_done.set()
        reading.join(timeout=10.0)
        metrics = breaker.metrics()

        assert [thread for thread in threads if thread.is_alive()] == []
        assert not reading.is_alive()
        assert unexpected == []
        assert metrics.calls == thread_count * calls_each
        assert metrics.successes == thread_count * calls_each // 3
        assert metrics.failures == thread_count * calls_each // 3
        assert metrics.ignored == thread_count * calls_each // 3
        assert metrics.state is CLOSED
        assert snapshots
