"""Tests for FixedWindow and SlidingWindow."""

from __future__ import annotations

import collections
import math
import queue
import threading
import time
import tracemalloc
from collections.abc import Sequence
from typing import Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncq.clock import SYSTEM_CLOCK
from syncq.errors import RateLimitExceeded
from syncq.limiters import Limiter, LimiterBase
from syncq.limiters.window import FixedWindow, SlidingWindow
from syncq.testing import FakeClock

THREAD_JOIN_TIMEOUT = 5.0

WindowLimiter = Union[FixedWindow, SlidingWindow]
WindowClass = Union[type[FixedWindow], type[SlidingWindow]]

WINDOW_CLASSES = pytest.mark.parametrize(
    "cls", [FixedWindow, SlidingWindow], ids=["fixed", "sliding"]
)


def filled(cls: WindowClass, clock: FakeClock, limit: int = 1) -> WindowLimiter:
    """Return a limiter on `clock` with a 1-second window and no room left."""
    limiter = cls(limit, 1.0, clock=clock)
    assert limiter.try_acquire(limit)
    return limiter


class _InterruptedSleep(Exception):
    """Raised by `InterruptingClock.sleep`, as KeyboardInterrupt would be."""


class InterruptingClock:
    """A clock frozen at 0.0 whose sleep raises at once."""

    def monotonic(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        raise _InterruptedSleep(seconds)


class TestWindowConstruction:
    @WINDOW_CLASSES
    def test_window_is_limiter(self, cls: WindowClass, clock: FakeClock) -> None:
        assert isinstance(cls(1, 1.0, clock=clock), Limiter)

    @WINDOW_CLASSES
    def test_window_exposes_limit(self, cls: WindowClass, clock: FakeClock) -> None:
        assert cls(5, 2, clock=clock).limit == 5.0

    @WINDOW_CLASSES
    def test_window_exposes_window(self, cls: WindowClass, clock: FakeClock) -> None:
        assert cls(5, 2, clock=clock).window == 2.0

    @WINDOW_CLASSES
    def test_window_repr(self, cls: WindowClass, clock: FakeClock) -> None:
        limiter = cls(5, 2, clock=clock)

        assert repr(limiter) == f"{cls.__name__}(limit=5.0, window=2.0)"

    @WINDOW_CLASSES
    def test_window_defaults_to_system_clock(self, cls: WindowClass) -> None:
        limiter = cls(1, 60.0)

        reservation = limiter.reserve()

        assert reservation is not None
        assert reservation.ready_at <= SYSTEM_CLOCK.monotonic()

    @WINDOW_CLASSES
    def test_window_rejects_non_clock(self, cls: WindowClass) -> None:
        with pytest.raises(TypeError, match="clock must provide"):
            cls(1, 1.0, clock=object())  # type: ignore[arg-type]

    @WINDOW_CLASSES
    @pytest.mark.parametrize(
        ("rate", "limit", "window"),
        [("100/min", 100.0, 60.0), ("100/15min", 100.0, 900.0), ("3/2s", 3.0, 2.0)],
    )
    def test_window_from_rate(
        self,
        cls: WindowClass,
        clock: FakeClock,
        rate: str,
        limit: float,
        window: float,
    ) -> None:
        limiter = cls.from_rate(rate, clock=clock)

        assert (limiter.limit, limiter.window) == (limit, window)

    @WINDOW_CLASSES
    def test_window_from_rate_uses_clock(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = cls.from_rate("1/s", clock=clock)
        assert limiter.try_acquire()

        clock.advance(1.0)

        assert limiter.try_acquire()

    @WINDOW_CLASSES
    @pytest.mark.parametrize("rate", [5, 5.0, None, b"5/s"])
    def test_window_from_rate_rejects_non_string(
        self, cls: WindowClass, rate: object
    ) -> None:
        with pytest.raises(TypeError, match="rate must be a string"):
            cls.from_rate(rate)  # type: ignore[arg-type]

    @WINDOW_CLASSES
    @pytest.mark.parametrize("rate", ["abc", "0/s", "5/fortnight", ""])
    def test_window_from_rate_rejects_bad_string(
        self, cls: WindowClass, rate: str
    ) -> None:
        with pytest.raises(ValueError, match="invalid rate"):
            cls.from_rate(rate)

    @WINDOW_CLASSES
    @pytest.mark.parametrize(
        ("limit", "error"),
        [
            (0, ValueError),
            (-1, ValueError),
            (math.nan, ValueError),
            (math.inf, ValueError),
            (True, TypeError),
            ("5", TypeError),
            (None, TypeError),
        ],
    )
    def test_window_rejects_limit(
        self, cls: WindowClass, clock: FakeClock, limit: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match=r"limit must be .*got"):
            cls(limit, 1.0, clock=clock)  # type: ignore[arg-type]

    @WINDOW_CLASSES
    @pytest.mark.parametrize(
        ("window", "error"),
        [
            (0, ValueError),
            (-1.0, ValueError),
            (math.nan, ValueError),
            (math.inf, ValueError),
            (False, TypeError),
            ("1s", TypeError),
            (None, TypeError),
        ],
    )
    def test_window_rejects_window(
        self,
        cls: WindowClass,
        clock: FakeClock,
        window: object,
        error: type[Exception],
    ) -> None:
        with pytest.raises(error, match=r"window must be .*seconds"):
            cls(1, window, clock=clock)  # type: ignore[arg-type]


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


class TestWindowValidation:
    @WINDOW_CLASSES
    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_window_try_acquire_rejects_n(
        self, cls: WindowClass, clock: FakeClock, n: object, error: type[Exception]
    ) -> None:
        limiter = cls(2, 1.0, clock=clock)

        with pytest.raises(error, match="n"):
            limiter.try_acquire(n)  # type: ignore[arg-type]

    @WINDOW_CLASSES
    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_window_acquire_rejects_n(
        self, cls: WindowClass, clock: FakeClock, n: object, error: type[Exception]
    ) -> None:
        limiter = cls(2, 1.0, clock=clock)

        with pytest.raises(error, match="n"):
            limiter.acquire(n)  # type: ignore[arg-type]

    @WINDOW_CLASSES
    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_window_reserve_rejects_n(
        self, cls: WindowClass, clock: FakeClock, n: object, error: type[Exception]
    ) -> None:
        limiter = cls(2, 1.0, clock=clock)

        with pytest.raises(error, match="n"):
            limiter.reserve(n)  # type: ignore[arg-type]

    @WINDOW_CLASSES
    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_window_retry_after_rejects_n(
        self, cls: WindowClass, clock: FakeClock, n: object, error: type[Exception]
    ) -> None:
        limiter = cls(2, 1.0, clock=clock)

        with pytest.raises(error, match="n"):
            limiter.retry_after(n)  # type: ignore[arg-type]

    @WINDOW_CLASSES
    @pytest.mark.parametrize(("timeout", "error"), _BAD_TIMEOUT)
    def test_window_acquire_rejects_timeout(
        self,
        cls: WindowClass,
        clock: FakeClock,
        timeout: object,
        error: type[Exception],
    ) -> None:
        limiter = cls(2, 1.0, clock=clock)

        with pytest.raises(error, match="timeout"):
            limiter.acquire(1, timeout)  # type: ignore[arg-type]

    @WINDOW_CLASSES
    @pytest.mark.parametrize(("timeout", "error"), _BAD_TIMEOUT)
    def test_window_reserve_rejects_timeout(
        self,
        cls: WindowClass,
        clock: FakeClock,
        timeout: object,
        error: type[Exception],
    ) -> None:
        limiter = cls(2, 1.0, clock=clock)

        with pytest.raises(error, match="timeout"):
            limiter.reserve(1, timeout=timeout)  # type: ignore[arg-type]

    @WINDOW_CLASSES
    def test_window_n_error_names_limit(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = cls(2, 1.0, clock=clock)

        with pytest.raises(ValueError, match=r"n=3 is larger than .*limit=2\.0"):
            limiter.try_acquire(3)

    @WINDOW_CLASSES
    def test_window_rejected_n_takes_nothing(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = cls(2, 1.0, clock=clock)

        with pytest.raises(ValueError):
            limiter.acquire(3)

        assert limiter.try_acquire(2)

    @WINDOW_CLASSES
    def test_window_accepts_float_n(self, cls: WindowClass, clock: FakeClock) -> None:
        limiter = cls(2, 1.0, clock=clock)

        grants = [limiter.try_acquire(0.5) for _ in range(5)]

        assert grants == [True, True, True, True, False]


class TestWindowAcquire:
    @WINDOW_CLASSES
    def test_window_acquire_available_does_not_sleep(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = cls(2, 1.0, clock=clock)

        assert limiter.acquire(2)

        assert clock.sleeps == []

    @WINDOW_CLASSES
    def test_window_acquire_sleeps_until_room(self, cls: WindowClass) -> None:
        clock = FakeClock(auto_advance=True)
        limiter = filled(cls, clock)
        clock.advance(0.25)

        assert limiter.acquire()

        assert clock.sleeps == [0.75]

    @WINDOW_CLASSES
    @pytest.mark.timeout(5)
    def test_window_acquire_timeout_returns_false(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = filled(cls, clock)

        assert limiter.acquire(1, timeout=0.5) is False

    @WINDOW_CLASSES
    @pytest.mark.timeout(5)
    def test_window_acquire_timeout_does_not_wait(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = filled(cls, clock)

        limiter.acquire(1, timeout=0.5)

        assert clock.sleeps == []

    @WINDOW_CLASSES
    @pytest.mark.timeout(5)
    def test_window_acquire_timeout_takes_nothing(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = filled(cls, clock)

        limiter.acquire(1, timeout=0.5)

        assert limiter.retry_after() == 1.0

    @WINDOW_CLASSES
    def test_window_acquire_timeout_met_sleeps(self, cls: WindowClass) -> None:
        clock = FakeClock(auto_advance=True)
        limiter = filled(cls, clock)

        assert limiter.acquire(1, timeout=1.0)

        assert clock.sleeps == [1.0]

    @WINDOW_CLASSES
    @pytest.mark.timeout(5)
    def test_window_acquire_raises_on_timeout(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = filled(cls, clock)
        clock.advance(0.25)

        with pytest.raises(RateLimitExceeded) as excinfo:
            limiter.acquire(1, timeout=0.5, raise_on_timeout=True)

        assert excinfo.value.retry_after == 0.75

    @WINDOW_CLASSES
    def test_window_acquire_cancels_when_sleep_raises(self, cls: WindowClass) -> None:
        limiter = cls(1, 1.0, clock=InterruptingClock())
        assert limiter.try_acquire()

        with pytest.raises(_InterruptedSleep):
            limiter.acquire()

        assert limiter.retry_after() == 1.0

    @WINDOW_CLASSES
    @pytest.mark.timeout(10)
    def test_window_acquire_wakes_in_arrival_order(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = filled(cls, clock)
        woken: queue.Queue[str] = queue.Queue()

        def wait_for_room(name: str, barrier: threading.Barrier) -> None:
            barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
            limiter.acquire()
            woken.put(name)

        names = ["first", "second", "third"]
        threads = []
        for count, name in enumerate(names, start=1):
            # Each waiter must be asleep before the next starts, which fixes
            # the order in which they reserve.
            barrier = threading.Barrier(2)
            thread = threading.Thread(target=wait_for_room, args=(name, barrier))
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

    @WINDOW_CLASSES
    def test_window_with_takes_one_token(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = cls(2, 1.0, clock=clock)

        with limiter as entered:
            assert entered is limiter

        assert limiter.try_acquire()
        assert not limiter.try_acquire()

    @WINDOW_CLASSES
    def test_window_decorator_blocks_when_full(self, cls: WindowClass) -> None:
        clock = FakeClock(auto_advance=True)
        limiter: LimiterBase = cls(2, 1.0, clock=clock)

        @limiter
        def noop() -> None:
            return None

        for _ in range(5):
            noop()

        assert clock.sleeps == [1.0, 1.0]


class TestWindowCancel:
    @WINDOW_CLASSES
    def test_window_cancel_newest_returns_tokens(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = filled(cls, clock)
        reservation = limiter.reserve()
        assert reservation is not None

        reservation.cancel()

        assert limiter.retry_after() == 1.0

    @WINDOW_CLASSES
    def test_window_cancel_newest_frees_its_slot(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = filled(cls, clock, limit=2)
        clock.advance(1.0)
        assert limiter.try_acquire()
        reservation = limiter.reserve(2)
        assert reservation is not None

        reservation.cancel()

        assert limiter.try_acquire()

    @WINDOW_CLASSES
    def test_window_cancel_from_middle_forfeits(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = filled(cls, clock)
        first = limiter.reserve()
        second = limiter.reserve()
        assert first is not None
        assert second is not None

        first.cancel()

        assert limiter.retry_after() == 3.0

    @WINDOW_CLASSES
    def test_window_cancel_after_due_keeps_tokens(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = filled(cls, clock)
        reservation = limiter.reserve()
        assert reservation is not None
        clock.advance(1.0)

        reservation.cancel()

        assert not limiter.try_acquire()

    @WINDOW_CLASSES
    def test_window_cancel_twice_returns_once(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = filled(cls, clock)
        first = limiter.reserve()
        assert first is not None
        first.cancel()
        second = limiter.reserve()
        assert second is not None

        first.cancel()

        assert limiter.retry_after() == 2.0

    @WINDOW_CLASSES
    def test_window_cancel_from_threads_returns_once(
        self, cls: WindowClass, clock: FakeClock
    ) -> None:
        limiter = filled(cls, clock)
        assert limiter.reserve() is not None
        reservation = limiter.reserve()
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
        assert limiter.retry_after() == 2.0


class TestFixedWindow:
    def test_fixed_window_counts_per_window(self, clock: FakeClock) -> None:
        limiter = FixedWindow(3, 1.0, clock=clock)

        grants = [limiter.try_acquire() for _ in range(4)]

        assert grants == [True, True, True, False]

    def test_fixed_window_resets_at_boundary(self, clock: FakeClock) -> None:
        limiter = filled(FixedWindow, clock, limit=3)

        clock.advance(1.0)

        assert limiter.try_acquire(3)

    def test_fixed_window_aligned_to_clock_zero(self) -> None:
        clock = FakeClock(0.75)
        limiter = filled(FixedWindow, clock)

        clock.advance(0.25)

        assert limiter.try_acquire()

    def test_fixed_window_full_until_boundary(self, clock: FakeClock) -> None:
        limiter = filled(FixedWindow, clock)

        clock.advance(math.nextafter(1.0, 0.0))

        assert not limiter.try_acquire()

    def test_fixed_window_allows_double_burst_at_boundary(
        self, clock: FakeClock
    ) -> None:
        limiter = FixedWindow(5, 1.0, clock=clock)
        clock.advance(0.99)
        before = [limiter.try_acquire() for _ in range(5)]

        clock.advance(0.02)
        after = [limiter.try_acquire() for _ in range(5)]

        assert before == [True] * 5
        assert after == [True] * 5

    def test_fixed_window_retry_after_is_window_end(self, clock: FakeClock) -> None:
        limiter = filled(FixedWindow, clock)
        clock.advance(0.25)

        assert limiter.retry_after() == 0.75

    def test_fixed_window_retry_after_zero_with_room(self, clock: FakeClock) -> None:
        limiter = FixedWindow(2, 1.0, clock=clock)
        assert limiter.try_acquire()

        assert limiter.retry_after() == 0.0

    def test_fixed_window_retry_after_in_new_window(self, clock: FakeClock) -> None:
        limiter = filled(FixedWindow, clock)
        clock.advance(5.5)

        assert limiter.retry_after() == 0.0

    def test_fixed_window_retry_after_behind_queue(self, clock: FakeClock) -> None:
        limiter = filled(FixedWindow, clock, limit=3)
        assert limiter.reserve(2) is not None

        assert (limiter.retry_after(1), limiter.retry_after(2)) == (1.0, 2.0)

    def test_fixed_window_queued_ready_times(self, clock: FakeClock) -> None:
        limiter = FixedWindow(3, 10.0, clock=clock)
        clock.advance(4.0)

        ready_times = []
        for n in [3, 2, 2, 1, 3, 1]:
            reservation = limiter.reserve(n)
            assert reservation is not None
            ready_times.append(reservation.ready_at)

        assert ready_times == [4.0, 10.0, 20.0, 20.0, 30.0, 40.0]

    def test_fixed_window_queue_skips_leftover_room(self, clock: FakeClock) -> None:
        limiter = FixedWindow(3, 1.0, clock=clock)
        assert limiter.try_acquire(2)
        big = limiter.reserve(2)
        assert big is not None

        small = limiter.reserve(1)

        assert small is not None
        assert small.ready_at == 1.0

    def test_fixed_window_try_acquire_waits_behind_queue(
        self, clock: FakeClock
    ) -> None:
        limiter = FixedWindow(3, 1.0, clock=clock)
        assert limiter.try_acquire(2)
        assert limiter.reserve(2) is not None

        assert not limiter.try_acquire(1)

    def test_fixed_window_try_acquire_after_queue_due(self, clock: FakeClock) -> None:
        limiter = filled(FixedWindow, clock, limit=3)
        assert limiter.reserve(2) is not None
        clock.advance(1.0)

        assert limiter.try_acquire(1)

    def test_fixed_window_reserve_timeout_is_window_end(self, clock: FakeClock) -> None:
        limiter = filled(FixedWindow, clock)
        clock.advance(0.5)

        assert limiter.reserve(timeout=0.25) is None
        assert limiter.reserve(timeout=0.5) is not None

    def test_fixed_window_cancel_restores_window_room(self, clock: FakeClock) -> None:
        limiter = FixedWindow(3, 1.0, clock=clock)
        assert limiter.try_acquire(2)
        assert limiter.reserve(2) is not None
        last = limiter.reserve(1)
        assert last is not None

        last.cancel()
        again = limiter.reserve(1)

        assert again is not None
        assert again.ready_at == 1.0

    def test_fixed_window_ready_times_start_their_window(
        self, clock: FakeClock
    ) -> None:
        window = 0.1
        limiter = FixedWindow(1, window, clock=clock)
        assert limiter.try_acquire()

        for index in range(1, 200):
            reservation = limiter.reserve()
            assert reservation is not None
            ready_at = reservation.ready_at
            before = math.nextafter(ready_at, -math.inf)

            assert math.floor(ready_at / window) == index
            assert math.floor(before / window) == index - 1


class TestSlidingWindow:
    def test_sliding_window_counts_last_window(self, clock: FakeClock) -> None:
        limiter = SlidingWindow(3, 1.0, clock=clock)
        assert limiter.try_acquire(2)
        clock.advance(0.5)

        grants = [limiter.try_acquire(), limiter.try_acquire()]

        assert grants == [True, False]

    def test_sliding_window_grant_expires_after_window(self, clock: FakeClock) -> None:
        limiter = filled(SlidingWindow, clock)

        clock.advance(1.0)

        assert limiter.try_acquire()

    def test_sliding_window_grant_counts_until_expiry(self, clock: FakeClock) -> None:
        limiter = filled(SlidingWindow, clock)

        clock.advance(math.nextafter(1.0, 0.0))

        assert not limiter.try_acquire()

    def test_sliding_window_expires_each_grant_separately(
        self, clock: FakeClock
    ) -> None:
        limiter = SlidingWindow(2, 1.0, clock=clock)
        assert limiter.try_acquire()
        clock.advance(0.5)
        assert limiter.try_acquire()

        clock.advance(0.5)

        assert limiter.try_acquire()
        assert not limiter.try_acquire()

    def test_sliding_window_rejects_burst_at_boundary(self, clock: FakeClock) -> None:
        limiter = SlidingWindow(5, 1.0, clock=clock)
        clock.advance(0.99)
        before = [limiter.try_acquire() for _ in range(5)]

        clock.advance(0.02)
        after = [limiter.try_acquire() for _ in range(5)]

        assert before == [True] * 5
        assert after == [False] * 5

    def test_sliding_window_retry_after_oldest_expiry(self, clock: FakeClock) -> None:
        limiter = SlidingWindow(2, 1.0, clock=clock)
        assert limiter.try_acquire()
        clock.advance(0.25)
        assert limiter.try_acquire()
        clock.advance(0.25)

        assert limiter.retry_after(1) == 0.5
        assert limiter.retry_after(2) == 0.75

    def test_sliding_window_retry_after_zero_with_room(self, clock: FakeClock) -> None:
        limiter = SlidingWindow(2, 1.0, clock=clock)
        assert limiter.try_acquire()

        assert limiter.retry_after() == 0.0

    def test_sliding_window_retry_after_behind_queue(self, clock: FakeClock) -> None:
        limiter = filled(SlidingWindow, clock, limit=3)
        assert limiter.reserve(2) is not None

        assert (limiter.retry_after(1), limiter.retry_after(2)) == (1.0, 2.0)

    def test_sliding_window_queued_ready_times(self, clock: FakeClock) -> None:
        limiter = SlidingWindow(3, 10.0, clock=clock)
        assert limiter.try_acquire(1)
        clock.advance(4.0)
        assert limiter.try_acquire(2)

        ready_times = []
        for n in [1, 2, 3, 1, 2]:
            reservation = limiter.reserve(n)
            assert reservation is not None
            ready_times.append(reservation.ready_at)

        assert ready_times == [10.0, 14.0, 24.0, 34.0, 34.0]

    def test_sliding_window_reserve_not_before_previous(self, clock: FakeClock) -> None:
        limiter = SlidingWindow(3, 1.0, clock=clock)
        assert limiter.try_acquire(1)
        clock.advance(0.5)
        assert limiter.try_acquire(2)
        assert limiter.reserve(2) is not None

        # Granting 1 token at 1.0 would keep the bound, but it would overtake
        # the reservation due at 1.5.
        small = limiter.reserve(1)

        assert small is not None
        assert small.ready_at == 1.5

    def test_sliding_window_try_acquire_waits_behind_queue(
        self, clock: FakeClock
    ) -> None:
        limiter = SlidingWindow(3, 1.0, clock=clock)
        assert limiter.try_acquire(2)
        assert limiter.reserve(3) is not None

        assert not limiter.try_acquire(1)

    def test_sliding_window_reserve_timeout_is_expiry(self, clock: FakeClock) -> None:
        limiter = filled(SlidingWindow, clock)
        clock.advance(0.5)

        assert limiter.reserve(timeout=0.25) is None
        assert limiter.reserve(timeout=0.5) is not None

    def test_sliding_window_fractions_stay_within_limit(self, clock: FakeClock) -> None:
        limiter = SlidingWindow(1, 1.0, clock=clock)
        grants = []

        for _ in range(40):
            if limiter.try_acquire(0.3):
                grants.append((clock.monotonic(), 0.3))
            clock.advance(0.1)

        assert len(grants) >= 6
        assert_sliding_bound(grants, 1.0, 1.0)

    def test_sliding_window_cancel_keeps_grants_that_still_count(self) -> None:
        clock = FakeClock()
        limiter = SlidingWindow(3, 3.5, clock=clock)
        clock.advance(0.25)
        assert limiter.try_acquire(3)
        clock.advance(1.25)
        reservation = limiter.reserve(0.5)
        assert reservation is not None
        assert reservation.ready_at == 3.75
        clock.advance(1.0)
        # Refused while the reservation waits; the grant at 0.25 still counts.
        assert limiter.reserve(0.5, timeout=0) is None

        reservation.cancel()

        assert not limiter.try_acquire(0.5)
        assert limiter.retry_after(0.5) == pytest.approx(1.25)

    @pytest.mark.parametrize("use_reserve", [False, True], ids=["try", "reserve"])
    def test_sliding_window_memory_stays_bounded(self, use_reserve: bool) -> None:
        clock = FakeClock()
        limiter = SlidingWindow(5, 1.0, clock=clock)
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            for _ in range(20_000):
                clock.advance(0.001)
                if use_reserve:
                    limiter.reserve()
                else:
                    limiter.try_acquire()
            growth = tracemalloc.get_traced_memory()[0] - baseline
        finally:
            tracemalloc.stop()

        # Unbounded, 20,000 entries would take over a megabyte.
        assert growth < 32_000


def fixed_window_sums(
    grants: Sequence[tuple[float, float]], window: float
) -> dict[int, float]:
    """Return the tokens granted per window number, summed in grant order."""
    sums: dict[int, float] = collections.defaultdict(float)
    for grant_time, tokens in grants:
        sums[math.floor(grant_time / window)] += tokens
    return sums


def assert_fixed_bound(
    grants: Sequence[tuple[float, float]], limit: float, window: float
) -> None:
    """Assert that no aligned window contains more than `limit` tokens."""
    for index, total in fixed_window_sums(grants, window).items():
        assert total <= limit * (1 + 1e-9), (index, total)


def sliding_sum(
    grants: Sequence[tuple[float, float]], at: float, window: float
) -> float:
    """Return the tokens of grants that still count at time `at`."""
    return sum(
        tokens
        for grant_time, tokens in grants
        if grant_time <= at < grant_time + window
    )


def assert_sliding_bound(
    grants: Sequence[tuple[float, float]], limit: float, window: float
) -> None:
    """Assert at most `limit` tokens in every interval [t, t + window).

    Only intervals that start at a grant time need checking, because any other
    interval contains no more than the one starting at its first grant.
    """
    for start, _ in grants:
        total = sum(
            tokens
            for grant_time, tokens in grants
            if start <= grant_time < start + window
        )
        assert total <= limit * (1 + 1e-9), (start, total)


class Model:
    """What a window limiter must do, computed from the grants so far.

    Grants are (time, tokens) pairs in time order, reservations included at
    their ready times. The newest reservation may be cancelled while it waits.
    """

    def __init__(self, limit: float, window: float) -> None:
        self.limit = limit
        self.window = window
        self.grants: list[tuple[float, float]] = []
        self.last_ready = -math.inf
        # (index in grants, ready time before it) of the newest reservation, if
        # it may still be cancelled.
        self.cancellable: tuple[int, float] | None = None

    def add(self, grant_time: float, tokens: float, *, reserved: bool) -> None:
        if reserved:
            self.cancellable = (len(self.grants), self.last_ready)
            self.last_ready = grant_time
        self.grants.append((grant_time, tokens))

    def cancel(self, now: float) -> None:
        if self.cancellable is not None and now < self.last_ready:
            index, previous_ready = self.cancellable
            del self.grants[index]
            self.last_ready = previous_ready
        self.cancellable = None


class FixedModel(Model):
    def window_of(self, at: float) -> int:
        return math.floor(at / self.window)

    def used(self, index: int) -> float:
        return fixed_window_sums(self.grants, self.window).get(index, 0.0)

    def can_try(self, now: float, tokens: float) -> bool:
        current = self.window_of(now)
        if self.grants and self.window_of(self.grants[-1][0]) > current:
            return False
        return self.used(current) + tokens <= self.limit

    def ready_window(self, now: float, tokens: float) -> int:
        current = self.window_of(now)
        newest = current
        if self.grants:
            newest = max(current, self.window_of(self.grants[-1][0]))
        if self.used(newest) + tokens <= self.limit:
            return newest
        return newest + 1


class SlidingModel(Model):
    def can_try(self, now: float, tokens: float) -> bool:
        if now < self.last_ready:
            return False
        return sliding_sum(self.grants, now, self.window) + tokens <= self.limit

    def ready_at(self, now: float, tokens: float) -> float:
        start = max(now, self.last_ready)
        candidates = [start]
        candidates += [
            t + self.window for t, _ in self.grants if t + self.window > start
        ]
        for candidate in sorted(candidates):
            used = sliding_sum(self.grants, candidate, self.window)
            if used + tokens <= self.limit:
                return candidate
        raise AssertionError("no ready time found")


_STEPS = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=2.0),
        st.sampled_from(["try", "try", "reserve", "cancel"]),
        st.floats(min_value=0.0, max_value=1.0),
    ),
    max_size=40,
)
_LIMITS = st.integers(min_value=1, max_value=8)
_WINDOWS = st.sampled_from([0.1, 0.3, 1.0, 2.5])


def assert_starts_window(
    ready_at: float, now: float, index: int, window: float
) -> None:
    """Assert that `ready_at` is in window `index`, and where in it.

    It must be `now` if that window is the current one, or else the first
    float of the window.
    """
    assert math.floor(ready_at / window) == index
    if math.floor(now / window) != index:
        before = math.nextafter(ready_at, -math.inf)
        assert math.floor(before / window) == index - 1
    else:
        assert ready_at == now


def whole_tokens(limit: int, fraction: float) -> int:
    """Return a request of 1 to `limit` whole tokens picked by `fraction`."""
    return max(1, math.ceil(fraction * limit))


class TestWindowProperties:
    @settings(max_examples=120, deadline=None)
    @given(limit=_LIMITS, window=_WINDOWS, steps=_STEPS)
    def test_fixed_window_matches_model(
        self, limit: int, window: float, steps: list[tuple[float, str, float]]
    ) -> None:
        clock = FakeClock()
        limiter = FixedWindow(limit, window, clock=clock)
        model = FixedModel(limit, window)
        newest = None

        for elapsed, action, fraction in steps:
            clock.advance(elapsed)
            now = clock.monotonic()
            n = whole_tokens(limit, fraction)
            if action == "try":
                expected = model.can_try(now, n)
                assert limiter.try_acquire(n) == expected, (now, n)
                if expected:
                    model.add(now, n, reserved=False)
            elif action == "reserve":
                index = model.ready_window(now, n)
                newest = limiter.reserve(n)
                assert newest is not None
                assert_starts_window(newest.ready_at, now, index, window)
                model.add(newest.ready_at, n, reserved=True)
            elif newest is not None:
                newest.cancel()
                model.cancel(now)

        assert_fixed_bound(model.grants, limit, window)

    @settings(max_examples=120, deadline=None)
    @given(limit=_LIMITS, window=_WINDOWS, steps=_STEPS)
    def test_sliding_window_matches_model(
        self, limit: int, window: float, steps: list[tuple[float, str, float]]
    ) -> None:
        clock = FakeClock()
        limiter = SlidingWindow(limit, window, clock=clock)
        model = SlidingModel(limit, window)
        newest = None

        for elapsed, action, fraction in steps:
            clock.advance(elapsed)
            now = clock.monotonic()
            n = whole_tokens(limit, fraction)
            if action == "try":
                expected = model.can_try(now, n)
                assert limiter.try_acquire(n) == expected, (now, n)
                if expected:
                    model.add(now, n, reserved=False)
            elif action == "reserve":
                expected_ready = model.ready_at(now, n)
                assert limiter.retry_after(n) == expected_ready - now
                newest = limiter.reserve(n)
                assert newest is not None
                assert newest.ready_at == expected_ready
                model.add(newest.ready_at, n, reserved=True)
            elif newest is not None:
                newest.cancel()
                model.cancel(now)

        assert_sliding_bound(model.grants, limit, window)

    @settings(max_examples=100, deadline=None)
    @given(
        limit=st.floats(min_value=0.5, max_value=8.0),
        window=_WINDOWS,
        steps=_STEPS,
    )
    def test_window_fractions_keep_bounds(
        self, limit: float, window: float, steps: list[tuple[float, str, float]]
    ) -> None:
        clock = FakeClock()
        fixed = FixedWindow(limit, window, clock=clock)
        sliding = SlidingWindow(limit, window, clock=clock)
        fixed_grants: list[tuple[float, float]] = []
        sliding_grants: list[tuple[float, float]] = []

        for elapsed, action, fraction in steps:
            clock.advance(elapsed)
            n = max(fraction, 0.01) * limit
            for limiter, grants in [(fixed, fixed_grants), (sliding, sliding_grants)]:
                if action == "reserve":
                    reservation = limiter.reserve(n)
                    assert reservation is not None
                    grants.append((reservation.ready_at, n))
                elif limiter.try_acquire(n):
                    grants.append((clock.monotonic(), n))

        assert_fixed_bound(fixed_grants, limit, window)
        assert_sliding_bound(sorted(sliding_grants), limit, window)


class RecordingClock:
    """The system clock, remembering the last time each thread read."""

    def __init__(self) -> None:
        self._local = threading.local()

    def monotonic(self) -> float:
        now = time.monotonic()
        self._local.last = now
        return now

    def sleep(self, seconds: float) -> None:
        SYSTEM_CLOCK.sleep(seconds)

    def last_reading(self) -> float:
        """Return the calling thread's last reading of the clock."""
        last: float = self._local.last
        return last


class StressRun:
    """The shared state of the threads in a real-clock stress test."""

    def __init__(self, limiter: WindowLimiter, clock: RecordingClock) -> None:
        self.limiter = limiter
        self.clock = clock
        self.barrier = threading.Barrier(33)
        self.stop_at = math.inf
        # (grant time, tokens) per grant, appended by every thread.
        self.grants: list[tuple[float, float]] = []
        # How early each thread that proceeded before its ready time woke.
        self.early_wakes: list[float] = []

    def hammer(self, use_reserve: bool) -> None:
        """Take tokens until `stop_at`, recording each grant's time.

        A grant time is the limiter's own reading: for try_acquire, the one
        taken inside the call, and for a reservation, its ready time.
        Scheduling delays move when a thread proceeds, never these times, so
        the bound on them is exact.
        """
        self.barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
        while time.monotonic() < self.stop_at:
            if not use_reserve:
                if self.limiter.try_acquire():
                    self.grants.append((self.clock.last_reading(), 1.0))
                continue
            reservation = self.limiter.reserve(timeout=0.05)
            if reservation is None:
                continue
            self.grants.append((reservation.ready_at, 1.0))
            self.clock.sleep(reservation.delay())
            woke_at = time.monotonic()
            if woke_at < reservation.ready_at:
                self.early_wakes.append(reservation.ready_at - woke_at)


class TestWindowStress:
    @WINDOW_CLASSES
    @pytest.mark.slow
    @pytest.mark.timeout(20)
    def test_window_threads_stay_within_limit(self, cls: WindowClass) -> None:
        limit, window, duration = 10, 0.05, 1.0
        clock = RecordingClock()
        run = StressRun(cls(limit, window, clock=clock), clock)
        threads = [
            threading.Thread(
                target=run.hammer, args=(index % 2 == 0,), name=f"test-hammer-{index}"
            )
            for index in range(32)
        ]
        for thread in threads:
            thread.start()

        run.stop_at = time.monotonic() + duration
        run.barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
        for thread in threads:
            thread.join(THREAD_JOIN_TIMEOUT)

        assert not any(thread.is_alive() for thread in threads)
        assert run.early_wakes == []
        assert len(run.grants) >= limit * (duration / window) / 4
        grants = sorted(run.grants)
        assert_fixed_bound(grants, limit, window)
        if cls is SlidingWindow:
            assert_sliding_bound(grants, limit, window)
