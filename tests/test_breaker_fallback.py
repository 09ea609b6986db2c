"""Tests for the breaker's fallback, on a FakeClock."""

from __future__ import annotations

from typing import Any

import pytest

from syncq.breaker import CircuitBreaker, CircuitState
from syncq.errors import CircuitOpenError
from syncq.testing import FakeClock

CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN


class DependencyDownError(Exception):
    """A fake error that signals a failing dependency."""


class BadRequestError(Exception):
    """A fake error that the caller caused, not the dependency."""


def succeed() -> str:
    return "ok"


def fail() -> str:
    raise DependencyDownError("connection refused")


def reject_bad_request() -> str:
    raise BadRequestError("missing field")


def cached(exc: Exception) -> str:
    return f"cached after {type(exc).__name__}"


def make_breaker(clock: FakeClock, **kwargs: Any) -> CircuitBreaker:
    options: dict[str, Any] = {
        "failure_threshold": 2,
        "reset_timeout": 10.0,
        "fallback": cached,
        "name": "db",
        "clock": clock,
    }
    options.update(kwargs)
    return CircuitBreaker(**options)


def open_breaker(breaker: CircuitBreaker) -> None:
    for _ in range(2):
        breaker.acquire_permission().record_failure(DependencyDownError())


class TestFallbackValidation:
    @pytest.mark.parametrize("value", [True, "cached", 0])
    def test_fallback_rejects_non_callable(
        self, clock: FakeClock, value: object
    ) -> None:
        with pytest.raises(TypeError, match="fallback must be callable"):
            make_breaker(clock, fallback=value)

    @pytest.mark.parametrize("value", [1, "yes", None])
    def test_fallback_on_failure_rejects_non_bool(
        self, clock: FakeClock, value: object
    ) -> None:
        with pytest.raises(TypeError, match="fallback_on_failure must be a bool"):
            make_breaker(clock, fallback_on_failure=value)

    def test_fallback_on_failure_needs_fallback(self, clock: FakeClock) -> None:
        with pytest.raises(ValueError, match="needs a fallback"):
            make_breaker(clock, fallback=None, fallback_on_failure=True)


class TestFallbackOnRejection:
    def test_fallback_replaces_open_error(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)

        result = breaker.call(succeed)

        assert result == "cached after CircuitOpenError"

    def test_fallback_receives_retry_after(self, clock: FakeClock) -> None:
        seen: list[Exception] = []

        def remember(exc: Exception) -> str:
            seen.append(exc)
            return "cached"

        breaker = make_breaker(clock, fallback=remember)
        open_breaker(breaker)
        clock.advance(4.0)

        breaker.call(succeed)

        assert isinstance(seen[0], CircuitOpenError)
        assert seen[0].retry_after == 6.0

    def test_fallback_skips_fn_when_open(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)
        calls: list[int] = []

        breaker.call(calls.append, 1)

        assert calls == []

    def test_fallback_applies_to_decorator(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        fetch = breaker(succeed)
        open_breaker(breaker)

        assert fetch() == "cached after CircuitOpenError"

    def test_fallback_on_full_trial_slots(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)
        clock.advance(10.0)
        breaker.acquire_permission()

        assert breaker.call(succeed) == "cached after CircuitOpenError"

    def test_fallback_not_used_by_acquire_permission(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)

        with pytest.raises(CircuitOpenError):
            breaker.acquire_permission()

    def test_fallback_not_used_for_failure_by_default(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        with pytest.raises(DependencyDownError):
            breaker.call(fail)

    def test_fallback_error_propagates(self, clock: FakeClock) -> None:
        def broken(exc: Exception) -> str:
            raise LookupError("no cached value")

        breaker = make_breaker(clock, fallback=broken)
        open_breaker(breaker)

        with pytest.raises(LookupError) as caught:
            breaker.call(succeed)

        assert isinstance(caught.value.__context__, CircuitOpenError)


class TestFallbackOnFailure:
    def test_fallback_on_failure_returns_value(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, fallback_on_failure=True)

        result = breaker.call(fail)

        assert result == "cached after DependencyDownError"

    def test_fallback_on_failure_still_counts(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, fallback_on_failure=True)

        breaker.call(fail)
        breaker.call(fail)

        assert breaker.state is OPEN

    def test_fallback_on_failure_skips_ignored(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock, fallback_on_failure=True, ignore_exceptions=(BadRequestError,)
        )

        with pytest.raises(BadRequestError):
            breaker.call(reject_bad_request)

    def test_fallback_on_failure_skips_uncounted(self, clock: FakeClock) -> None:
        breaker = make_breaker(
            clock,
            fallback_on_failure=True,
            failure_exceptions=(DependencyDownError,),
        )

        with pytest.raises(BadRequestError):
            breaker.call(reject_bad_request)

    def test_fallback_on_failure_in_trial_call(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, fallback_on_failure=True)
        open_breaker(breaker)
        clock.advance(10.0)

        result = breaker.call(fail)

        assert result == "cached after DependencyDownError"
        assert breaker.state is OPEN

    def test_fallback_on_failure_with_timed_calls(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, fallback_on_failure=True, slow_call_duration=1.0)

        result = breaker.call(fail)

        assert result == "cached after DependencyDownError"
        assert breaker.failure_count == 1

    def test_fallback_on_failure_keeps_successes(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, fallback_on_failure=True)

        assert breaker.call(succeed) == "ok"
