"""Tests for the breaker's failure and result predicates, on a FakeClock."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from syncq.breaker import CircuitBreaker, CircuitState
from syncq.testing import FakeClock

CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN


class HTTPError(Exception):
    """A fake HTTP error with a status code."""

    def __init__(self, status: int) -> None:
        super().__init__(f"status {status}")
        self.status = status


class Response:
    """A fake HTTP response."""

    def __init__(self, status: int) -> None:
        self.status = status


def is_server_error(exc: Exception) -> bool:
    return isinstance(exc, HTTPError) and exc.status >= 500


def is_unavailable(result: Any) -> bool:
    return isinstance(result, Response) and result.status == 503


def make_breaker(clock: FakeClock, **kwargs: Any) -> CircuitBreaker:
    options: dict[str, Any] = {
        "failure_threshold": 2,
        "reset_timeout": 10.0,
        "name": "web",
        "clock": clock,
    }
    options.update(kwargs)
    return CircuitBreaker(**options)


def raise_status(status: int) -> None:
    raise HTTPError(status)


def respond(status: int) -> Response:
    return Response(status)


def call_raising(breaker: CircuitBreaker, status: int, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(HTTPError):
            breaker.call(raise_status, status)


def broken_predicate(value: object) -> bool:
    raise RuntimeError("predicate bug")


class TestPredicateValidation:
    @pytest.mark.parametrize("option", ["failure_predicate", "result_predicate"])
    @pytest.mark.parametrize("value", [True, 3, "is_error"])
    def test_predicate_rejects_non_callable(
        self, clock: FakeClock, option: str, value: object
    ) -> None:
        with pytest.raises(TypeError, match=f"{option} must be callable"):
            make_breaker(clock, **{option: value})


class TestFailurePredicate:
    def test_failure_predicate_true_counts_failure(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, failure_predicate=is_server_error)

        call_raising(breaker, 500, times=2)

        assert breaker.state is OPEN

    def test_failure_predicate_false_counts_success(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, failure_predicate=is_server_error)
        call_raising(breaker, 500)

        call_raising(breaker, 404)

        assert breaker.failure_count == 0

    def test_failure_predicate_sees_exception(self, clock: FakeClock) -> None:
        seen: list[Exception] = []

        def remember(exc: Exception) -> bool:
            seen.append(exc)
            return True

        breaker = make_breaker(clock, failure_predicate=remember)

        call_raising(breaker, 502)

        assert len(seen) == 1
        assert isinstance(seen[0], HTTPError)

    def test_failure_predicate_skipped_for_other_classes(
        self, clock: FakeClock
    ) -> None:
        seen: list[Exception] = []

        def remember(exc: Exception) -> bool:
            seen.append(exc)
            return True

        breaker = make_breaker(
            clock, failure_exceptions=(OSError,), failure_predicate=remember
        )

        call_raising(breaker, 500)

        assert seen == []

    def test_failure_predicate_skipped_for_ignored(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock,
            ignore_exceptions=(HTTPError,),
            failure_predicate=is_server_error,
        )
        call_raising(breaker, 500)

        assert breaker.failure_count == 0

    def test_failure_predicate_applies_to_permits(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, failure_predicate=is_server_error)

        breaker.acquire_permission().record_failure(HTTPError(503))

        assert breaker.failure_count == 1

    def test_failure_predicate_error_is_logged(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock, failure_predicate=broken_predicate)

        call_raising(breaker, 500)

        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert "failure_predicate of circuit breaker 'web'" in errors[0].getMessage()

    def test_failure_predicate_error_counts_success(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, failure_predicate=broken_predicate)

        call_raising(breaker, 500, times=3)

        assert breaker.state is CLOSED


class TestResultPredicate:
    def test_result_predicate_true_counts_failure(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, result_predicate=is_unavailable)

        for _ in range(2):
            breaker.call(respond, 503)

        assert breaker.state is OPEN

    def test_result_predicate_returns_result(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, result_predicate=is_unavailable)

        response = breaker.call(respond, 503)

        assert response.status == 503

    def test_result_predicate_false_counts_success(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, result_predicate=is_unavailable)
        breaker.call(respond, 503)

        breaker.call(respond, 200)

        assert breaker.failure_count == 0

    def test_result_predicate_applies_to_decorator(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, result_predicate=is_unavailable)
        fetch = breaker(respond)

        fetch(503)

        assert breaker.failure_count == 1

    def test_result_predicate_fails_trial_call(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, result_predicate=is_unavailable)
        for _ in range(2):
            breaker.call(respond, 503)
        clock.advance(10.0)

        breaker.call(respond, 503)

        assert breaker.state is OPEN

    def test_result_predicate_record_result(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, result_predicate=is_unavailable)

        breaker.acquire_permission().record_result(Response(503))

        assert breaker.failure_count == 1

    def test_result_predicate_record_result_success(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, result_predicate=is_unavailable)
        breaker.call(respond, 503)

        breaker.acquire_permission().record_result(Response(200))

        assert breaker.failure_count == 0

    def test_result_predicate_feeds_failure_rate(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock,
            failure_threshold=None,
            failure_rate_threshold=0.5,
            window_size=4,
            result_predicate=is_unavailable,
        )

        for status in (200, 503, 200, 503):
            breaker.call(respond, status)

        assert breaker.state is OPEN

    def test_result_predicate_error_counts_success(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock, result_predicate=broken_predicate)

        for _ in range(3):
            breaker.call(respond, 503)

        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 3
        assert breaker.state is CLOSED

    def test_record_result_without_predicate_succeeds(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.acquire_permission().record_failure(HTTPError(500))

        breaker.acquire_permission().record_result(None)

        assert breaker.failure_count == 0
