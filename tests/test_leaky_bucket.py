"""Tests for LeakyBucket: even spacing, burst tolerance, waiters and their bound."""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Sequence
from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncq.errors import RateLimitExceeded
from syncq.limiters import Limiter, Reservation
from syncq.limiters.leaky_bucket import LeakyBucket
from syncq.testing import FakeClock

THREAD_JOIN_TIMEOUT = 5.0
# Grant times are sums of floats, so the spacing may fall short by rounding.
EPSILON = 1e-9


def busy_bucket(clock: FakeClock, rate: float = 1.0, burst: float = 0) -> LeakyBucket:
    """Return a bucket on `clock` whose schedule is taken for the next 1 / rate s."""
    bucket = LeakyBucket(rate, burst=burst, clock=clock)
    for _ in range(1 + math.floor(burst)):
        assert bucket.try_acquire()
    return bucket


def reserve_all(bucket: LeakyBucket, count: int) -> list[Reservation]:
    """Reserve one token `count` times and return the reservations."""
    reservations = []
    for _ in range(count):
        reservation = bucket.reserve()
        assert reservation is not None
        reservations.append(reservation)
    return reservations


class _InterruptedSleep(Exception):
    """Raised by `InterruptingClock.sleep`, as KeyboardInterrupt would be."""


class InterruptingClock:
    """A clock frozen at 0.0 whose sleep raises at once."""

    def monotonic(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        raise _InterruptedSleep(seconds)


class TestLeakyBucketConstruction:
    def test_leaky_bucket_is_limiter(self, clock: FakeClock) -> None:
        assert isinstance(LeakyBucket(1, clock=clock), Limiter)

    def test_leaky_bucket_rate_from_string(self, clock: FakeClock) -> None:
        assert LeakyBucket("120/min", clock=clock).rate == 2.0

    def test_leaky_bucket_rate_from_number(self, clock: FakeClock) -> None:
        assert LeakyBucket(7, clock=clock).rate == 7.0

    def test_leaky_bucket_burst_defaults_to_zero(self, clock: FakeClock) -> None:
        assert LeakyBucket(1, clock=clock).burst == 0.0

    def test_leaky_bucket_max_waiting_defaults_to_none(self, clock: FakeClock) -> None:
        assert LeakyBucket(1, clock=clock).max_waiting is None

    def test_leaky_bucket_accepts_max_waiting_zero(self, clock: FakeClock) -> None:
        assert LeakyBucket(1, max_waiting=0, clock=clock).max_waiting == 0

    def test_leaky_bucket_repr(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(2, burst=1, max_waiting=3, clock=clock)

        assert repr(bucket) == "LeakyBucket(rate=2.0, burst=1.0, max_waiting=3)"

    def test_leaky_bucket_rejects_non_clock(self) -> None:
        with pytest.raises(TypeError, match="clock must provide"):
            LeakyBucket(1, clock=object())  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("rate", "error"),
        [
            (0, ValueError),
            (-1, ValueError),
            (math.nan, ValueError),
            (math.inf, ValueError),
            ("0/s", ValueError),
            ("abc", ValueError),
            (True, TypeError),
            (None, TypeError),
            ([1], TypeError),
        ],
    )
    def test_leaky_bucket_rejects_rate(
        self, clock: FakeClock, rate: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="rate"):
            LeakyBucket(rate, clock=clock)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("burst", "error"),
        [
            (-1, ValueError),
            (-0.5, ValueError),
            (math.nan, ValueError),
            (math.inf, ValueError),
            (True, TypeError),
            ("1", TypeError),
            (None, TypeError),
        ],
    )
    def test_leaky_bucket_rejects_burst(
        self, clock: FakeClock, burst: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="burst"):
            LeakyBucket(1, burst=burst, clock=clock)  # type: ignore[arg-type]

    def test_leaky_bucket_rejects_burst_overflowing(self, clock: FakeClock) -> None:
        with pytest.raises(ValueError, match=r"burst=1e\+308 is too large"):
            LeakyBucket(1e-10, burst=1e308, clock=clock)

    @pytest.mark.parametrize(
        ("max_waiting", "error"),
        [
            (-1, ValueError),
            (1.5, TypeError),
            (2.0, TypeError),
            (True, TypeError),
            ("2", TypeError),
        ],
    )
    def test_leaky_bucket_rejects_max_waiting(
        self, clock: FakeClock, max_waiting: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="max_waiting"):
            LeakyBucket(1, max_waiting=max_waiting, clock=clock)  # type: ignore[arg-type]


class TestLeakyBucketTryAcquire:
    def test_leaky_bucket_try_acquire_first_is_granted(self, clock: FakeClock) -> None:
        assert LeakyBucket(1, clock=clock).try_acquire()

    def test_leaky_bucket_try_acquire_rejects_second_at_once(
        self, clock: FakeClock
    ) -> None:
        bucket = busy_bucket(clock, rate=2.0)

        assert not bucket.try_acquire()

    def test_leaky_bucket_try_acquire_rejects_before_interval(
        self, clock: FakeClock
    ) -> None:
        bucket = busy_bucket(clock, rate=2.0)
        clock.advance(0.49)

        assert not bucket.try_acquire()

    def test_leaky_bucket_try_acquire_grants_after_interval(
        self, clock: FakeClock
    ) -> None:
        bucket = busy_bucket(clock, rate=2.0)
        clock.advance(0.5)

        assert bucket.try_acquire()

    def test_leaky_bucket_try_acquire_n_occupies_n_intervals(
        self, clock: FakeClock
    ) -> None:
        bucket = LeakyBucket(2, clock=clock)
        assert bucket.try_acquire(3)

        clock.advance(1.49)
        early = bucket.try_acquire()
        clock.advance(0.01)
        on_time = bucket.try_acquire()

        assert (early, on_time) == (False, True)

    def test_leaky_bucket_try_acquire_fraction(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock, rate=1.0)
        clock.advance(1.0)
        assert bucket.try_acquire(0.25)

        clock.advance(0.25)

        assert bucket.try_acquire()

    def test_leaky_bucket_try_acquire_large_n_when_idle(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, clock=clock)

        assert bucket.try_acquire(1000)

        assert bucket.retry_after() == 1000.0

    def test_leaky_bucket_idle_time_builds_no_credit(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        clock.advance(100.0)

        grants = [bucket.try_acquire() for _ in range(3)]

        assert grants == [True, False, False]

    def test_leaky_bucket_try_acquire_failure_takes_nothing(
        self, clock: FakeClock
    ) -> None:
        bucket = busy_bucket(clock)
        clock.advance(0.5)

        assert not bucket.try_acquire()

        assert bucket.retry_after() == 0.5

    def test_leaky_bucket_try_acquire_rejects_behind_reservation(
        self, clock: FakeClock
    ) -> None:
        bucket = busy_bucket(clock)
        assert bucket.reserve() is not None
        clock.advance(1.5)

        assert not bucket.try_acquire()

    def test_leaky_bucket_try_acquire_after_reservation_slot(
        self, clock: FakeClock
    ) -> None:
        bucket = busy_bucket(clock)
        assert bucket.reserve() is not None
        clock.advance(2.0)

        assert bucket.try_acquire()


class TestLeakyBucketBurst:
    def test_leaky_bucket_burst_grants_back_to_back(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, burst=2, clock=clock)

        grants = [bucket.try_acquire() for _ in range(4)]

        assert grants == [True, True, True, False]

    def test_leaky_bucket_burst_recovers_one_per_interval(
        self, clock: FakeClock
    ) -> None:
        bucket = busy_bucket(clock, rate=1.0, burst=2)
        clock.advance(1.0)

        grants = [bucket.try_acquire() for _ in range(2)]

        assert grants == [True, False]

    def test_leaky_bucket_fractional_burst(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, burst=0.5, clock=clock)
        assert bucket.try_acquire()
        assert not bucket.try_acquire()

        clock.advance(0.5)

        assert bucket.try_acquire()

    def test_leaky_bucket_burst_limits_n_ahead(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, burst=2, clock=clock)
        assert bucket.try_acquire(2.5)

        assert not bucket.try_acquire()

    def test_leaky_bucket_burst_reserve_ready_early(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock, rate=1.0, burst=2)

        reservation = bucket.reserve()

        assert reservation is not None
        assert reservation.ready_at == pytest.approx(1.0)

    def test_leaky_bucket_burst_retry_after(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock, rate=2.0, burst=1)

        assert bucket.retry_after() == pytest.approx(0.5)


class TestLeakyBucketRetryAfter:
    def test_leaky_bucket_retry_after_zero_when_idle(self, clock: FakeClock) -> None:
        assert LeakyBucket(1, clock=clock).retry_after() == 0.0

    def test_leaky_bucket_retry_after_one_interval(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock, rate=4.0)

        assert bucket.retry_after() == 0.25

    def test_leaky_bucket_retry_after_counts_down(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        clock.advance(0.25)

        assert bucket.retry_after() == 0.75

    def test_leaky_bucket_retry_after_ignores_n(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)

        assert bucket.retry_after(5) == bucket.retry_after(1)

    def test_leaky_bucket_retry_after_includes_waiters(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        reserve_all(bucket, 2)

        assert bucket.retry_after() == 3.0

    def test_leaky_bucket_retry_after_takes_nothing(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        clock.advance(1.0)

        bucket.retry_after()

        assert bucket.try_acquire()


class TestLeakyBucketReserve:
    def test_leaky_bucket_reserve_when_idle_is_due(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, clock=clock)

        reservation = bucket.reserve()

        assert reservation is not None
        assert reservation.delay() == 0.0

    def test_leaky_bucket_reserve_queues_evenly(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock, rate=2.0)

        reservations = reserve_all(bucket, 3)

        ready_times = [reservation.ready_at for reservation in reservations]
        assert ready_times == [0.5, 1.0, 1.5]

    def test_leaky_bucket_reserve_after_n_tokens(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(2, clock=clock)
        assert bucket.reserve(3) is not None

        reservation = bucket.reserve(1)

        assert reservation is not None
        assert reservation.ready_at == 1.5

    def test_leaky_bucket_reserve_starts_from_now(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        clock.advance(0.25)

        reservation = bucket.reserve()

        assert reservation is not None
        assert reservation.delay() == 0.75

    def test_leaky_bucket_reserve_timeout_met(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)

        reservation = bucket.reserve(timeout=1.0)

        assert reservation is not None
        assert reservation.ready_at == 1.0

    def test_leaky_bucket_reserve_timeout_exceeded(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)

        assert bucket.reserve(timeout=0.99) is None

    def test_leaky_bucket_reserve_timeout_takes_nothing(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)

        bucket.reserve(timeout=0.5)

        assert bucket.retry_after() == 1.0

    def test_leaky_bucket_reserve_zero_timeout_when_idle(
        self, clock: FakeClock
    ) -> None:
        bucket = LeakyBucket(1, clock=clock)

        assert bucket.reserve(timeout=0) is not None

    def test_leaky_bucket_reserve_infinite_timeout(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)

        assert bucket.reserve(timeout=math.inf) is not None

    def test_leaky_bucket_waiting_counts_reservations(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        reserve_all(bucket, 3)

        assert bucket.waiting == 3

    def test_leaky_bucket_waiting_drops_due(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        reserve_all(bucket, 3)

        clock.advance(2.0)

        assert bucket.waiting == 1

    def test_leaky_bucket_waiting_skips_immediate_grant(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, clock=clock)

        assert bucket.reserve() is not None

        assert bucket.waiting == 0


class TestLeakyBucketCancel:
    def test_leaky_bucket_cancel_newest_gives_back_place(
        self, clock: FakeClock
    ) -> None:
        bucket = busy_bucket(clock)
        _, cancelled = reserve_all(bucket, 2)

        cancelled.cancel()
        later = bucket.reserve()

        assert later is not None
        assert later.ready_at == cancelled.ready_at

    def test_leaky_bucket_cancel_only_reservation(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        (reservation,) = reserve_all(bucket, 1)
        clock.advance(0.5)

        reservation.cancel()
        clock.advance(0.5)

        assert bucket.try_acquire()

    def test_leaky_bucket_cancel_is_idempotent(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        _, cancelled = reserve_all(bucket, 2)
        cancelled.cancel()
        assert bucket.reserve() is not None

        cancelled.cancel()
        later = bucket.reserve()

        assert later is not None
        assert later.ready_at == 3.0

    def test_leaky_bucket_cancel_behind_later_forfeits(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        earlier, _ = reserve_all(bucket, 2)

        earlier.cancel()
        next_one = bucket.reserve()

        assert next_one is not None
        assert next_one.ready_at == 3.0

    def test_leaky_bucket_cancel_keeps_later_ready_time(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        earlier, later = reserve_all(bucket, 2)

        earlier.cancel()

        assert later.ready_at == 2.0

    def test_leaky_bucket_cancel_stops_counting_waiter(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        earlier, _ = reserve_all(bucket, 2)

        earlier.cancel()

        assert bucket.waiting == 1

    def test_leaky_bucket_cancel_after_due_does_nothing(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        (reservation,) = reserve_all(bucket, 1)
        clock.advance(1.5)

        reservation.cancel()

        assert bucket.retry_after() == 0.5

    def test_leaky_bucket_cancel_immediate_grant_does_nothing(
        self, clock: FakeClock
    ) -> None:
        bucket = LeakyBucket(1, clock=clock)
        reservation = bucket.reserve()
        assert reservation is not None

        reservation.cancel()

        assert bucket.retry_after() == 1.0

    @pytest.mark.timeout(10)
    def test_leaky_bucket_cancel_from_threads_returns_once(
        self, clock: FakeClock
    ) -> None:
        bucket = busy_bucket(clock)
        _, cancelled = reserve_all(bucket, 2)
        barrier = threading.Barrier(8)

        def cancel() -> None:
            barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
            cancelled.cancel()

        threads = [threading.Thread(target=cancel) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(THREAD_JOIN_TIMEOUT)

        assert not any(thread.is_alive() for thread in threads)
        assert bucket.retry_after() == 2.0

    def test_leaky_bucket_acquire_cancels_when_sleep_raises(self) -> None:
        bucket = LeakyBucket(1, clock=InterruptingClock())
        assert bucket.try_acquire()

        with pytest.raises(_InterruptedSleep):
            bucket.acquire()

        assert bucket.retry_after() == 1.0


class TestLeakyBucketMaxWaiting:
    def test_leaky_bucket_reserve_none_when_queue_full(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, max_waiting=2, clock=clock)
        assert bucket.try_acquire()
        reserve_all(bucket, 2)

        assert bucket.reserve() is None

    def test_leaky_bucket_full_queue_takes_nothing(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, max_waiting=2, clock=clock)
        assert bucket.try_acquire()
        reserve_all(bucket, 2)

        bucket.reserve()

        assert bucket.retry_after() == 3.0

    def test_leaky_bucket_immediate_grant_not_counted(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, max_waiting=1, clock=clock)

        reservations = [bucket.reserve() for _ in range(3)]

        assert [r is not None for r in reservations] == [True, True, False]

    def test_leaky_bucket_place_frees_when_due(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, max_waiting=2, clock=clock)
        assert bucket.try_acquire()
        reserve_all(bucket, 2)

        clock.advance(1.0)
        reservation = bucket.reserve()

        assert reservation is not None
        assert reservation.ready_at == 3.0

    def test_leaky_bucket_cancel_frees_place(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, max_waiting=2, clock=clock)
        assert bucket.try_acquire()
        earlier, _ = reserve_all(bucket, 2)

        earlier.cancel()

        assert bucket.reserve() is not None

    def test_leaky_bucket_max_waiting_zero_rejects_wait(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, max_waiting=0, clock=clock)
        assert bucket.try_acquire()

        assert bucket.reserve() is None

    def test_leaky_bucket_max_waiting_zero_grants_free_slot(
        self, clock: FakeClock
    ) -> None:
        bucket = LeakyBucket(1, max_waiting=0, clock=clock)

        assert bucket.acquire()

    @pytest.mark.timeout(5)
    def test_leaky_bucket_acquire_false_when_queue_full(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, max_waiting=1, clock=clock)
        assert bucket.try_acquire()
        reserve_all(bucket, 1)

        assert bucket.acquire() is False

    @pytest.mark.timeout(5)
    def test_leaky_bucket_acquire_full_queue_does_not_wait(
        self, clock: FakeClock
    ) -> None:
        bucket = LeakyBucket(1, max_waiting=1, clock=clock)
        assert bucket.try_acquire()
        reserve_all(bucket, 1)

        bucket.acquire()

        assert clock.sleeps == []

    @pytest.mark.timeout(5)
    def test_leaky_bucket_acquire_raises_when_queue_full(
        self, clock: FakeClock
    ) -> None:
        bucket = LeakyBucket(1, max_waiting=1, clock=clock)
        assert bucket.try_acquire()
        reserve_all(bucket, 1)

        with pytest.raises(RateLimitExceeded, match="max_waiting=1") as excinfo:
            bucket.acquire(raise_on_timeout=True)

        assert excinfo.value.retry_after == 2.0

    @pytest.mark.timeout(10)
    def test_leaky_bucket_max_waiting_bounds_threads(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(10, max_waiting=5, clock=clock)
        barrier = threading.Barrier(32)
        results: queue.Queue[Reservation | None] = queue.Queue()

        def reserve_once() -> None:
            barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
            results.put(bucket.reserve())

        threads = [threading.Thread(target=reserve_once) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(THREAD_JOIN_TIMEOUT)
        granted = [r for r in (results.get_nowait() for _ in threads) if r is not None]

        assert not any(thread.is_alive() for thread in threads)
        assert len(granted) == 6
        assert bucket.waiting == 5
        assert sorted(r.ready_at for r in granted) == pytest.approx(
            [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
        )


class TestLeakyBucketAcquire:
    def test_leaky_bucket_acquire_idle_does_not_sleep(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, clock=clock)

        assert bucket.acquire(5)

        assert clock.sleeps == []

    def test_leaky_bucket_acquire_sleeps_until_slot(self) -> None:
        clock = FakeClock(auto_advance=True)
        bucket = LeakyBucket(4, clock=clock)
        assert bucket.try_acquire(2)

        assert bucket.acquire()

        assert clock.sleeps == [0.5]

    def test_leaky_bucket_acquire_timeout_met_sleeps(self) -> None:
        clock = FakeClock(auto_advance=True)
        bucket = busy_bucket(clock)

        assert bucket.acquire(1, timeout=1.0)

        assert clock.sleeps == [1.0]

    @pytest.mark.timeout(5)
    def test_leaky_bucket_acquire_timeout_returns_false(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)

        assert bucket.acquire(1, timeout=0.5) is False

    @pytest.mark.timeout(5)
    def test_leaky_bucket_acquire_timeout_does_not_wait(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)

        bucket.acquire(1, timeout=0.5)

        assert clock.sleeps == []

    @pytest.mark.timeout(5)
    def test_leaky_bucket_acquire_timeout_takes_nothing(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)

        bucket.acquire(1, timeout=0.5)

        assert bucket.retry_after() == 1.0

    @pytest.mark.timeout(5)
    def test_leaky_bucket_acquire_raises_on_timeout(self, clock: FakeClock) -> None:
        bucket = busy_bucket(clock)
        clock.advance(0.25)

        with pytest.raises(RateLimitExceeded, match=r"timeout=0\.5") as excinfo:
            bucket.acquire(1, timeout=0.5, raise_on_timeout=True)

        assert excinfo.value.retry_after == 0.75

    def test_leaky_bucket_acquire_raise_not_needed(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, clock=clock)

        assert bucket.acquire(1, timeout=0, raise_on_timeout=True)

    @pytest.mark.timeout(10)
    def test_leaky_bucket_acquire_wakes_in_arrival_order(
        self, clock: FakeClock
    ) -> None:
        bucket = busy_bucket(clock)
        woken: queue.Queue[str] = queue.Queue()

        def wait_for_slot(name: str, barrier: threading.Barrier) -> None:
            barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
            bucket.acquire()
            woken.put(name)

        names = ["first", "second", "third"]
        threads = []
        for count, name in enumerate(names, start=1):
            # Each waiter must be asleep before the next starts, which fixes
            # the order in which they reserve.
            barrier = threading.Barrier(2)
            thread = threading.Thread(target=wait_for_slot, args=(name, barrier))
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


class TestLeakyBucketContextManager:
    def test_leaky_bucket_with_blocks_until_slot(self) -> None:
        clock = FakeClock(auto_advance=True)
        bucket = busy_bucket(clock, rate=2.0)

        with bucket as entered:
            assert entered is bucket

        assert clock.sleeps == [0.5]

    def test_leaky_bucket_decorator_spaces_calls(self) -> None:
        clock = FakeClock(auto_advance=True)
        bucket = LeakyBucket(4, clock=clock)

        @bucket
        def noop() -> None:
            return None

        for _ in range(3):
            noop()

        assert clock.sleeps == [0.25, 0.25]


_BAD_N = [
    (0, ValueError),
    (-1, ValueError),
    (-0.5, ValueError),
    (math.nan, ValueError),
    (math.inf, ValueError),
    (10**400, ValueError),
    (1e308, ValueError),
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


class TestLeakyBucketValidation:
    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_leaky_bucket_try_acquire_rejects_n(
        self, clock: FakeClock, n: object, error: type[Exception]
    ) -> None:
        bucket = LeakyBucket(0.5, clock=clock)

        with pytest.raises(error, match="n"):
            bucket.try_acquire(n)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_leaky_bucket_acquire_rejects_n(
        self, clock: FakeClock, n: object, error: type[Exception]
    ) -> None:
        bucket = LeakyBucket(0.5, clock=clock)

        with pytest.raises(error, match="n"):
            bucket.acquire(n)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_leaky_bucket_reserve_rejects_n(
        self, clock: FakeClock, n: object, error: type[Exception]
    ) -> None:
        bucket = LeakyBucket(0.5, clock=clock)

        with pytest.raises(error, match="n"):
            bucket.reserve(n)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_leaky_bucket_retry_after_rejects_n(
        self, clock: FakeClock, n: object, error: type[Exception]
    ) -> None:
        bucket = LeakyBucket(0.5, clock=clock)

        with pytest.raises(error, match="n"):
            bucket.retry_after(n)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("timeout", "error"), _BAD_TIMEOUT)
    def test_leaky_bucket_acquire_rejects_timeout(
        self, clock: FakeClock, timeout: object, error: type[Exception]
    ) -> None:
        bucket = LeakyBucket(1, clock=clock)

        with pytest.raises(error, match="timeout"):
            bucket.acquire(1, timeout)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("timeout", "error"), _BAD_TIMEOUT)
    def test_leaky_bucket_reserve_rejects_timeout(
        self, clock: FakeClock, timeout: object, error: type[Exception]
    ) -> None:
        bucket = LeakyBucket(1, clock=clock)

        with pytest.raises(error, match="timeout"):
            bucket.reserve(1, timeout=timeout)  # type: ignore[arg-type]

    def test_leaky_bucket_rejected_n_takes_nothing(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(1, clock=clock)

        with pytest.raises(ValueError):
            bucket.acquire(-1)

        assert bucket.try_acquire()

    def test_leaky_bucket_n_error_names_rate(self, clock: FakeClock) -> None:
        bucket = LeakyBucket(0.5, clock=clock)

        with pytest.raises(ValueError, match=r"n=1e\+308 is too large for rate=0\.5"):
            bucket.try_acquire(1e308)


def window_slack(
    grants: Sequence[tuple[float, float]], rate: float, burst: float
) -> float:
    """Return how far the grants stay clear of the spacing bound, < 0 if broken.

    `grants` are (time, tokens) pairs in the order granted. The bound is
    ``t_j - t_i >= (n_i + ... + n_(j-1) - burst) / rate`` for every i < j, which
    with burst 0 includes the spacing of consecutive grants.
    """
    slack = math.inf
    for j in range(1, len(grants)):
        slack = min(slack, candidate_slack(grants[:j], grants[j][0], rate, burst))
    return slack


def candidate_slack(
    grants: Sequence[tuple[float, float]], at: float, rate: float, burst: float
) -> float:
    """Return how far a grant at time `at` after `grants` stays clear of the bound."""
    slack = math.inf
    tokens_since = 0.0
    for grant_time, tokens in reversed(grants):
        tokens_since += tokens
        slack = min(slack, (at - grant_time) - (tokens_since - burst) / rate)
    return slack


_RATES = st.floats(min_value=0.1, max_value=100.0)
_BURSTS = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=3.0))
# A step is (seconds to advance, seconds short of the next free slot, whether
# to reserve instead of try_acquire, tokens). If the second item is not None,
# the clock moves to that many seconds before the next free slot instead, so
# that steps land on the edges of the schedule.
Step = tuple[float, Optional[float], bool, float]
_STEPS = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=2.0),
        st.one_of(st.none(), st.just(0.0), st.floats(min_value=0.0, max_value=0.01)),
        st.booleans(),
        st.one_of(
            st.sampled_from([1.0, 2.0]), st.floats(min_value=0.01, max_value=3.0)
        ),
    ),
    max_size=60,
)


def advance_clock(
    clock: FakeClock, bucket: LeakyBucket, elapsed: float, short_of_slot: float | None
) -> float:
    """Advance `clock` as a step describes (see `Step`) and return the new time."""
    if short_of_slot is None:
        clock.advance(elapsed)
    else:
        clock.advance(max(0.0, bucket.retry_after() - short_of_slot))
    return clock.monotonic()


def run_steps(
    bucket: LeakyBucket, clock: FakeClock, steps: list[Step]
) -> list[tuple[float, float]]:
    """Run the steps on `bucket` and return the grants as (time, tokens) pairs.

    A reservation's grant time is its ready time.
    """
    grants = []
    for elapsed, short_of_slot, use_reserve, tokens in steps:
        now = advance_clock(clock, bucket, elapsed, short_of_slot)
        if use_reserve:
            reservation = bucket.reserve(tokens)
            assert reservation is not None
            grants.append((reservation.ready_at, tokens))
        elif bucket.try_acquire(tokens):
            grants.append((now, tokens))
    return grants


class TestLeakyBucketProperties:
    @settings(max_examples=150, deadline=None)
    @given(rate=_RATES, burst=_BURSTS, steps=_STEPS)
    def test_leaky_bucket_grants_keep_spacing(
        self, rate: float, burst: float, steps: list[Step]
    ) -> None:
        clock = FakeClock()
        bucket = LeakyBucket(rate, burst=burst, clock=clock)

        grants = run_steps(bucket, clock, steps)

        assert [t for t, _ in grants] == sorted(t for t, _ in grants)
        assert window_slack(grants, rate, burst) >= -EPSILON

    @settings(max_examples=150, deadline=None)
    @given(rate=_RATES, burst=_BURSTS, steps=_STEPS)
    def test_leaky_bucket_try_acquire_wastes_no_slot(
        self, rate: float, burst: float, steps: list[Step]
    ) -> None:
        clock = FakeClock()
        bucket = LeakyBucket(rate, burst=burst, clock=clock)
        grants: list[tuple[float, float]] = []

        for elapsed, short_of_slot, use_reserve, tokens in steps:
            now = advance_clock(clock, bucket, elapsed, short_of_slot)
            reservation = bucket.reserve(tokens) if use_reserve else None
            if reservation is not None:
                grants.append((reservation.ready_at, tokens))
                continue
            waiter_ahead = bool(grants) and grants[-1][0] > now
            allowed = candidate_slack(grants, now, rate, burst)
            granted = bucket.try_acquire(tokens)
            if granted:
                grants.append((now, tokens))

            # Rejected only if a waiter is ahead or the grant would break the bound.
            assert granted or waiter_ahead or allowed < EPSILON, (now, allowed)

    @settings(max_examples=150, deadline=None)
    @given(rate=_RATES, burst=_BURSTS, steps=_STEPS)
    def test_leaky_bucket_reserve_takes_earliest_slot(
        self, rate: float, burst: float, steps: list[Step]
    ) -> None:
        clock = FakeClock()
        bucket = LeakyBucket(rate, burst=burst, clock=clock)
        grants: list[tuple[float, float]] = []

        for elapsed, short_of_slot, _, tokens in steps:
            now = advance_clock(clock, bucket, elapsed, short_of_slot)
            reservation = bucket.reserve(tokens)
            assert reservation is not None
            ready_at = reservation.ready_at
            slack = candidate_slack(grants, ready_at, rate, burst)
            grants.append((ready_at, tokens))

            assert ready_at >= now
            assert slack >= -EPSILON
            # Any earlier time than ready_at would have broken the bound.
            assert ready_at == now or slack < EPSILON, (now, ready_at, slack)

    @settings(max_examples=150, deadline=None)
    @given(
        rate=_RATES,
        max_waiting=st.integers(min_value=0, max_value=4),
        steps=_STEPS,
    )
    def test_leaky_bucket_max_waiting_bounds_reservations(
        self, rate: float, max_waiting: int, steps: list[Step]
    ) -> None:
        clock = FakeClock()
        bucket = LeakyBucket(rate, max_waiting=max_waiting, clock=clock)
        ready_times: list[float] = []

        for elapsed, short_of_slot, _, tokens in steps:
            now = advance_clock(clock, bucket, elapsed, short_of_slot)
            must_wait = bucket.retry_after() > 0
            waiting_before = sum(1 for ready_at in ready_times if ready_at > now)
            reservation = bucket.reserve(tokens)
            if reservation is not None:
                ready_times.append(reservation.ready_at)

            assert bucket.waiting <= max_waiting
            full = must_wait and waiting_before >= max_waiting
            assert (reservation is None) == full, (now, waiting_before)


class RecordingClock:
    """The system clock, remembering each thread's latest reading.

    A limiter reads the clock once inside its lock per `try_acquire`, so the
    reading left behind by a successful call is the exact time of the grant.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def monotonic(self) -> float:
        now = time.monotonic()
        self._local.last = now
        return now

    def last_reading(self) -> float:
        """Return the latest time that this thread read."""
        last: float = self._local.last
        return last

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class Recorder:
    """Lists that the stress threads share, without a lock.

    NOTE: this relies on list.append being atomic, which holds in CPython.
    """

    def __init__(self) -> None:
        self.exact: list[float] = []
        self.spans: list[tuple[float, float]] = []
        self.waiting: list[int] = []


def hammer(
    bucket: LeakyBucket,
    clock: RecordingClock,
    kind: int,
    *,
    barrier: threading.Barrier,
    stop_at: list[float],
    record: Recorder,
) -> None:
    """Take one token at a time until `stop_at[0]`, recording every grant.

    Kind 0 calls try_acquire and records the exact grant time. Kind 1 reserves
    and records the exact ready time before it sleeps. Kind 2 calls acquire and
    records the real-clock span around it, because the grant happened inside.
    """
    barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
    while time.monotonic() < stop_at[0]:
        if kind == 0:
            if bucket.try_acquire():
                granted_at = clock.last_reading()
                record.exact.append(granted_at)
                record.spans.append((granted_at, granted_at))
        elif kind == 1:
            reservation = bucket.reserve(timeout=0.2)
            record.waiting.append(bucket.waiting)
            if reservation is not None:
                record.exact.append(reservation.ready_at)
                record.spans.append((reservation.ready_at, reservation.ready_at))
                clock.sleep(reservation.delay())
        else:
            before = time.monotonic()
            granted = bucket.acquire(1, timeout=0.2)
            after = time.monotonic()
            if granted:
                record.spans.append((before, after))


def assert_spans_spaced(spans: list[tuple[float, float]], rate: float) -> None:
    """Assert that grants known only to lie within (before, after) are spaced.

    Every grant whose whole span lies inside an interval [a, b] was granted
    inside it, and one-token grants spaced 1 / rate apart fit at most
    ``1 + rate * (b - a)`` times into it.
    """
    by_start = sorted(spans)
    for index, (start, _) in enumerate(by_start):
        ends = sorted(end for _, end in by_start[index:])
        for count, end in enumerate(ends, start=1):
            assert count <= 1 + rate * (end - start) + 1e-6, (start, end, count)


class TestLeakyBucketStress:
    @pytest.mark.slow
    @pytest.mark.timeout(20)
    def test_leaky_bucket_threads_keep_spacing(self) -> None:
        rate, max_waiting, duration = 200.0, 8, 1.0
        clock = RecordingClock()
        bucket = LeakyBucket(rate, max_waiting=max_waiting, clock=clock)
        barrier = threading.Barrier(33)
        stop_at = [math.inf]
        record = Recorder()
        threads = [
            threading.Thread(
                target=hammer,
                args=(bucket, clock, index % 3),
                kwargs={"barrier": barrier, "stop_at": stop_at, "record": record},
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
        exact = sorted(record.exact)

        assert not any(thread.is_alive() for thread in threads)
        assert len(record.spans) <= 1 + rate * (ended - started) + 1e-6
        assert len(record.spans) >= rate * duration / 4
        assert min(b - a for a, b in zip(exact, exact[1:])) >= 1 / rate - EPSILON
        assert max(record.waiting) <= max_waiting
        assert_spans_spaced(record.spans, rate)
