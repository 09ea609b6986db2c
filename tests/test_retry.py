"""Tests of the retry policies and backoff strategies."""

from __future__ import annotations

import logging
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncq.errors import RateLimitExceeded
from syncq.retry import ExponentialBackoff, FixedBackoff, Retry
from syncq.testing import FakeClock


class Flaky:
    """A callable that raises `error` for its first `failures` calls."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


class SlowFailure:
    """A callable that takes `duration` seconds on `clock`, then raises OSError.

    Each error names its call ("failure 1", "failure 2", ...), and `starts`
    records the clock's time at the start of every call.
    """

    def __init__(self, clock: FakeClock, duration: float) -> None:
        self.clock = clock
        self.duration = duration
        self.starts: list[float] = []

    def __call__(self) -> str:
        self.starts.append(self.clock.monotonic())
        self.clock.advance(self.duration)
        raise OSError(f"failure {len(self.starts)}")


class LateClock(FakeClock):
    """An auto-advancing fake clock whose every sleep wakes `lateness` seconds late."""

    def __init__(self, lateness: float) -> None:
        super().__init__(auto_advance=True)
        self.lateness = lateness

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.advance(self.lateness)


class RecordingBackoff:
    """A backoff that returns what `inner` returns and records each delay."""

    def __init__(self, inner: ExponentialBackoff) -> None:
        self.inner = inner
        self.delays: list[float] = []

    def delay(self, attempt: int) -> float:
        value = self.inner.delay(attempt)
        self.delays.append(value)
        return value


class TestExponentialBackoff:
    def test_exponential_backoff_doubles_from_initial(self) -> None:
        backoff = ExponentialBackoff(initial=0.5, multiplier=2.0, max_delay=100.0)

        delays = [backoff.delay(attempt) for attempt in range(1, 5)]

        assert delays == [0.5, 1.0, 2.0, 4.0]

    def test_exponential_backoff_caps_at_max_delay(self) -> None:
        backoff = ExponentialBackoff(initial=1.0, multiplier=3.0, max_delay=10.0)

        assert backoff.delay(3) == 9.0
        assert backoff.delay(4) == 10.0

    def test_exponential_backoff_stays_capped_after_thousands(self) -> None:
        backoff = ExponentialBackoff(initial=0.1, multiplier=2.0, max_delay=30.0)

        delays = [backoff.delay(attempt) for attempt in (1_000, 5_000, 1_000_000)]

        assert delays == [30.0, 30.0, 30.0]

    def test_exponential_backoff_jitter_stays_in_range(self) -> None:
        backoff = ExponentialBackoff(
            initial=1.0, multiplier=2.0, max_delay=8.0, jitter=True
        )

        delays = [backoff.delay(attempt) for attempt in range(1, 200)]

        assert all(0.0 <= delay <= 8.0 for delay in delays)
        assert len(set(delays)) > 1

    def test_exponential_backoff_multiplier_one_is_constant(self) -> None:
        backoff = ExponentialBackoff(initial=2.0, multiplier=1.0, max_delay=5.0)

        assert backoff.delay(1) == 2.0
        assert backoff.delay(50) == 2.0

    def test_exponential_backoff_initial_above_cap_is_capped(self) -> None:
        backoff = ExponentialBackoff(initial=9.0, multiplier=2.0, max_delay=3.0)

        assert backoff.delay(1) == 3.0

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"initial": -1.0}, ValueError),
            ({"initial": math.nan}, ValueError),
            ({"initial": math.inf}, ValueError),
            ({"initial": "1"}, TypeError),
            ({"initial": True}, TypeError),
            ({"max_delay": -0.1}, ValueError),
            ({"multiplier": 0.5}, ValueError),
            ({"multiplier": math.nan}, ValueError),
        ],
    )
    def test_exponential_backoff_rejects_bad_parameters(
        self, kwargs: dict[str, object], error: type[Exception]
    ) -> None:
        with pytest.raises(error, match=next(iter(kwargs))):
            ExponentialBackoff(**kwargs)  # type: ignore[arg-type]

    @pytest.mark.parametrize("multiplier", [-1, 0.5, math.inf, 10**400])
    def test_exponential_backoff_names_multiplier_minimum(
        self, multiplier: float
    ) -> None:
        with pytest.raises(ValueError, match=r"multiplier must be .*>= 1"):
            ExponentialBackoff(multiplier=multiplier)


class TestFixedBackoff:
    def test_fixed_backoff_returns_same_delay(self) -> None:
        backoff = FixedBackoff(1.5)

        assert [backoff.delay(attempt) for attempt in (1, 2, 100)] == [1.5, 1.5, 1.5]

    @pytest.mark.parametrize("delay", [-1.0, math.nan, math.inf])
    def test_fixed_backoff_rejects_bad_delay(self, delay: float) -> None:
        with pytest.raises(ValueError, match="delay"):
            FixedBackoff(delay)


class TestRetry:
    def test_retry_call_returns_after_failures(self) -> None:
        clock = FakeClock(auto_advance=True)
        policy = Retry(3, backoff=FixedBackoff(2.0), clock=clock)
        flaky = Flaky(2, OSError("down"))

        result = policy.call(flaky)

        assert result == "ok"
        assert flaky.calls == 3
        assert clock.sleeps == [2.0, 2.0]

    def test_retry_call_reraises_last_error(self) -> None:
        policy = Retry(2, backoff=FixedBackoff(0.0), clock=FakeClock(auto_advance=True))
        flaky = Flaky(5, OSError("down"))

        with pytest.raises(OSError, match="down"):
            policy.call(flaky)

        assert flaky.calls == 2

    def test_retry_give_up_on_fails_at_once(self) -> None:
        policy = Retry(5, give_up_on=ValueError, clock=FakeClock(auto_advance=True))
        flaky = Flaky(5, ValueError("bad input"))

        with pytest.raises(ValueError, match="bad input"):
            policy.call(flaky)

        assert flaky.calls == 1

    def test_retry_only_retries_listed_errors(self) -> None:
        policy = Retry(5, retry_on=OSError, clock=FakeClock(auto_advance=True))
        flaky = Flaky(5, KeyError("missing"))

        with pytest.raises(KeyError):
            policy.call(flaky)

        assert flaky.calls == 1

    @pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(1)])
    def test_retry_never_retries_base_exceptions(self, error: BaseException) -> None:
        policy = Retry(5, retry_on=BaseException, clock=FakeClock(auto_advance=True))
        flaky = Flaky(5, error)

        with pytest.raises(type(error)):
            policy.call(flaky)

        assert flaky.calls == 1

    def test_retry_after_hint_is_floor_for_delay(self) -> None:
        clock = FakeClock(auto_advance=True)
        policy = Retry(2, backoff=FixedBackoff(0.1), clock=clock)
        flaky = Flaky(1, RateLimitExceeded("slow down", retry_after=7.0))

        policy.call(flaky)

        assert clock.sleeps == [7.0]

    def test_retry_after_hint_below_backoff_is_ignored(self) -> None:
        policy = Retry(2, backoff=FixedBackoff(3.0))

        delay = policy.next_delay(RateLimitExceeded("x", retry_after=1.0), 1)

        assert delay == 3.0

    def test_retry_ignores_non_numeric_retry_after(self) -> None:
        error = OSError("x")
        error.retry_after = "soon"  # type: ignore[attr-defined]
        policy = Retry(2, backoff=FixedBackoff(3.0))

        assert policy.next_delay(error, 1) == 3.0

    def test_retry_decorator_wraps_function(self) -> None:
        flaky = Flaky(1, OSError("down"))
        policy = Retry(2, backoff=FixedBackoff(0.0), clock=FakeClock(auto_advance=True))

        @policy
        def fetch() -> str:
            return flaky()

        assert fetch() == "ok"
        assert fetch.__name__ == "fetch"

    def test_retry_should_retry_counts_attempts(self) -> None:
        policy = Retry(3)

        assert policy.should_retry(OSError(), 2)
        assert not policy.should_retry(OSError(), 3)

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"attempts": 0}, ValueError),
            ({"attempts": -1}, ValueError),
            ({"attempts": 1.5}, TypeError),
            ({"attempts": True}, TypeError),
            ({"retry_on": "OSError"}, TypeError),
            ({"give_up_on": (ValueError, 3)}, TypeError),
            ({"backoff": 5}, TypeError),
            ({"backoff": "exponential"}, TypeError),
        ],
    )
    def test_retry_rejects_bad_parameters(
        self, kwargs: dict[str, object], error: type[Exception]
    ) -> None:
        with pytest.raises(error, match=next(iter(kwargs))):
            Retry(**kwargs)  # type: ignore[arg-type]


class TestRetryNextAttempt:
    def test_retry_next_attempt_returns_backoff_delay(self) -> None:
        policy = Retry(3, backoff=FixedBackoff(2.0))

        assert policy.next_attempt(OSError(), 1, 0.0) == 2.0

    def test_retry_next_attempt_gives_up_after_last_attempt(self) -> None:
        policy = Retry(3, backoff=FixedBackoff(2.0))

        assert policy.next_attempt(OSError(), 3, 0.0) is None

    def test_retry_next_attempt_gives_up_on_unretried_error(self) -> None:
        policy = Retry(3, give_up_on=ValueError)

        assert policy.next_attempt(ValueError(), 1, 0.0) is None

    def test_retry_next_attempt_applies_retry_after_floor(self) -> None:
        policy = Retry(3, backoff=FixedBackoff(0.5), budget=10.0)

        delay = policy.next_attempt(RateLimitExceeded("x", retry_after=4.0), 1, 1.0)

        assert delay == 4.0

    def test_retry_next_attempt_allows_start_before_deadline(self) -> None:
        policy = Retry(3, backoff=FixedBackoff(2.0), budget=10.0)

        assert policy.next_attempt(OSError(), 1, 7.9) == 2.0

    def test_retry_next_attempt_rejects_start_at_deadline(self) -> None:
        policy = Retry(3, backoff=FixedBackoff(2.0), budget=10.0)

        assert policy.next_attempt(OSError(), 1, 8.0) is None

    def test_retry_next_attempt_gives_up_once_budget_spent(self) -> None:
        policy = Retry(3, backoff=FixedBackoff(0.0), budget=10.0)

        assert policy.next_attempt(OSError(), 1, 10.0) is None

    def test_retry_next_attempt_hint_past_budget_gives_up(self) -> None:
        policy = Retry(3, backoff=FixedBackoff(0.1), budget=10.0)

        delay = policy.next_attempt(RateLimitExceeded("x", retry_after=30.0), 1, 0.0)

        assert delay is None

    def test_retry_next_attempt_ignores_elapsed_without_budget(self) -> None:
        policy = Retry(3, backoff=FixedBackoff(2.0))

        assert policy.next_attempt(OSError(), 1, 1e9) == 2.0

    def test_retry_next_attempt_stays_capped_after_thousands(self) -> None:
        backoff = ExponentialBackoff(initial=0.1, multiplier=2.0, max_delay=30.0)
        policy = Retry(10_000, backoff=backoff, budget=100.0)

        assert policy.next_attempt(OSError(), 5_000, 60.0) == 30.0

    @pytest.mark.parametrize(
        ("elapsed", "error"),
        [
            (-1.0, ValueError),
            (math.nan, ValueError),
            (math.inf, ValueError),
            (True, TypeError),
            ("1", TypeError),
        ],
    )
    def test_retry_next_attempt_rejects_bad_elapsed(
        self, elapsed: object, error: type[Exception]
    ) -> None:
        policy = Retry(3, budget=10.0)

        with pytest.raises(error, match="elapsed"):
            policy.next_attempt(OSError(), 1, elapsed)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("attempt", "error"),
        [(0, ValueError), (-2, ValueError), (True, TypeError), (1.0, TypeError)],
    )
    def test_retry_next_attempt_rejects_bad_attempt(
        self, attempt: object, error: type[Exception]
    ) -> None:
        policy = Retry(3)

        with pytest.raises(error, match="attempt"):
            policy.next_attempt(OSError(), attempt, 0.0)  # type: ignore[arg-type]


class TestRetryWithinBudget:
    def test_retry_within_budget_before_deadline(self) -> None:
        assert Retry(budget=10.0).within_budget(9.99)

    def test_retry_within_budget_false_at_deadline(self) -> None:
        assert not Retry(budget=10.0).within_budget(10.0)

    def test_retry_within_budget_always_without_budget(self) -> None:
        assert Retry().within_budget(1e12)

    def test_retry_within_budget_rejects_negative_elapsed(self) -> None:
        with pytest.raises(ValueError, match="elapsed"):
            Retry(budget=10.0).within_budget(-0.5)


class TestRetryBudget:
    def test_retry_budget_gives_up_without_sleeping(self) -> None:
        clock = FakeClock(auto_advance=True)
        policy = Retry(5, backoff=FixedBackoff(6.0), budget=10.0, clock=clock)
        flaky = Flaky(5, OSError("down"))

        with pytest.raises(OSError, match="down"):
            policy.call(flaky)

        assert flaky.calls == 2
        assert clock.sleeps == [6.0]
        assert clock.monotonic() == 6.0

    def test_retry_budget_allows_attempts_before_deadline(self) -> None:
        clock = FakeClock(auto_advance=True)
        policy = Retry(10, backoff=FixedBackoff(3.0), budget=10.0, clock=clock)
        flaky = Flaky(3, OSError("down"))

        result = policy.call(flaky)

        assert result == "ok"
        assert flaky.calls == 4
        assert clock.sleeps == [3.0, 3.0, 3.0]

    def test_retry_budget_rejects_attempt_at_deadline(self) -> None:
        clock = FakeClock(auto_advance=True)
        policy = Retry(10, backoff=FixedBackoff(5.0), budget=10.0, clock=clock)
        flaky = Flaky(10, OSError("down"))

        with pytest.raises(OSError):
            policy.call(flaky)

        assert flaky.calls == 2
        assert clock.sleeps == [5.0]

    def test_retry_budget_counts_attempt_durations(self) -> None:
        clock = FakeClock(start=100.0, auto_advance=True)
        policy = Retry(10, backoff=FixedBackoff(1.0), budget=10.0, clock=clock)
        work = SlowFailure(clock, duration=4.0)

        with pytest.raises(OSError):
            policy.call(work)

        assert work.starts == [100.0, 105.0]
        assert clock.sleeps == [1.0]

    def test_retry_budget_reraises_last_exception(self) -> None:
        clock = FakeClock(auto_advance=True)
        policy = Retry(10, backoff=FixedBackoff(1.0), budget=10.0, clock=clock)
        work = SlowFailure(clock, duration=4.0)

        with pytest.raises(OSError, match="failure 2"):
            policy.call(work)

    def test_retry_budget_rejects_hint_past_deadline(self) -> None:
        clock = FakeClock(auto_advance=True)
        policy = Retry(5, backoff=FixedBackoff(0.1), budget=10.0, clock=clock)
        flaky = Flaky(5, RateLimitExceeded("slow down", retry_after=30.0))

        with pytest.raises(RateLimitExceeded):
            policy.call(flaky)

        assert flaky.calls == 1
        assert clock.sleeps == []

    def test_retry_budget_keeps_hint_as_floor(self) -> None:
        clock = FakeClock(auto_advance=True)
        policy = Retry(5, backoff=FixedBackoff(0.1), budget=10.0, clock=clock)
        flaky = Flaky(1, RateLimitExceeded("slow down", retry_after=4.0))

        policy.call(flaky)

        assert clock.sleeps == [4.0]

    def test_retry_budget_restarts_for_each_call(self) -> None:
        clock = FakeClock(auto_advance=True)
        policy = Retry(10, backoff=FixedBackoff(4.0), budget=10.0, clock=clock)
        flaky = Flaky(100, OSError("down"))
        fetch = policy(flaky)

        for _ in range(2):
            with pytest.raises(OSError):
                fetch()

        assert flaky.calls == 6
        assert clock.sleeps == [4.0, 4.0, 4.0, 4.0]

    def test_retry_budget_gives_up_after_late_wakeup(self) -> None:
        clock = LateClock(lateness=7.0)
        policy = Retry(5, backoff=FixedBackoff(4.0), budget=10.0, clock=clock)
        error = OSError("down")
        flaky = Flaky(5, error)

        with pytest.raises(OSError) as caught:
            policy.call(flaky)

        assert caught.value is error
        assert flaky.calls == 1
        assert clock.sleeps == [4.0]

    def test_retry_budget_skips_clock_without_budget(self) -> None:
        clock = FakeClock(auto_advance=True)
        policy = Retry(3, backoff=FixedBackoff(1.0), clock=clock)
        work = SlowFailure(clock, duration=1_000.0)

        with pytest.raises(OSError, match="failure 3"):
            policy.call(work)

        assert clock.sleeps == [1.0, 1.0]


class TestRetryLogging:
    def test_retry_logs_retry_at_debug(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG, logger="syncq.retry")
        policy = Retry(2, backoff=FixedBackoff(1.0), clock=FakeClock(auto_advance=True))

        policy.call(Flaky(1, OSError("down")))

        assert [record.levelno for record in caplog.records] == [logging.DEBUG]
        assert "retrying" in caplog.records[0].getMessage()
        assert "Flaky" in caplog.records[0].getMessage()

    def test_retry_logs_give_up_when_attempts_run_out(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="syncq.retry")
        policy = Retry(1, clock=FakeClock(auto_advance=True))

        with pytest.raises(OSError):
            policy.call(Flaky(1, OSError("down")))

        message = caplog.records[-1].getMessage()
        assert "giving up" in message
        assert "no attempts left" in message

    def test_retry_logs_budget_as_give_up_reason(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="syncq.retry")
        clock = FakeClock(auto_advance=True)
        policy = Retry(5, backoff=FixedBackoff(20.0), budget=10.0, clock=clock)

        with pytest.raises(OSError):
            policy.call(Flaky(5, OSError("down")))

        message = caplog.records[-1].getMessage()
        assert "giving up" in message
        assert "budget of 10.000 s" in message

    def test_retry_logs_late_wakeup_as_budget_give_up(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="syncq.retry")
        clock = LateClock(lateness=7.0)
        policy = Retry(5, backoff=FixedBackoff(4.0), budget=10.0, clock=clock)

        with pytest.raises(OSError):
            policy.call(Flaky(5, OSError("down")))

        message = caplog.records[-1].getMessage()
        assert "giving up" in message
        assert "past the budget of 10.000 s" in message

    def test_retry_next_attempt_logs_given_name(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="syncq.retry")
        policy = Retry(3, backoff=FixedBackoff(1.0))

        policy.next_attempt(OSError(), 1, 0.0, name="task fetch-42")

        assert "task fetch-42" in caplog.records[0].getMessage()


class TestRetryBudgetValidation:
    def test_retry_budget_defaults_to_none(self) -> None:
        assert Retry().budget is None

    @pytest.mark.parametrize(("budget", "seconds"), [(5, 5.0), (0.25, 0.25)])
    def test_retry_budget_accepts_positive_seconds(
        self, budget: float, seconds: float
    ) -> None:
        assert Retry(budget=budget).budget == seconds

    @pytest.mark.parametrize("budget", [math.inf, 10**400])
    def test_retry_budget_infinity_means_no_budget(self, budget: float) -> None:
        assert Retry(budget=budget).budget is None

    @pytest.mark.parametrize(
        ("budget", "error"),
        [
            (0, ValueError),
            (0.0, ValueError),
            (-1.0, ValueError),
            (-math.inf, ValueError),
            (-(10**400), ValueError),
            (math.nan, ValueError),
            (True, TypeError),
            (False, TypeError),
            ("10", TypeError),
            ([10], TypeError),
        ],
    )
    def test_retry_budget_rejects_bad_values(
        self, budget: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error) as caught:
            Retry(budget=budget)  # type: ignore[arg-type]

        assert "budget" in str(caught.value)
        assert repr(budget) in str(caught.value)

    def test_retry_repr_shows_budget(self) -> None:
        assert "budget=10.0" in repr(Retry(budget=10))


_ATTEMPTS = 200
_BUDGETS = st.floats(min_value=0.001, max_value=1_000.0)
_DURATIONS = st.lists(st.floats(min_value=0.0, max_value=50.0), min_size=1, max_size=20)
_STARTS = st.floats(min_value=0.0, max_value=1e6)
_HINTS = st.none() | st.floats(min_value=0.0, max_value=100.0)


def _jittered_backoff(data: st.DataObject) -> ExponentialBackoff:
    return ExponentialBackoff(
        initial=data.draw(st.floats(min_value=0.0, max_value=20.0), "initial"),
        multiplier=data.draw(st.floats(min_value=1.0, max_value=4.0), "multiplier"),
        max_delay=data.draw(st.floats(min_value=0.0, max_value=200.0), "max_delay"),
        jitter=True,
    )


class CyclingFailure:
    """A callable that takes the next of `durations` seconds on `clock`, then fails.

    The error carries `retry_after` when `hint` is set. `starts` records the
    clock's time at the start of every call.
    """

    def __init__(
        self, clock: FakeClock, durations: list[float], hint: float | None
    ) -> None:
        self.clock = clock
        self.durations = durations
        self.hint = hint
        self.starts: list[float] = []

    def __call__(self) -> str:
        duration = self.durations[len(self.starts) % len(self.durations)]
        self.starts.append(self.clock.monotonic())
        self.clock.advance(duration)
        if self.hint is None:
            raise OSError("down")
        raise RateLimitExceeded("slow down", retry_after=self.hint)


def _run_until_give_up(
    backoff: RecordingBackoff | ExponentialBackoff,
    budget: float,
    start: float,
    durations: list[float],
    hint: float | None,
) -> tuple[FakeClock, CyclingFailure]:
    clock = FakeClock(start=start, auto_advance=True)
    policy = Retry(_ATTEMPTS, backoff=backoff, budget=budget, clock=clock)
    work = CyclingFailure(clock, durations, hint)
    with pytest.raises((OSError, RateLimitExceeded)):
        policy.call(work)
    return clock, work


class TestRetryBudgetProperties:
    @pytest.mark.timeout(30)
    @settings(max_examples=300, deadline=None)
    @given(
        data=st.data(),
        budget=_BUDGETS,
        start=_STARTS,
        durations=_DURATIONS,
        hint=_HINTS,
    )
    def test_retry_budget_sleeps_never_exceed_budget(
        self,
        data: st.DataObject,
        budget: float,
        start: float,
        durations: list[float],
        hint: float | None,
    ) -> None:
        clock, _ = _run_until_give_up(
            _jittered_backoff(data), budget, start, durations, hint
        )

        assert math.fsum(clock.sleeps) <= budget

    @pytest.mark.timeout(30)
    @settings(max_examples=300, deadline=None)
    @given(
        data=st.data(),
        budget=_BUDGETS,
        start=_STARTS,
        durations=_DURATIONS,
        hint=_HINTS,
    )
    def test_retry_budget_no_attempt_starts_after_deadline(
        self,
        data: st.DataObject,
        budget: float,
        start: float,
        durations: list[float],
        hint: float | None,
    ) -> None:
        _, work = _run_until_give_up(
            _jittered_backoff(data), budget, start, durations, hint
        )

        late = [moment for moment in work.starts if moment - start >= budget]
        assert late == []

    @pytest.mark.timeout(30)
    @settings(max_examples=300, deadline=None)
    @given(
        data=st.data(),
        budget=_BUDGETS,
        start=_STARTS,
        durations=_DURATIONS,
        hint=_HINTS,
    )
    def test_retry_budget_gives_up_only_when_delay_overruns(
        self,
        data: st.DataObject,
        budget: float,
        start: float,
        durations: list[float],
        hint: float | None,
    ) -> None:
        backoff = RecordingBackoff(_jittered_backoff(data))

        clock, work = _run_until_give_up(backoff, budget, start, durations, hint)

        last_delay = max(backoff.delays[-1], 0.0 if hint is None else hint)
        # Zero delays and durations can use up every attempt within the budget.
        if len(work.starts) < _ATTEMPTS:
            assert clock.monotonic() - start + last_delay >= budget
