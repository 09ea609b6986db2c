"""Tests for how long an open breaker stays open, on a FakeClock."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest

from syncq.breaker import CircuitBreaker, CircuitState
from syncq.errors import CircuitOpenError
from syncq.testing import FakeClock

CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN


class DependencyDownError(Exception):
    """A fake error that signals a failing dependency."""


def succeed() -> str:
    return "ok"


def fail() -> None:
    raise DependencyDownError("connection refused")


def call_failing(breaker: CircuitBreaker) -> None:
    with pytest.raises(DependencyDownError):
        breaker.call(fail)


def make_breaker(clock: FakeClock, **kwargs: Any) -> CircuitBreaker:
    options: dict[str, Any] = {
        "failure_threshold": 1,
        "reset_timeout": 10.0,
        "reset_timeout_multiplier": 2.0,
        "name": "db",
        "clock": clock,
    }
    options.update(kwargs)
    return CircuitBreaker(**options)


def fail_trial(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """Wait out the current open period and fail the trial call."""
    clock.advance(breaker.retry_after())
    call_failing(breaker)


class TestGrowthValidation:
    @pytest.mark.parametrize(
        ("kwargs", "error", "fragment"),
        [
            ({"reset_timeout_multiplier": 0.5}, ValueError, "got 0.5"),
            ({"reset_timeout_multiplier": 0}, ValueError, "multiplier"),
            ({"reset_timeout_multiplier": -2.0}, ValueError, "multiplier"),
            ({"reset_timeout_multiplier": math.nan}, ValueError, "multiplier"),
            ({"reset_timeout_multiplier": math.inf}, ValueError, "multiplier"),
            ({"reset_timeout_multiplier": True}, TypeError, "multiplier"),
            ({"reset_timeout_multiplier": "2"}, TypeError, "multiplier"),
            ({"max_reset_timeout": 0}, ValueError, "max_reset_timeout"),
            ({"max_reset_timeout": -5.0}, ValueError, "max_reset_timeout"),
            ({"max_reset_timeout": math.nan}, ValueError, "max_reset_timeout"),
            ({"max_reset_timeout": math.inf}, ValueError, "max_reset_timeout"),
            ({"max_reset_timeout": True}, TypeError, "max_reset_timeout"),
            ({"max_reset_timeout": "60"}, TypeError, "max_reset_timeout"),
            ({"max_reset_timeout": 5.0}, ValueError, "at least reset_timeout=10"),
        ],
        ids=repr,
    )
    def test_growth_rejects_bad_argument(
        self,
        clock: FakeClock,
        kwargs: dict[str, Any],
        error: type[Exception],
        fragment: str,
    ) -> None:
        with pytest.raises(error, match=fragment):
            make_breaker(clock, **kwargs)

    def test_growth_accepts_int_multiplier(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, reset_timeout_multiplier=3)
        call_failing(breaker)

        fail_trial(breaker, clock)

        assert breaker.retry_after() == 30.0


class TestOpenGrowth:
    def test_growth_first_open_uses_reset_timeout(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        call_failing(breaker)

        assert breaker.retry_after() == 10.0

    def test_growth_multiplies_on_each_reopening(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker)
        seen = []

        for _ in range(3):
            fail_trial(breaker, clock)
            seen.append(breaker.retry_after())

        assert seen == [20.0, 40.0, 80.0]

    def test_growth_stops_at_max_reset_timeout(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, max_reset_timeout=30.0)
        call_failing(breaker)
        seen = []

        for _ in range(3):
            fail_trial(breaker, clock)
            seen.append(breaker.retry_after())

        assert seen == [20.0, 30.0, 30.0]

    def test_growth_reopened_stays_open_longer(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker)
        fail_trial(breaker, clock)

        clock.advance(19.9)

        assert breaker.state is OPEN

    def test_growth_half_opens_after_grown_time(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker)
        fail_trial(breaker, clock)

        clock.advance(20.0)

        assert breaker.state is HALF_OPEN

    def test_growth_close_resets_open_time(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker)
        fail_trial(breaker, clock)
        clock.advance(20.0)
        breaker.call(succeed)

        call_failing(breaker)

        assert breaker.retry_after() == 10.0

    def test_growth_default_multiplier_keeps_timeout(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, reset_timeout_multiplier=1.0)
        call_failing(breaker)

        fail_trial(breaker, clock)

        assert breaker.retry_after() == 10.0

    def test_growth_error_reports_grown_retry_after(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker)
        fail_trial(breaker, clock)

        with pytest.raises(CircuitOpenError, match=r"another 20\.000 s"):
            breaker.call(succeed)

    def test_growth_logged_open_time(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker)
        clock.advance(10.0)
        caplog.clear()

        with caplog.at_level(logging.WARNING, logger="syncq.breaker"):
            call_failing(breaker)

        message = caplog.records[0].getMessage()
        assert message.endswith("rejects calls for 20 s")
