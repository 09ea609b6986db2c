"""Tests for opening, closing and disabling the breaker by hand, on a FakeClock."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from syncq.breaker import CircuitBreaker, CircuitState
from syncq.errors import CircuitOpenError
from syncq.testing import FakeClock

CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN
FORCED_OPEN = CircuitState.FORCED_OPEN
DISABLED = CircuitState.DISABLED

Transition = tuple[CircuitState, CircuitState]


class DependencyDownError(Exception):
    """A fake error that signals a failing dependency."""


def succeed() -> str:
    return "ok"


def fail() -> None:
    raise DependencyDownError("connection refused")


def call_failing(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(DependencyDownError):
            breaker.call(fail)


def make_breaker(clock: FakeClock, **kwargs: Any) -> CircuitBreaker:
    options: dict[str, Any] = {
        "failure_threshold": 3,
        "reset_timeout": 10.0,
        "name": "db",
        "clock": clock,
    }
    options.update(kwargs)
    return CircuitBreaker(**options)


def record_transitions(breaker: CircuitBreaker) -> list[Transition]:
    transitions: list[Transition] = []

    def listener(_: CircuitBreaker, old: CircuitState, new: CircuitState) -> None:
        transitions.append((old, new))

    breaker.add_listener(listener)
    return transitions


class TestOpenByHand:
    def test_open_rejects_calls(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        breaker.open()

        with pytest.raises(CircuitOpenError):
            breaker.call(succeed)

    def test_open_half_opens_after_reset_timeout(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.open()

        clock.advance(10.0)

        assert breaker.state is HALF_OPEN

    def test_open_notifies_listeners(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        transitions = record_transitions(breaker)

        breaker.open()

        assert transitions == [(CLOSED, OPEN)]

    def test_open_twice_keeps_first_deadline(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.open()
        clock.advance(4.0)

        breaker.open()

        assert breaker.retry_after() == 6.0

    def test_open_from_half_open_keeps_open_time(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, reset_timeout_multiplier=2.0)
        breaker.open()
        clock.advance(10.0)
        assert breaker.state is HALF_OPEN

        breaker.open()

        assert breaker.retry_after() == 10.0

    def test_open_logs_warning(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock)

        with caplog.at_level(logging.INFO, logger="syncq.breaker"):
            breaker.open()

        assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
            (
                logging.WARNING,
                "circuit breaker 'db' opened by open() and rejects calls for 10 s",
            )
        ]


class TestCloseByHand:
    def test_close_ends_open(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker, 3)

        breaker.close()

        assert breaker.state is CLOSED
        assert breaker.failure_count == 0

    def test_close_ends_half_open(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.open()
        clock.advance(10.0)

        breaker.close()

        assert breaker.state is CLOSED

    def test_close_when_closed_keeps_count(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker, 2)

        breaker.close()

        assert breaker.failure_count == 2

    def test_close_when_closed_notifies_nobody(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        transitions = record_transitions(breaker)

        breaker.close()

        assert transitions == []

    def test_close_resets_grown_open_time(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, reset_timeout_multiplier=2.0)
        call_failing(breaker, 3)
        clock.advance(10.0)
        call_failing(breaker)
        breaker.close()

        call_failing(breaker, 3)

        assert breaker.retry_after() == 10.0

    def test_close_logs_info(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock)
        breaker.open()

        with caplog.at_level(logging.INFO, logger="syncq.breaker"):
            breaker.close()

        assert [(r.levelno, r.getMessage()) for r in caplog.records][-1] == (
            logging.INFO,
            "circuit breaker 'db' closed by close()",
        )

    def test_close_clears_failure_window(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock, failure_threshold=None, failure_rate_threshold=0.5, window_size=4
        )
        call_failing(breaker, 3)
        breaker.open()
        breaker.close()

        call_failing(breaker, 1)

        assert breaker.state is CLOSED


class TestForceOpen:
    def test_force_open_rejects_calls(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        breaker.force_open()

        with pytest.raises(CircuitOpenError, match="forced open"):
            breaker.call(succeed)

    def test_force_open_never_half_opens(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.force_open()

        clock.advance(1000.0)

        assert breaker.state is FORCED_OPEN

    def test_force_open_retry_after_is_reset_timeout(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.force_open()

        with pytest.raises(CircuitOpenError) as caught:
            breaker.acquire_permission()

        assert caught.value.retry_after == 10.0

    def test_force_open_ignores_open(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.force_open()

        breaker.open()

        assert breaker.state is FORCED_OPEN

    def test_force_open_ended_by_close(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.force_open()

        breaker.close()

        assert breaker.call(succeed) == "ok"

    def test_force_open_notifies_listeners(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        transitions = record_transitions(breaker)

        breaker.force_open()
        breaker.reset()

        assert transitions == [(CLOSED, FORCED_OPEN), (FORCED_OPEN, CLOSED)]

    def test_force_open_logs_warning(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock)

        with caplog.at_level(logging.INFO, logger="syncq.breaker"):
            breaker.force_open()

        assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
            (
                logging.WARNING,
                "circuit breaker 'db' forced open by force_open() and rejects "
                "calls until close() or reset()",
            )
        ]

    def test_force_open_uses_fallback(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, fallback=lambda exc: "cached")
        breaker.force_open()

        assert breaker.call(succeed) == "cached"


class TestDisable:
    def test_disable_admits_calls(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.open()

        breaker.disable()

        assert breaker.call(succeed) == "ok"

    def test_disable_records_no_failures(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.disable()

        call_failing(breaker, 10)

        assert breaker.state is DISABLED
        assert breaker.failure_count == 0

    def test_disable_records_no_permit_outcomes(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.disable()

        for _ in range(5):
            breaker.acquire_permission().record_failure(DependencyDownError())

        assert breaker.state is DISABLED

    def test_disable_ignores_open_close_force(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.disable()

        breaker.open()
        breaker.force_open()
        breaker.close()

        assert breaker.state is DISABLED

    def test_disable_ended_by_reset(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.disable()

        breaker.reset()
        call_failing(breaker, 3)

        assert breaker.state is OPEN

    def test_disable_discards_outcome_of_earlier_call(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        permit = breaker.acquire_permission()
        breaker.disable()
        breaker.reset()

        permit.record_failure(DependencyDownError())

        assert breaker.failure_count == 0

    def test_disable_logs_warning(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock)

        with caplog.at_level(logging.INFO, logger="syncq.breaker"):
            breaker.disable()

        assert [r.levelno for r in caplog.records] == [logging.WARNING]
        assert "disabled by disable()" in caplog.records[0].getMessage()


class TestReset:
    def test_reset_clears_closed_counts(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker, 2)

        breaker.reset()

        assert breaker.failure_count == 0

    def test_reset_closes_open_breaker(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker, 3)

        breaker.reset()

        assert breaker.state is CLOSED

    def test_reset_when_closed_notifies_nobody(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        transitions = record_transitions(breaker)

        breaker.reset()

        assert transitions == []

    def test_reset_clears_closed_window(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock, failure_threshold=None, failure_rate_threshold=0.5, window_size=4
        )
        call_failing(breaker, 3)

        breaker.reset()
        call_failing(breaker, 1)

        assert breaker.state is CLOSED

    def test_reset_logs_info(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock)
        breaker.force_open()

        with caplog.at_level(logging.INFO, logger="syncq.breaker"):
            breaker.reset()

        assert [(r.levelno, r.getMessage()) for r in caplog.records][-1] == (
            logging.INFO,
            "circuit breaker 'db' closed by reset()",
        )
