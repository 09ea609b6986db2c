"""Tests for the limiter protocol, reservations and TokenBucket."""

from __future__ import annotations

import bisect
import itertools
import math
import queue
import threading
import time
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncq.clock import SYSTEM_CLOCK
from syncq.errors import RateLimitExceeded
from syncq.limiters import Limiter, LimiterBase, Reservation, TokenBucket
from syncq.testing import FakeClock

THREAD_JOIN_TIMEOUT = 5.0


def drained_bucket(
    clock: FakeClock, rate: float = 1.0, capacity: float = 1.0
) -> TokenBucket:
    """Return a bucket on `clock` with no tokens left."""
    bucket = TokenBucket(rate, capacity, clock=clock)
    assert bucket.try_acquire(capacity)
    return bucket


class _InterruptedSleep(Exception):
    """Raised by `InterruptingClock.sleep`, as KeyboardInterrupt would be."""


class InterruptingClock:
    """A clock frozen at 0.0 whose sleep raises at once."""

    def monotonic(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        raise _InterruptedSleep(seconds)


class TestReservation:
    def test_reservation_delay_counts_down(self, clock: FakeClock) -> None:
        reservation = Reservation(2.0, clock)

        clock.advance(0.5)

        assert reservation.delay() == 1.5

    def test_reservation_delay_is_zero_when_due(self, clock: FakeClock) -> None:
        reservation = Reservation(2.0, clock)

        clock.advance(3.0)

        assert reservation.delay() == 0.0

    def test_reservation_cancel_calls_callback(self, clock: FakeClock) -> None:
        calls: list[None] = []
        reservation = Reservation(1.0, clock, lambda: calls.append(None))

        reservation.cancel()

        assert calls == [None]

    def test_reservation_cancel_without_callback(self, clock: FakeClock) -> None:
        reservation = Reservation(1.0, clock)

        reservation.cancel()

        assert reservation.ready_at == 1.0

    def test_reservation_repr_shows_ready_at(self, clock: FakeClock) -> None:
        assert repr(Reservation(1.5, clock)) == "Reservation(ready_at=1.5)"


class TestLimiterBase:
    def test_limiter_base_is_abstract(self) -> None:
        with pytest.raises(TypeError):
            LimiterBase()  # type: ignore[abstract]

    def test_limiter_base_rejects_non_clock(self) -> None:
        with pytest.raises(TypeError, match="clock must provide"):
            TokenBucket(1, clock=object())  # type: ignore[arg-type]

    def test_limiter_base_defaults_to_system_clock(self) -> None:
        bucket = TokenBucket(1)

        reservation = bucket.reserve()

        assert reservation is not None
        assert reservation.ready_at <= SYSTEM_CLOCK.monotonic()

    def test_token_bucket_is_limiter(self, clock: FakeClock) -> None:
        assert isinstance(TokenBucket(1, clock=clock), Limiter)


class TestTokenBucketConstruction:
    @pytest.mark.parametrize(
        ("rate", "capacity"),
        [
            ("60/h", 60.0),
            ("100/15min", 100.0),
            ("5/s", 5.0),
            ("0.5/s", 1.0),
            (5, 5.0),
            (0.5, 1.0),
        ],
    )
    def test_token_bucket_default_capacity(
        self, clock: FakeClock, rate: float | str, capacity: float
    ) -> None:
        assert TokenBucket(rate, clock=clock).capacity == capacity

    def test_token_bucket_explicit_capacity(self, clock: FakeClock) -> None:
        assert TokenBucket("60/h", 3, clock=clock).capacity == 3.0

    def test_token_bucket_rate_from_string(self, clock: FakeClock) -> None:
        assert TokenBucket("120/min", clock=clock).rate == 2.0

    def test_token_bucket_rate_from_number(self, clock: FakeClock) -> None:
        assert TokenBucket(7, clock=clock).rate == 7.0

    def test_token_bucket_starts_full(self, clock: FakeClock) -> None:
        assert TokenBucket(1, 5, clock=clock).tokens == 5.0

    def test_token_bucket_repr(self, clock: FakeClock) -> None:
        bucket = TokenBucket(2, 5, clock=clock)

        assert repr(bucket) == "TokenBucket(rate=2.0, capacity=5.0)"

    @pytest.mark.parametrize(
        ("rate", "error"),
        [
            (0, ValueError),
            (-1, ValueError),
            (math.nan, ValueError),
            (math.inf, ValueError),
            ("0/s", ValueError),
            ("abc", ValueError),
            ("5/fortnight", ValueError),
            (True, TypeError),
            (None, TypeError),
            ([1], TypeError),
        ],
    )
    def test_token_bucket_rejects_rate(
        self, clock: FakeClock, rate: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="rate"):
            TokenBucket(rate, clock=clock)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("capacity", "error"),
        [
            (0, ValueError),
            (-1, ValueError),
            (math.nan, ValueError),
            (math.inf, ValueError),
            (True, TypeError),
            ("5", TypeError),
            ([5], TypeError),
        ],
    )
    def test_token_bucket_rejects_capacity(
        self, clock: FakeClock, capacity: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="capacity"):
            TokenBucket(1, capacity, clock=clock)  # type: ignore[arg-type]


class TestTokenBucketRefill:
    def test_token_bucket_refills_half_token(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)

        clock.advance(0.5)

        assert bucket.tokens == pytest.approx(0.5)

    def test_token_bucket_refills_continuously(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock, rate=4.0, capacity=4.0)

        observed = []
        for _ in range(4):
            clock.advance(0.125)
            observed.append(bucket.tokens)

        assert observed == pytest.approx([0.5, 1.0, 1.5, 2.0])

    def test_token_bucket_refill_stops_at_capacity(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock, rate=2.0, capacity=3.0)

        clock.advance(100.0)

        assert bucket.tokens == 3.0

    def test_token_bucket_refill_from_rate_string(self, clock: FakeClock) -> None:
        bucket = TokenBucket("60/min", clock=clock)
        assert bucket.try_acquire(60)

        clock.advance(1.5)

        assert bucket.tokens == pytest.approx(1.5)

    def test_token_bucket_burst_after_idle_is_capacity(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock, rate=1.0, capacity=3.0)
        clock.advance(60.0)

        grants = [bucket.try_acquire() for _ in range(5)]

        assert grants == [True, True, True, False, False]


class TestTokenBucketTryAcquire:
    def test_token_bucket_try_acquire_takes_tokens(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, 5, clock=clock)

        assert bucket.try_acquire(2)

        assert bucket.tokens == 3.0

    def test_token_bucket_try_acquire_until_empty(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, 3, clock=clock)

        grants = [bucket.try_acquire() for _ in range(4)]

        assert grants == [True, True, True, False]

    def test_token_bucket_try_acquire_failure_takes_nothing(
        self, clock: FakeClock
    ) -> None:
        bucket = drained_bucket(clock)
        clock.advance(0.5)

        assert not bucket.try_acquire()

        assert bucket.tokens == pytest.approx(0.5)

    def test_token_bucket_try_acquire_fraction(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)
        clock.advance(0.5)

        assert bucket.try_acquire(0.5)

    def test_token_bucket_try_acquire_exact_capacity(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, 2.5, clock=clock)

        assert bucket.try_acquire(2.5)

    def test_token_bucket_try_acquire_waits_behind_reservation(
        self, clock: FakeClock
    ) -> None:
        bucket = drained_bucket(clock)
        assert bucket.reserve() is not None
        clock.advance(1.0)

        assert not bucket.try_acquire()

    def test_token_bucket_try_acquire_after_reservation_repaid(
        self, clock: FakeClock
    ) -> None:
        bucket = drained_bucket(clock)
        assert bucket.reserve() is not None
        clock.advance(2.0)

        assert bucket.try_acquire()


class TestTokenBucketRetryAfter:
    def test_token_bucket_retry_after_zero_when_available(
        self, clock: FakeClock
    ) -> None:
        assert TokenBucket(1, 1, clock=clock).retry_after() == 0.0

    def test_token_bucket_retry_after_when_empty(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock, rate=2.0, capacity=2.0)

        assert bucket.retry_after() == pytest.approx(0.5)

    def test_token_bucket_retry_after_counts_refill(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)
        clock.advance(0.25)

        assert bucket.retry_after() == pytest.approx(0.75)

    def test_token_bucket_retry_after_scales_with_n(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock, rate=2.0, capacity=4.0)

        assert bucket.retry_after(3) == pytest.approx(1.5)

    def test_token_bucket_retry_after_includes_debt(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)
        assert bucket.reserve() is not None

        assert bucket.retry_after() == pytest.approx(2.0)

    def test_token_bucket_retry_after_takes_nothing(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)

        bucket.retry_after()

        assert bucket.tokens == 0.0


class TestTokenBucketReserve:
    def test_token_bucket_reserve_available_is_due(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, 1, clock=clock)

        reservation = bucket.reserve()

        assert reservation is not None
        assert reservation.delay() == 0.0

    def test_token_bucket_reserve_goes_into_debt(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)

        assert bucket.reserve(1) is not None

        assert bucket.tokens == -1.0

    def test_token_bucket_reserve_ready_when_refilled(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock, rate=2.0, capacity=2.0)
        clock.advance(0.25)

        reservation = bucket.reserve(1)

        assert reservation is not None
        assert reservation.ready_at == pytest.approx(0.5)

    def test_token_bucket_reserve_queues_in_order(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)

        reservations = [bucket.reserve() for _ in range(3)]

        ready_times = [r.ready_at for r in reservations if r is not None]
        assert ready_times == pytest.approx([1.0, 2.0, 3.0])

    def test_token_bucket_reserve_delay_counts_down(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)
        reservation = bucket.reserve()
        assert reservation is not None

        clock.advance(0.4)

        assert reservation.delay() == pytest.approx(0.6)

    def test_token_bucket_reserve_timeout_met(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)

        reservation = bucket.reserve(timeout=1.0)

        assert reservation is not None
        assert reservation.ready_at == pytest.approx(1.0)

    def test_token_bucket_reserve_timeout_exceeded(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)

        assert bucket.reserve(timeout=0.5) is None

    def test_token_bucket_reserve_timeout_takes_nothing(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)
        clock.advance(0.25)

        bucket.reserve(timeout=0.5)

        assert bucket.tokens == pytest.approx(0.25)

    def test_token_bucket_reserve_zero_timeout_needs_tokens_now(
        self, clock: FakeClock
    ) -> None:
        bucket = TokenBucket(1, 1, clock=clock)

        first = bucket.reserve(timeout=0)
        second = bucket.reserve(timeout=0)

        assert first is not None
        assert second is None


class TestTokenBucketCancel:
    def test_token_bucket_cancel_returns_tokens(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)
        reservation = bucket.reserve()
        assert reservation is not None

        reservation.cancel()

        assert bucket.tokens == 0.0

    def test_token_bucket_cancel_returns_partial_debt(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, 2, clock=clock)
        assert bucket.try_acquire(1)
        reservation = bucket.reserve(2)
        assert reservation is not None

        reservation.cancel()

        assert bucket.tokens == 1.0

    def test_token_bucket_cancel_is_idempotent(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)
        reservation = bucket.reserve()
        assert reservation is not None

        reservation.cancel()
        reservation.cancel()

        assert bucket.tokens == 0.0

    def test_token_bucket_cancel_after_due_does_nothing(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)
        reservation = bucket.reserve()
        assert reservation is not None
        clock.advance(1.5)

        reservation.cancel()

        assert bucket.tokens == pytest.approx(0.5)

    def test_token_bucket_cancel_without_debt_does_nothing(
        self, clock: FakeClock
    ) -> None:
        bucket = TokenBucket(1, 1, clock=clock)
        reservation = bucket.reserve()
        assert reservation is not None

        reservation.cancel()

        assert bucket.tokens == 0.0

    def test_token_bucket_cancel_behind_later_reservation_forfeits(
        self, clock: FakeClock
    ) -> None:
        bucket = drained_bucket(clock)
        earlier = bucket.reserve()
        later = bucket.reserve()
        assert earlier is not None
        assert later is not None

        earlier.cancel()

        assert bucket.tokens == -2.0

    def test_token_bucket_cancel_keeps_later_ready_time(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)
        first = bucket.reserve()
        assert first is not None
        cancelled = bucket.reserve()
        assert cancelled is not None

        cancelled.cancel()
        later = bucket.reserve()

        assert later is not None
        assert later.ready_at == pytest.approx(2.0)

    def test_token_bucket_cancel_from_threads_returns_once(
        self, clock: FakeClock
    ) -> None:
        bucket = drained_bucket(clock)
        reservation = bucket.reserve()
        assert reservation is not None
        barrier = threading.Barrier(8)

        def cancel() -> None:
            barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
            reservation.cancel()

        threads = [threading.Thread(target=cancel) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(THREAD_JOIN_TIMEOUT)

        assert not any(thread.is_alive() for thread in threads)
        assert bucket.tokens == 0.0

    def test_token_bucket_acquire_cancels_when_sleep_raises(self) -> None:
        bucket = TokenBucket(1, 1, clock=InterruptingClock())
        assert bucket.try_acquire()

        with pytest.raises(_InterruptedSleep):
            bucket.acquire()

        assert bucket.tokens == 0.0


class TestTokenBucketAcquire:
    def test_token_bucket_acquire_available_does_not_sleep(
        self, clock: FakeClock
    ) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        assert bucket.acquire(2)

        assert clock.sleeps == []

    def test_token_bucket_acquire_sleeps_until_ready(self) -> None:
        clock = FakeClock(auto_advance=True)
        bucket = drained_bucket(clock, rate=4.0, capacity=4.0)

        assert bucket.acquire(2)

        assert clock.sleeps == [pytest.approx(0.5)]

    def test_token_bucket_acquire_timeout_met_sleeps(self) -> None:
        clock = FakeClock(auto_advance=True)
        bucket = drained_bucket(clock)

        assert bucket.acquire(1, timeout=1.0)

        assert clock.sleeps == [pytest.approx(1.0)]

    @pytest.mark.timeout(5)
    def test_token_bucket_acquire_timeout_returns_false(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)

        assert bucket.acquire(1, timeout=0.5) is False

    @pytest.mark.timeout(5)
    def test_token_bucket_acquire_timeout_does_not_wait(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)

        bucket.acquire(1, timeout=0.5)

        assert clock.sleeps == []

    @pytest.mark.timeout(5)
    def test_token_bucket_acquire_timeout_takes_nothing(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)
        clock.advance(0.25)
        before = bucket.tokens

        bucket.acquire(1, timeout=0.5)

        assert bucket.tokens == before

    @pytest.mark.timeout(5)
    def test_token_bucket_acquire_raises_on_timeout(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)
        clock.advance(0.25)

        with pytest.raises(RateLimitExceeded) as excinfo:
            bucket.acquire(1, timeout=0.5, raise_on_timeout=True)

        assert excinfo.value.retry_after == pytest.approx(0.75)

    @pytest.mark.timeout(5)
    def test_token_bucket_acquire_raise_takes_nothing(self, clock: FakeClock) -> None:
        bucket = drained_bucket(clock)

        with pytest.raises(RateLimitExceeded):
            bucket.acquire(1, timeout=0, raise_on_timeout=True)

        assert bucket.tokens == 0.0

    def test_token_bucket_acquire_raise_not_needed(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, 1, clock=clock)

        assert bucket.acquire(1, timeout=0, raise_on_timeout=True)

    @pytest.mark.timeout(10)
    def test_token_bucket_acquire_wakes_in_arrival_order(
        self, clock: FakeClock
    ) -> None:
        bucket = drained_bucket(clock)
        woken: queue.Queue[str] = queue.Queue()

        def wait_for_token(name: str, barrier: threading.Barrier) -> None:
            barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
            bucket.acquire()
            woken.put(name)

        names = ["first", "second", "third"]
        threads = []
        for count, name in enumerate(names, start=1):
            # Each waiter must be asleep before the next starts, which fixes
            # the order in which they reserve.
            barrier = threading.Barrier(2)
            thread = threading.Thread(target=wait_for_token, args=(name, barrier))
            thread.start()
            threads.append(thread)
            barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
            clock.wait_for_sleepers(count)

        order = []
        sleepers_after_wake = []
        for _ in names:
            clock.advance(1.0)
            order.append(woken.get(timeout=THREAD_JOIN_TIMEOUT))
            sleepers_after_wake.append(clock.sleepers)
        for thread in threads:
            thread.join(THREAD_JOIN_TIMEOUT)

        assert not any(thread.is_alive() for thread in threads)
        assert order == names
        assert sleepers_after_wake == [2, 1, 0]

    def test_token_bucket_acquire_rejects_n_over_capacity(
        self, clock: FakeClock
    ) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        with pytest.raises(ValueError, match=r"n=3 is larger than .*capacity=2\.0"):
            bucket.acquire(3)


class TestTokenBucketContextManager:
    def test_token_bucket_with_returns_bucket(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        with bucket as entered:
            assert entered is bucket

    def test_token_bucket_with_takes_one_token(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        with bucket:
            pass

        assert bucket.tokens == 1.0

    def test_token_bucket_with_blocks_when_empty(self) -> None:
        clock = FakeClock(auto_advance=True)
        bucket = drained_bucket(clock)

        with bucket:
            pass

        assert clock.sleeps == [pytest.approx(1.0)]

    def test_token_bucket_with_propagates_exception(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        with pytest.raises(KeyError), bucket:
            raise KeyError("inside")

        assert bucket.tokens == 1.0


class TestTokenBucketDecorator:
    def test_token_bucket_decorator_keeps_metadata(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        @bucket
        def fetch(url: str) -> str:
            """Fetch a URL."""
            return url

        assert fetch.__name__ == "fetch"
        assert fetch.__doc__ == "Fetch a URL."

    def test_token_bucket_decorator_passes_arguments(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        @bucket
        def join(first: str, *, second: str) -> str:
            return first + second

        assert join("a", second="b") == "ab"

    def test_token_bucket_decorator_takes_token_per_call(
        self, clock: FakeClock
    ) -> None:
        bucket = TokenBucket(1, 3, clock=clock)

        @bucket
        def noop() -> None:
            return None

        noop()
        noop()

        assert bucket.tokens == 1.0

    def test_token_bucket_decorator_blocks_when_empty(self) -> None:
        clock = FakeClock(auto_advance=True)
        bucket = TokenBucket(2, 2, clock=clock)

        @bucket
        def noop() -> None:
            return None

        for _ in range(4):
            noop()

        assert clock.sleeps == [pytest.approx(0.5), pytest.approx(0.5)]

    def test_token_bucket_decorator_propagates_exception(
        self, clock: FakeClock
    ) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        @bucket
        def fail() -> None:
            raise KeyError("inside")

        with pytest.raises(KeyError):
            fail()


_BAD_N = [
    (0, ValueError),
    (-1, ValueError),
    (-0.5, ValueError),
    (math.nan, ValueError),
    (math.inf, ValueError),
    (3, ValueError),
    (2.5, ValueError),
    (True, TypeError),
    ("1", TypeError),
    (None, TypeError),
]

_BAD_TIMEOUT = [
    (-1, ValueError),
    (math.nan, ValueError),
    (True, TypeError),
    ("1", TypeError),
]


class TestTokenBucketValidation:
    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_token_bucket_try_acquire_rejects_n(
        self, clock: FakeClock, n: object, error: type[Exception]
    ) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        with pytest.raises(error, match="n"):
            bucket.try_acquire(n)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_token_bucket_acquire_rejects_n(
        self, clock: FakeClock, n: object, error: type[Exception]
    ) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        with pytest.raises(error, match="n"):
            bucket.acquire(n)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_token_bucket_reserve_rejects_n(
        self, clock: FakeClock, n: object, error: type[Exception]
    ) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        with pytest.raises(error, match="n"):
            bucket.reserve(n)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_token_bucket_retry_after_rejects_n(
        self, clock: FakeClock, n: object, error: type[Exception]
    ) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        with pytest.raises(error, match="n"):
            bucket.retry_after(n)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("timeout", "error"), _BAD_TIMEOUT)
    def test_token_bucket_acquire_rejects_timeout(
        self, clock: FakeClock, timeout: object, error: type[Exception]
    ) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        with pytest.raises(error, match="timeout"):
            bucket.acquire(1, timeout)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("timeout", "error"), _BAD_TIMEOUT)
    def test_token_bucket_reserve_rejects_timeout(
        self, clock: FakeClock, timeout: object, error: type[Exception]
    ) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        with pytest.raises(error, match="timeout"):
            bucket.reserve(1, timeout=timeout)  # type: ignore[arg-type]

    def test_token_bucket_rejected_n_takes_nothing(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        with pytest.raises(ValueError):
            bucket.acquire(3)

        assert bucket.tokens == 2.0

    def test_token_bucket_n_error_names_capacity(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, 2, clock=clock)

        with pytest.raises(ValueError, match=r"n=3 is larger than .*capacity=2\.0"):
            bucket.try_acquire(3)


def assert_within_rate_bound(
    grants: Sequence[tuple[float, float]], rate: float, capacity: float
) -> None:
    """Assert that grants in any interval [a, b] total <= capacity + rate * (b - a).

    `grants` are (time, tokens) pairs in time order. Only intervals from one
    grant time to another need checking, because they are the tightest.
    """
    times = [grant_time for grant_time, _ in grants]
    totals = [0.0, *itertools.accumulate(tokens for _, tokens in grants)]
    for start in sorted(set(times)):
        first = bisect.bisect_left(times, start)
        for end in sorted(set(times[first:])):
            last = bisect.bisect_right(times, end)
            granted = totals[last] - totals[first]
            bound = capacity + rate * (end - start)
            assert granted <= bound + 1e-9 * (bound + 1.0), (start, end, granted)


class TestTokenBucketProperties:
    @settings(max_examples=150, deadline=None)
    @given(
        rate=st.floats(min_value=0.1, max_value=100.0),
        capacity=st.floats(min_value=1.0, max_value=50.0),
        steps=st.lists(
            st.tuples(
                st.floats(min_value=0.0, max_value=2.0),
                st.floats(min_value=0.01, max_value=1.0),
            ),
            max_size=60,
        ),
    )
    def test_token_bucket_grants_within_bound(
        self, rate: float, capacity: float, steps: list[tuple[float, float]]
    ) -> None:
        clock = FakeClock()
        bucket = TokenBucket(rate, capacity, clock=clock)
        grants = []

        for elapsed, fraction in steps:
            clock.advance(elapsed)
            n = fraction * capacity
            if bucket.try_acquire(n):
                grants.append((clock.monotonic(), n))

        assert_within_rate_bound(grants, rate, capacity)

    @settings(max_examples=150, deadline=None)
    @given(
        rate=st.floats(min_value=0.1, max_value=100.0),
        capacity=st.floats(min_value=1.0, max_value=50.0),
        steps=st.lists(
            st.tuples(
                st.floats(min_value=0.0, max_value=2.0),
                st.floats(min_value=0.01, max_value=1.0),
            ),
            max_size=60,
        ),
    )
    def test_token_bucket_grants_when_tokens_suffice(
        self, rate: float, capacity: float, steps: list[tuple[float, float]]
    ) -> None:
        clock = FakeClock()
        bucket = TokenBucket(rate, capacity, clock=clock)

        for elapsed, fraction in steps:
            clock.advance(elapsed)
            n = fraction * capacity
            available = bucket.tokens

            assert bucket.try_acquire(n) == (available >= n), (available, n)


def hammer(
    bucket: TokenBucket,
    use_acquire: bool,
    barrier: threading.Barrier,
    stop_at: list[float],
    grants: list[tuple[float, float]],
) -> None:
    """Take tokens until `stop_at[0]`, appending (before, after) per grant.

    The bucket's grant happened somewhere between the two real-clock times, so
    a check that uses only whole (before, after) spans is sound despite the
    scheduler delaying threads.
    """
    barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
    while time.monotonic() < stop_at[0]:
        before = time.monotonic()
        if use_acquire:
            granted = bucket.acquire(1, timeout=0.2)
        else:
            granted = bucket.try_acquire()
        after = time.monotonic()
        if granted:
            grants.append((before, after))


def assert_spans_within_rate_bound(
    spans: list[tuple[float, float]], rate: float, capacity: float
) -> None:
    """Assert the rate bound for grants known only to lie within (before, after).

    For an interval [a, b], every grant whose whole span lies inside it was
    granted inside it, so their count must not exceed capacity + rate * (b - a).
    """
    by_start = sorted(spans)
    for index, (start, _) in enumerate(by_start):
        ends = sorted(end for _, end in by_start[index:])
        for count, end in enumerate(ends, start=1):
            bound = capacity + rate * (end - start)
            assert count <= bound + 1e-6, (start, end, count)


class TestTokenBucketStress:
    @pytest.mark.slow
    @pytest.mark.timeout(20)
    def test_token_bucket_threads_stay_within_bound(self) -> None:
        rate, capacity, duration = 200.0, 20.0, 1.0
        bucket = TokenBucket(rate, capacity)
        barrier = threading.Barrier(33)
        stop_at = [math.inf]
        grants: list[tuple[float, float]] = []
        threads = [
            threading.Thread(
                target=hammer,
                args=(bucket, index % 2 == 0, barrier, stop_at, grants),
                name=f"test-hammer-{index}",
            )
            for index in range(32)
        ]
        for thread in threads:
            thread.start()

        started = time.monotonic()
        stop_at[0] = started + duration
        barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
        for thread in threads:
            thread.join(THREAD_JOIN_TIMEOUT)
        ended = time.monotonic()

        assert not any(thread.is_alive() for thread in threads)
        assert len(grants) <= capacity + rate * (ended - started) + 1e-6
        assert len(grants) >= capacity + rate * duration / 4
        assert_spans_within_rate_bound(grants, rate, capacity)
