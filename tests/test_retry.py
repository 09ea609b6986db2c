"""Tests of the retry policies and backoff strategies."""

from __future__ import annotations

import math

import pytest

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
