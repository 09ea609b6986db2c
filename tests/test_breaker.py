"""Tests for syncq.breaker. Time is a FakeClock, and threads wait with real timeouts."""

from __future__ import annotations

import logging
import math
import threading
from typing import Any, Callable

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from syncq.breaker import CircuitBreaker, CircuitState, Permit
from syncq.errors import CircuitOpenError
from syncq.testing import FakeClock

CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN

Transition = tuple[CircuitState, CircuitState]


class DependencyDownError(Exception):
    """A fake error that signals a failing dependency."""


class BadRequestError(Exception):
    """A fake error that the caller caused, not the dependency."""


def make_breaker(clock: FakeClock, **kwargs: Any) -> CircuitBreaker:
    options: dict[str, Any] = {
        "failure_threshold": 3,
        "reset_timeout": 10.0,
        "name": "db",
        "clock": clock,
    }
    options.update(kwargs)
    return CircuitBreaker(**options)


def succeed() -> str:
    return "ok"


def fail() -> None:
    raise DependencyDownError("connection refused")


def call_failing(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(DependencyDownError):
            breaker.call(fail)


def open_breaker(breaker: CircuitBreaker) -> None:
    threshold = breaker.failure_threshold
    if threshold is None:
        raise ValueError("open_breaker needs a breaker with a failure_threshold")
    call_failing(breaker, threshold)


def half_open_breaker(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_breaker(breaker)
    clock.advance(breaker.reset_timeout)


def record_transitions(breaker: CircuitBreaker) -> list[Transition]:
    transitions: list[Transition] = []

    def listener(_: CircuitBreaker, old: CircuitState, new: CircuitState) -> None:
        transitions.append((old, new))

    breaker.add_listener(listener)
    return transitions


class TestCircuitState:
    def test_circuit_state_values(self) -> None:
        values = [state.value for state in CircuitState]

        assert values == ["closed", "open", "half_open", "forced_open", "disabled"]


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "error", "fragment"),
        [
            ({"failure_threshold": 0}, ValueError, "failure_threshold"),
            ({"failure_threshold": -1}, ValueError, "failure_threshold"),
            ({"failure_threshold": 1.5}, TypeError, "failure_threshold"),
            ({"failure_threshold": True}, TypeError, "failure_threshold"),
            ({"failure_threshold": "5"}, TypeError, "failure_threshold"),
            ({"failure_threshold": math.nan}, TypeError, "failure_threshold"),
            ({"half_open_max_calls": 0}, ValueError, "half_open_max_calls"),
            ({"half_open_max_calls": -2}, ValueError, "half_open_max_calls"),
            ({"half_open_max_calls": False}, TypeError, "half_open_max_calls"),
            ({"half_open_max_calls": 2.0}, TypeError, "half_open_max_calls"),
            ({"success_threshold": 0}, ValueError, "success_threshold"),
            ({"success_threshold": -3}, ValueError, "success_threshold"),
            ({"success_threshold": True}, TypeError, "success_threshold"),
            ({"success_threshold": None}, TypeError, "success_threshold"),
            ({"reset_timeout": 0}, ValueError, "reset_timeout"),
            ({"reset_timeout": 0.0}, ValueError, "reset_timeout"),
            ({"reset_timeout": -1.0}, ValueError, "reset_timeout"),
            ({"reset_timeout": math.nan}, ValueError, "reset_timeout"),
            ({"reset_timeout": math.inf}, ValueError, "reset_timeout"),
            ({"reset_timeout": -math.inf}, ValueError, "reset_timeout"),
            ({"reset_timeout": True}, TypeError, "reset_timeout"),
            ({"reset_timeout": "30"}, TypeError, "reset_timeout"),
            ({"reset_timeout": None}, TypeError, "reset_timeout"),
            ({"failure_exceptions": ()}, ValueError, "failure_exceptions"),
            ({"failure_exceptions": OSError}, TypeError, "failure_exceptions"),
            ({"failure_exceptions": [OSError]}, TypeError, "failure_exceptions"),
            ({"failure_exceptions": (OSError, 1)}, TypeError, "failure_exceptions"),
            ({"failure_exceptions": (int,)}, TypeError, "failure_exceptions"),
            ({"failure_exceptions": (OSError(),)}, TypeError, "failure_exceptions"),
            (
                {"failure_exceptions": (KeyboardInterrupt,)},
                ValueError,
                "failure_exceptions",
            ),
            (
                {"failure_exceptions": (BaseException,)},
                ValueError,
                "failure_exceptions",
            ),
            ({"ignore_exceptions": None}, TypeError, "ignore_exceptions"),
            ({"ignore_exceptions": ("ValueError",)}, TypeError, "ignore_exceptions"),
            ({"ignore_exceptions": (str,)}, TypeError, "ignore_exceptions"),
            ({"name": 42}, TypeError, "name"),
            ({"clock": object()}, TypeError, "clock"),
        ],
        ids=lambda value: repr(value) if isinstance(value, dict) else "",
    )
    def test_breaker_rejects_bad_argument(
        self, kwargs: dict[str, Any], error: type[Exception], fragment: str
    ) -> None:
        with pytest.raises(error, match=fragment):
            CircuitBreaker(**kwargs)

    def test_breaker_error_message_shows_value(self) -> None:
        with pytest.raises(ValueError, match="got -7"):
            CircuitBreaker(failure_threshold=-7)

    def test_breaker_accepts_int_reset_timeout(self) -> None:
        breaker = CircuitBreaker(reset_timeout=5)

        assert breaker.reset_timeout == 5.0

    def test_breaker_defaults(self) -> None:
        breaker = CircuitBreaker()

        assert breaker.failure_threshold == 5
        assert breaker.reset_timeout == 30.0
        assert breaker.half_open_max_calls == 1
        assert breaker.name is None
        assert breaker.state is CLOSED

    def test_breaker_accepts_ignored_keyboard_interrupt(self) -> None:
        breaker = CircuitBreaker(ignore_exceptions=(KeyboardInterrupt, LookupError))

        assert breaker.state is CLOSED


class TestClosed:
    def test_closed_stays_closed_below_threshold(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        call_failing(breaker, 2)

        assert breaker.state is CLOSED
        assert breaker.failure_count == 2

    def test_closed_opens_at_exactly_threshold(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker, 2)

        call_failing(breaker, 1)

        assert breaker.state is OPEN
        assert breaker.failure_count == 3

    def test_closed_success_resets_failure_count(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker, 2)

        breaker.call(succeed)

        assert breaker.failure_count == 0

    def test_closed_call_outcome_after_transition_ignored(
        self, clock: FakeClock
    ) -> None:
        breaker = make_breaker(clock)

        def open_then_fail() -> None:
            call_failing(breaker, 3)
            raise DependencyDownError

        with pytest.raises(DependencyDownError):
            breaker.call(open_then_fail)

        assert breaker.state is OPEN
        assert breaker.failure_count == 3

    def test_closed_call_success_after_reopen_ignored(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        def open_then_succeed() -> str:
            call_failing(breaker, 3)
            return "ok"

        breaker.call(open_then_succeed)

        assert breaker.state is OPEN
        assert breaker.failure_count == 3

    def test_closed_needs_consecutive_failures(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker, 2)
        breaker.call(succeed)

        call_failing(breaker, 2)

        assert breaker.state is CLOSED

    def test_closed_ignored_exception_counts_as_neither(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, ignore_exceptions=(BadRequestError,))
        call_failing(breaker, 2)

        with pytest.raises(BadRequestError):
            breaker.call(_raise, BadRequestError("missing field"))

        assert breaker.failure_count == 2

    def test_closed_ignore_wins_over_failure_class(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, ignore_exceptions=(DependencyDownError,))

        call_failing(breaker, 5)

        assert breaker.state is CLOSED
        assert breaker.failure_count == 0

    def test_closed_uncounted_exception_counts_as_success(
        self, clock: FakeClock
    ) -> None:
        breaker = make_breaker(clock, failure_exceptions=(DependencyDownError,))
        call_failing(breaker, 2)

        with pytest.raises(BadRequestError):
            breaker.call(_raise, BadRequestError("missing field"))

        assert breaker.failure_count == 0

    def test_closed_subclass_of_failure_class_counts(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, failure_exceptions=(OSError,))

        for _ in range(3):
            with pytest.raises(ConnectionRefusedError):
                breaker.call(_raise, ConnectionRefusedError())

        assert breaker.state is OPEN

    @pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, GeneratorExit])
    def test_closed_base_exception_counts_as_neither(
        self, clock: FakeClock, exc_type: type[BaseException]
    ) -> None:
        breaker = make_breaker(clock, failure_exceptions=(Exception,))
        call_failing(breaker, 2)

        with pytest.raises(exc_type):
            breaker.call(_raise, exc_type())

        assert breaker.failure_count == 2

    def test_closed_retry_after_is_zero(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        assert breaker.retry_after() == 0.0


def _raise(exc: BaseException) -> None:
    raise exc


class TestOpen:
    def test_open_rejects_without_calling_fn(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)
        calls: list[int] = []

        with pytest.raises(CircuitOpenError):
            breaker.call(calls.append, 1)

        assert calls == []

    def test_open_error_names_breaker(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)

        with pytest.raises(CircuitOpenError, match="'db' is open"):
            breaker.call(succeed)

    def test_open_error_retry_after_is_full_timeout(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)

        with pytest.raises(CircuitOpenError) as caught:
            breaker.call(succeed)

        assert caught.value.retry_after == 10.0

    def test_open_error_retry_after_counts_down(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)
        clock.advance(7.5)

        with pytest.raises(CircuitOpenError) as caught:
            breaker.call(succeed)

        assert caught.value.retry_after == 2.5

    def test_open_retry_after_method_counts_down(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)
        clock.advance(4.0)

        assert breaker.retry_after() == 6.0

    def test_open_retry_after_zero_once_timeout_passed(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)
        clock.advance(25.0)

        assert breaker.retry_after() == 0.0

    def test_open_stays_open_just_before_timeout(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)

        clock.advance(9.999)

        assert breaker.state is OPEN

    def test_open_half_opens_after_reset_timeout(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)

        clock.advance(10.0)

        assert breaker.state is HALF_OPEN

    def test_open_half_opens_lazily_on_call(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)
        transitions = record_transitions(breaker)
        clock.advance(10.0)
        assert transitions == []

        breaker.call(succeed)

        assert transitions == [(OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]

    def test_open_retry_after_does_not_transition(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)
        transitions = record_transitions(breaker)
        clock.advance(10.0)

        breaker.retry_after()

        assert transitions == []

    def test_open_keeps_failure_count(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)

        clock.advance(3.0)

        assert breaker.failure_count == 3


class TestHalfOpen:
    def test_half_open_success_closes(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        half_open_breaker(breaker, clock)

        breaker.call(succeed)

        assert breaker.state is CLOSED
        assert breaker.failure_count == 0

    def test_half_open_waits_for_success_threshold(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, success_threshold=3)
        half_open_breaker(breaker, clock)

        breaker.call(succeed)
        breaker.call(succeed)

        assert breaker.state is HALF_OPEN

    def test_half_open_closes_at_success_threshold(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, success_threshold=3)
        half_open_breaker(breaker, clock)

        for _ in range(3):
            breaker.call(succeed)

        assert breaker.state is CLOSED

    def test_half_open_failure_reopens(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        half_open_breaker(breaker, clock)

        call_failing(breaker)

        assert breaker.state is OPEN

    def test_half_open_failure_restarts_timeout(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        half_open_breaker(breaker, clock)
        clock.advance(4.0)

        call_failing(breaker)

        assert breaker.retry_after() == 10.0

    def test_half_open_reopened_half_opens_again(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        half_open_breaker(breaker, clock)
        call_failing(breaker)

        clock.advance(10.0)

        assert breaker.state is HALF_OPEN

    def test_half_open_failure_after_success_reopens(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, success_threshold=2)
        half_open_breaker(breaker, clock)
        breaker.call(succeed)

        call_failing(breaker)

        assert breaker.state is OPEN

    def test_half_open_rejects_extra_calls(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, half_open_max_calls=2)
        half_open_breaker(breaker, clock)
        breaker.acquire_permission()
        breaker.acquire_permission()

        with pytest.raises(CircuitOpenError, match="trial slots are full") as caught:
            breaker.acquire_permission()

        assert caught.value.retry_after == 0.0

    def test_half_open_retry_after_is_zero(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        half_open_breaker(breaker, clock)
        breaker.acquire_permission()

        assert breaker.retry_after() == 0.0

    def test_half_open_keyboard_interrupt_frees_slot(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        half_open_breaker(breaker, clock)
        with pytest.raises(KeyboardInterrupt):
            breaker.call(_raise, KeyboardInterrupt())

        breaker.call(succeed)

        assert breaker.state is CLOSED

    def test_half_open_keyboard_interrupt_keeps_state(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        half_open_breaker(breaker, clock)

        with pytest.raises(KeyboardInterrupt):
            breaker.call(_raise, KeyboardInterrupt())

        assert breaker.state is HALF_OPEN

    def test_half_open_ignored_exception_frees_slot(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, ignore_exceptions=(BadRequestError,))
        half_open_breaker(breaker, clock)
        with pytest.raises(BadRequestError):
            breaker.call(_raise, BadRequestError())

        permit = breaker.acquire_permission()

        assert isinstance(permit, Permit)

    def test_half_open_release_frees_slot(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        half_open_breaker(breaker, clock)
        breaker.acquire_permission().release()

        breaker.call(succeed)

        assert breaker.state is CLOSED


class TestPermit:
    def test_permit_first_outcome_wins(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, failure_threshold=1)
        permit = breaker.acquire_permission()
        permit.record_success()

        permit.record_failure(DependencyDownError())

        assert breaker.state is CLOSED

    def test_permit_release_then_failure_is_noop(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, failure_threshold=1)
        permit = breaker.acquire_permission()
        permit.release()

        permit.record_failure(DependencyDownError())

        assert breaker.failure_count == 0

    def test_permit_double_success_frees_one_slot(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, half_open_max_calls=2, success_threshold=3)
        half_open_breaker(breaker, clock)
        first = breaker.acquire_permission()
        breaker.acquire_permission()
        first.record_success()
        first.record_success()
        breaker.acquire_permission()

        with pytest.raises(CircuitOpenError):
            breaker.acquire_permission()

    def test_permit_failure_rejects_non_exception(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        permit = breaker.acquire_permission()
        bogus: Any = "timeout"

        with pytest.raises(TypeError, match="exc must be an exception"):
            permit.record_failure(bogus)

    def test_permit_generation_increments_per_transition(
        self, clock: FakeClock
    ) -> None:
        breaker = make_breaker(clock)
        before = breaker.acquire_permission()
        before.release()
        half_open_breaker(breaker, clock)

        after = breaker.acquire_permission()

        assert after.generation == before.generation + 2

    def test_permit_stale_failure_changes_nothing(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        stale = breaker.acquire_permission()
        half_open_breaker(breaker, clock)
        breaker.call(succeed)

        stale.record_failure(DependencyDownError())

        assert breaker.failure_count == 0

    def test_permit_stale_success_does_not_close(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        stale = breaker.acquire_permission()
        half_open_breaker(breaker, clock)

        stale.record_success()

        assert breaker.state is HALF_OPEN

    def test_permit_stale_trial_failure_does_not_reopen(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, half_open_max_calls=2)
        half_open_breaker(breaker, clock)
        stale = breaker.acquire_permission()
        breaker.call(succeed)

        stale.record_failure(DependencyDownError())

        assert breaker.state is CLOSED

    def test_permit_stale_release_frees_no_new_slot(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, half_open_max_calls=2)
        half_open_breaker(breaker, clock)
        stale = breaker.acquire_permission()
        call_failing(breaker)
        clock.advance(10.0)
        breaker.acquire_permission()
        breaker.acquire_permission()

        stale.release()

        with pytest.raises(CircuitOpenError):
            breaker.acquire_permission()

    def test_permit_repr_shows_settled(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        permit = breaker.acquire_permission()
        permit.record_success()

        assert repr(permit) == "Permit(generation=0, settled=True)"


class TestListeners:
    def test_listener_sees_transitions_in_order(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        transitions = record_transitions(breaker)
        half_open_breaker(breaker, clock)
        call_failing(breaker)
        clock.advance(10.0)

        breaker.call(succeed)

        assert transitions == [
            (CLOSED, OPEN),
            (OPEN, HALF_OPEN),
            (HALF_OPEN, OPEN),
            (OPEN, HALF_OPEN),
            (HALF_OPEN, CLOSED),
        ]

    def test_listener_receives_breaker(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        seen: list[CircuitBreaker] = []
        breaker.add_listener(lambda source, old, new: seen.append(source))

        open_breaker(breaker)

        assert seen == [breaker]

    def test_listeners_run_in_order_added(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        order: list[str] = []
        breaker.add_listener(lambda source, old, new: order.append("first"))
        breaker.add_listener(lambda source, old, new: order.append("second"))

        open_breaker(breaker)

        assert order == ["first", "second"]

    def test_listener_runs_without_lock(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        states: list[CircuitState] = []
        breaker.add_listener(lambda source, old, new: states.append(source.state))

        open_breaker(breaker)

        assert states == [OPEN]

    def test_listener_not_called_without_transition(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        transitions = record_transitions(breaker)

        call_failing(breaker, 2)
        breaker.call(succeed)

        assert transitions == []

    def test_listener_error_is_logged(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock)
        breaker.add_listener(_broken_listener)

        open_breaker(breaker)

        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert errors[0].exc_info is not None
        assert "'db'" in errors[0].getMessage()

    def test_listener_error_keeps_breaker_working(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.add_listener(_broken_listener)
        open_breaker(breaker)
        clock.advance(10.0)

        result = breaker.call(succeed)

        assert result == "ok"
        assert breaker.state is CLOSED

    def test_listener_error_spares_later_listeners(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        breaker.add_listener(_broken_listener)
        transitions = record_transitions(breaker)

        open_breaker(breaker)

        assert transitions == [(CLOSED, OPEN)]

    def test_listener_error_keeps_call_exception(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, failure_threshold=1)
        breaker.add_listener(_broken_listener)

        with pytest.raises(DependencyDownError):
            breaker.call(fail)

    def test_remove_listener_stops_calls(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        calls: list[Transition] = []

        def listener(_: CircuitBreaker, old: CircuitState, new: CircuitState) -> None:
            calls.append((old, new))

        breaker.add_listener(listener)
        breaker.remove_listener(listener)

        open_breaker(breaker)

        assert calls == []

    def test_remove_listener_unknown_raises(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        with pytest.raises(ValueError, match="not registered"):
            breaker.remove_listener(_broken_listener)

    def test_add_listener_rejects_non_callable(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        bogus: Any = "print"

        with pytest.raises(TypeError, match="listener must be callable"):
            breaker.add_listener(bogus)


def _broken_listener(_: CircuitBreaker, old: CircuitState, new: CircuitState) -> None:
    raise RuntimeError("listener bug")


class TestLogging:
    def test_logging_warns_when_opening(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock)

        with caplog.at_level(logging.INFO, logger="syncq.breaker"):
            open_breaker(breaker)

        assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
            (
                logging.WARNING,
                "circuit breaker 'db' opened after consecutive failures "
                "(failure_count=3) and rejects calls for 10 s",
            )
        ]

    def test_logging_info_when_half_opening_and_closing(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock)
        half_open_breaker(breaker, clock)
        caplog.clear()

        with caplog.at_level(logging.INFO, logger="syncq.breaker"):
            breaker.call(succeed)

        assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
            (
                logging.INFO,
                "circuit breaker 'db' is half-open and admits trial calls "
                "(half_open_max_calls=1)",
            ),
            (
                logging.INFO,
                "circuit breaker 'db' closed because trial calls succeeded "
                "(success_threshold=1)",
            ),
        ]

    def test_logging_warns_when_reopening(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock)
        half_open_breaker(breaker, clock)
        assert breaker.state is HALF_OPEN
        caplog.clear()

        with caplog.at_level(logging.INFO, logger="syncq.breaker"):
            call_failing(breaker)

        assert [r.levelno for r in caplog.records] == [logging.WARNING]

    def test_logging_silent_on_ordinary_calls(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock)

        with caplog.at_level(logging.DEBUG, logger="syncq.breaker"):
            breaker.call(succeed)
            call_failing(breaker, 2)

        assert caplog.records == []


class TestFrontEnds:
    def test_call_passes_arguments(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        result = breaker.call(_join, "a", "b", sep="-")

        assert result == "a-b"

    def test_decorator_returns_result(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        wrapped = breaker(_join)

        assert wrapped("x", "y", sep="+") == "x+y"

    def test_decorator_keeps_metadata(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        wrapped = breaker(_join)

        assert wrapped.__name__ == "_join"
        assert wrapped.__doc__ == _join.__doc__
        assert getattr(wrapped, "__wrapped__", None) is _join

    def test_decorator_counts_failures(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        @breaker
        def fetch() -> None:
            raise DependencyDownError

        for _ in range(3):
            with pytest.raises(DependencyDownError):
                fetch()

        assert breaker.state is OPEN

    def test_decorator_rejects_when_open(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)
        calls: list[str] = []

        @breaker
        def fetch() -> None:
            calls.append("ran")

        with pytest.raises(CircuitOpenError):
            fetch()

        assert calls == []

    def test_decorator_rejects_non_callable(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        bogus: Any = 3

        with pytest.raises(TypeError, match="fn must be callable"):
            breaker(bogus)

    def test_context_manager_records_failure(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        with pytest.raises(DependencyDownError), breaker:
            raise DependencyDownError

        assert breaker.failure_count == 1

    def test_context_manager_records_success(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker, 2)

        with breaker:
            pass

        assert breaker.failure_count == 0

    def test_context_manager_returns_permit(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        with breaker as permit:
            assert isinstance(permit, Permit)

    def test_context_manager_skips_block_when_open(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        open_breaker(breaker)
        ran: list[bool] = []

        with pytest.raises(CircuitOpenError), breaker:
            ran.append(True)

        assert ran == []

    def test_context_manager_nests_in_one_thread(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, half_open_max_calls=2, success_threshold=2)
        half_open_breaker(breaker, clock)

        with breaker, breaker:
            pass

        assert breaker.state is CLOSED

    def test_context_manager_exit_without_enter_raises(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)

        with pytest.raises(RuntimeError, match="__exit__ called without __enter__"):
            breaker.__exit__(None, None, None)

    def test_repr_shows_state_and_failures(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        call_failing(breaker)

        assert repr(breaker) == "CircuitBreaker(name='db', state=closed, failures=1/3)"


def _join(*parts: str, sep: str) -> str:
    """Join the parts with a separator."""
    return sep.join(parts)


def _run_threads(count: int, target: Callable[[], None]) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=target, name=f"breaker-test-{i}") for i in range(count)
    ]
    for thread in threads:
        thread.start()
    return threads


def _join_all(threads: list[threading.Thread]) -> list[threading.Thread]:
    for thread in threads:
        thread.join(timeout=5.0)
    return [thread for thread in threads if thread.is_alive()]


class TestConcurrency:
    @pytest.mark.timeout(15)
    def test_half_open_limits_concurrent_trials(self, clock: FakeClock) -> None:
        thread_count = 32
        max_calls = 4
        breaker = make_breaker(clock, half_open_max_calls=max_calls)
        half_open_breaker(breaker, clock)
        start = threading.Barrier(thread_count)
        finish = threading.Event()
        counters_lock = threading.Lock()
        inside = 0
        max_inside = 0
        rejected = threading.Condition()
        rejections: list[CircuitOpenError] = []
        unexpected: list[BaseException] = []

        def trial() -> None:
            nonlocal inside, max_inside
            with counters_lock:
                inside += 1
                max_inside = max(max_inside, inside)
            if not finish.wait(timeout=5.0):
                raise TimeoutError("the test never released the trial calls")
            with counters_lock:
                inside -= 1

        def worker() -> None:
            try:
                start.wait(timeout=5.0)
                breaker.call(trial)
            except CircuitOpenError as exc:
                with rejected:
                    rejections.append(exc)
                    rejected.notify_all()
            except BaseException as exc:
                unexpected.append(exc)

        threads = _run_threads(thread_count, worker)
        with rejected:
            rejected.wait_for(
                lambda: len(rejections) == thread_count - max_calls, timeout=5.0
            )
        finish.set()
        alive = _join_all(threads)

        assert alive == []
        assert unexpected == []
        assert max_inside <= max_calls
        assert len(rejections) == thread_count - max_calls
        assert {exc.retry_after for exc in rejections} == {0.0}
        assert breaker.state is CLOSED

    @pytest.mark.timeout(15)
    def test_closed_runs_calls_concurrently(self, clock: FakeClock) -> None:
        thread_count = 8
        breaker = make_breaker(clock)
        start = threading.Barrier(thread_count)
        # Every call waits inside fn until all of them are inside, which only
        # works if the breaker holds no lock while fn runs.
        inside = threading.Barrier(thread_count)
        done: list[str] = []
        unexpected: list[BaseException] = []

        def worker() -> None:
            try:
                start.wait(timeout=5.0)
                done.append(breaker.call(_wait_then_succeed, inside))
            except BaseException as exc:
                unexpected.append(exc)

        alive = _join_all(_run_threads(thread_count, worker))

        assert alive == []
        assert unexpected == []
        assert len(done) == thread_count

    @pytest.mark.timeout(15)
    def test_closed_counts_failures_from_threads(self, clock: FakeClock) -> None:
        thread_count = 16
        breaker = make_breaker(clock, failure_threshold=1000)
        start = threading.Barrier(thread_count)

        def worker() -> None:
            start.wait(timeout=5.0)
            for _ in range(50):
                permit = breaker.acquire_permission()
                permit.record_failure(DependencyDownError())

        alive = _join_all(_run_threads(thread_count, worker))

        assert alive == []
        assert breaker.failure_count == 800


def _wait_then_succeed(barrier: threading.Barrier) -> str:
    barrier.wait(timeout=5.0)
    return "ok"


ALLOWED_TRANSITIONS = {
    (CLOSED, OPEN),
    (OPEN, HALF_OPEN),
    (HALF_OPEN, OPEN),
    (HALF_OPEN, CLOSED),
    # Only by reset().
    (OPEN, CLOSED),
}


class ReferenceBreaker:
    """A plain single-threaded model of the breaker's rules."""

    def __init__(
        self,
        failure_threshold: int,
        reset_timeout: float,
        max_calls: int,
        success_threshold: int,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.max_calls = max_calls
        self.success_threshold = success_threshold
        self.state = CLOSED
        self.generation = 0
        self.failures = 0
        self.opened_at = 0.0
        self.in_flight = 0
        self.successes = 0
        # When a trial slot last came free; the trial timeout is reset_timeout.
        self.last_freed = 0.0

    def move(self, state: CircuitState, now: float) -> None:
        self.state = state
        self.generation += 1
        self.in_flight = 0
        self.successes = 0
        self.last_freed = now
        if state is OPEN:
            self.opened_at = now
        if state is CLOSED:
            self.failures = 0

    def refresh(self, now: float) -> None:
        if self.state is OPEN and now >= self.opened_at + self.reset_timeout:
            self.move(HALF_OPEN, now)
        elif (
            self.state is HALF_OPEN
            and self.in_flight >= self.max_calls
            and now - self.last_freed >= self.reset_timeout
        ):
            self.move(OPEN, now)

    def retry_after(self, now: float) -> float:
        if self.state is OPEN:
            return max(0.0, self.opened_at + self.reset_timeout - now)
        return 0.0

    def admit(self, now: float) -> int | None:
        self.refresh(now)
        if self.state is OPEN:
            return None
        if self.state is HALF_OPEN:
            if self.in_flight >= self.max_calls:
                return None
            self.in_flight += 1
        return self.generation

    def settle(self, generation: int, outcome: str, now: float) -> None:
        if generation != self.generation:
            return
        if self.state is HALF_OPEN:
            self.in_flight -= 1
            self.last_freed = now
        if outcome == "success":
            self.failures = 0
            if self.state is HALF_OPEN:
                self.successes += 1
                if self.successes >= self.success_threshold:
                    self.move(CLOSED, now)
        elif outcome == "failure":
            self.failures += 1
            if self.state is HALF_OPEN or self.failures >= self.failure_threshold:
                self.move(OPEN, now)


OUTCOMES = ("success", "failure", "ignored", "interrupt", "uncounted", "release")


def _settle(permit: Permit, outcome: str) -> None:
    if outcome == "success":
        permit.record_success()
    elif outcome == "failure":
        permit.record_failure(DependencyDownError())
    elif outcome == "ignored":
        permit.record_failure(BadRequestError())
    elif outcome == "interrupt":
        permit.record_failure(KeyboardInterrupt())
    elif outcome == "uncounted":
        permit.record_failure(LookupError())
    else:
        permit.release()


def _model_outcome(outcome: str) -> str:
    if outcome == "uncounted":
        return "success"
    if outcome in ("ignored", "interrupt", "release"):
        return "neutral"
    return outcome


class BreakerMachine(RuleBasedStateMachine):
    """Drive a breaker and the reference model with the same random steps."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.breaker = CircuitBreaker(clock=self.clock)
        self.model = ReferenceBreaker(5, 30.0, 1, 1)
        self.transitions: list[Transition] = []
        self.held: list[tuple[Permit, int]] = []
        self.admitted = 0
        self.rejected = 0

    @initialize(
        failure_threshold=st.integers(1, 3),
        reset_timeout=st.sampled_from([1.0, 2.5, 4.0]),
        max_calls=st.integers(1, 3),
        success_threshold=st.integers(1, 3),
    )
    def build(
        self,
        failure_threshold: int,
        reset_timeout: float,
        max_calls: int,
        success_threshold: int,
    ) -> None:
        self.breaker = CircuitBreaker(
            failure_threshold,
            reset_timeout,
            max_calls,
            success_threshold=success_threshold,
            failure_exceptions=(DependencyDownError, BadRequestError),
            ignore_exceptions=(BadRequestError,),
            clock=self.clock,
        )
        self.model = ReferenceBreaker(
            failure_threshold, reset_timeout, max_calls, success_threshold
        )
        self.transitions = record_transitions(self.breaker)

    def acquire(self) -> Permit | None:
        now = self.clock.monotonic()
        expected = self.model.admit(now)
        try:
            permit = self.breaker.acquire_permission()
        except CircuitOpenError as exc:
            assert expected is None
            assert exc.retry_after == self.model.retry_after(now)
            self.rejected += 1
            return None
        assert expected == permit.generation
        self.admitted += 1
        return permit

    @rule()
    def reset(self) -> None:
        self.breaker.reset()
        self.model.refresh(self.clock.monotonic())
        if self.model.state is CLOSED:
            self.model.failures = 0
        else:
            self.model.move(CLOSED, self.clock.monotonic())

    @rule(outcome=st.sampled_from(OUTCOMES))
    def call(self, outcome: str) -> None:
        permit = self.acquire()
        if permit is not None:
            self.settle(permit, permit.generation, outcome)

    @precondition(lambda self: len(self.held) < 4)
    @rule()
    def hold(self) -> None:
        permit = self.acquire()
        if permit is not None:
            self.held.append((permit, permit.generation))

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data(), outcome=st.sampled_from(OUTCOMES))
    def settle_held(self, data: st.DataObject, outcome: str) -> None:
        index = data.draw(st.integers(0, len(self.held) - 1))
        permit, generation = self.held.pop(index)
        self.settle(permit, generation, outcome)

    def settle(self, permit: Permit, generation: int, outcome: str) -> None:
        _settle(permit, outcome)
        self.model.settle(generation, _model_outcome(outcome), self.clock.monotonic())

    @rule(seconds=st.sampled_from([0.0, 0.5, 1.0, 2.5, 4.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def read_state(self) -> None:
        self.model.refresh(self.clock.monotonic())

        assert self.breaker.state is self.model.state

    @invariant()
    def matches_model(self) -> None:
        assert self.breaker.failure_count == self.model.failures
        assert self.breaker.retry_after() == self.model.retry_after(
            self.clock.monotonic()
        )

    @invariant()
    def metrics_count_every_attempt(self) -> None:
        # metrics(), like `state`, half-opens a breaker whose open time is up.
        self.model.refresh(self.clock.monotonic())
        metrics = self.breaker.metrics()

        assert metrics.calls == self.admitted
        assert metrics.rejections == self.rejected
        assert metrics.failure_count == self.model.failures

    @invariant()
    def transitions_allowed(self) -> None:
        for transition in self.transitions:
            assert transition in ALLOWED_TRANSITIONS

    @invariant()
    def transitions_chain(self) -> None:
        for before, after in zip(self.transitions, self.transitions[1:]):
            assert before[1] is after[0]


BreakerMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None
)
TestBreakerStateMachine = BreakerMachine.TestCase


class TestBreakerTrialTimeout:
    def test_hung_trial_reopens_after_trial_timeout(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, trial_timeout=5.0)
        half_open_breaker(breaker, clock)
        breaker.acquire_permission()  # a trial that never reports
        clock.advance(5.0)

        with pytest.raises(CircuitOpenError) as caught:
            breaker.acquire_permission()

        assert breaker.state is OPEN
        assert caught.value.retry_after == 10.0

    def test_hung_trial_waits_out_trial_timeout(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, trial_timeout=5.0)
        half_open_breaker(breaker, clock)
        breaker.acquire_permission()
        clock.advance(4.9)

        with pytest.raises(CircuitOpenError, match="trial"):
            breaker.acquire_permission()

        assert breaker.state is HALF_OPEN

    def test_hung_trial_late_success_changes_nothing(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, trial_timeout=5.0)
        half_open_breaker(breaker, clock)
        hung = breaker.acquire_permission()
        clock.advance(5.0)
        assert breaker.state is OPEN

        hung.record_success()

        assert breaker.state is OPEN

    def test_trial_timeout_defaults_to_reset_timeout(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock)
        half_open_breaker(breaker, clock)
        breaker.acquire_permission()
        clock.advance(9.9)
        assert breaker.state is HALF_OPEN

        clock.advance(0.1)

        assert breaker.state is OPEN

    def test_ended_trial_restarts_trial_timeout(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, trial_timeout=5.0, success_threshold=3)
        half_open_breaker(breaker, clock)
        clock.advance(4.0)
        breaker.acquire_permission().record_success()
        breaker.acquire_permission()
        clock.advance(4.0)

        assert breaker.state is HALF_OPEN

    def test_hung_trial_reopening_is_logged(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        breaker = make_breaker(clock, trial_timeout=5.0)
        half_open_breaker(breaker, clock)
        breaker.acquire_permission()
        clock.advance(5.0)

        with caplog.at_level(logging.WARNING, logger="syncq.breaker"):
            assert breaker.state is OPEN

        assert "no trial call ended within the trial timeout" in caplog.text

    @pytest.mark.parametrize(
        ("value", "error"),
        [
            (0, ValueError),
            (-1.0, ValueError),
            (math.nan, ValueError),
            (math.inf, ValueError),
            (True, TypeError),
            ("5", TypeError),
        ],
    )
    def test_trial_timeout_rejects_bad_value(
        self, clock: FakeClock, value: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="trial_timeout"):
            make_breaker(clock, trial_timeout=value)
