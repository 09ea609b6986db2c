"""Tests for KeyedLimiter: one limiter per key, idle expiry, max_keys, blocks."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from typing import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncq.clock import Clock
from syncq.errors import RateLimitExceeded
from syncq.limiters import (
    FixedWindow,
    LimiterBase,
    Reservation,
    SlidingWindow,
    TokenBucket,
)
from syncq.limiters.keyed import KeyedLimiter
from syncq.testing import FakeClock

THREAD_JOIN_TIMEOUT = 5.0


def bucket_factory(
    clock: Clock, rate: float = 1.0, capacity: float = 2.0
) -> Callable[[], TokenBucket]:
    """Return a factory of token buckets on `clock`."""

    def build() -> TokenBucket:
        return TokenBucket(rate, capacity, clock=clock)

    return build


def keyed(
    clock: FakeClock,
    *,
    rate: float = 1.0,
    capacity: float = 2.0,
    idle_timeout: float = 10.0,
    max_keys: int | None = None,
    block_duration: float | None = None,
) -> KeyedLimiter[str]:
    """Return a KeyedLimiter of token buckets, all on `clock`."""
    return KeyedLimiter(
        bucket_factory(clock, rate, capacity),
        idle_timeout=idle_timeout,
        max_keys=max_keys,
        block_duration=block_duration,
        clock=clock,
    )


class QuotaLimiter(LimiterBase):
    """A limiter that grants `limit` tokens in all, and never more."""

    def __init__(self, limit: float, clock: Clock) -> None:
        super().__init__(clock)
        self.limit = limit
        self.left = limit

    def try_acquire(self, n: float = 1) -> bool:
        if n > self.left:
            return False
        self.left -= n
        return True

    def retry_after(self, n: float = 1) -> float:
        return 0.0 if n <= self.left else math.inf

    def reserve(
        self, n: float = 1, *, timeout: float | None = None
    ) -> Reservation | None:
        if not self.try_acquire(n):
            return None
        return Reservation(self._clock.monotonic(), self._clock)


class BareLimiter(QuotaLimiter):
    """A QuotaLimiter that hides its limit, as a limiter without one would."""

    def __getattribute__(self, name: str) -> object:
        if name == "limit":
            raise AttributeError(name)
        return super().__getattribute__(name)


class LateLimiter(LimiterBase):
    """A limiter whose reservations fall due `delay` seconds after they are
    made, although its retry_after is always 0, so only they keep it busy."""

    capacity = 1.0

    def __init__(self, delay: float, clock: Clock) -> None:
        super().__init__(clock)
        self.delay = delay

    def try_acquire(self, n: float = 1) -> bool:
        return True

    def retry_after(self, n: float = 1) -> float:
        return 0.0

    def reserve(
        self, n: float = 1, *, timeout: float | None = None
    ) -> Reservation | None:
        return Reservation(self._clock.monotonic() + self.delay, self._clock)


class _InterruptedSleep(Exception):
    """Raised by `InterruptingClock.sleep`, as KeyboardInterrupt would be."""


class InterruptingClock:
    """A clock frozen at 0.0 whose sleep raises at once."""

    def monotonic(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        raise _InterruptedSleep(seconds)


class TestKeyedLimiterConstruction:
    def test_keyed_defaults(self, clock: FakeClock) -> None:
        limiter: KeyedLimiter[str] = KeyedLimiter(bucket_factory(clock), clock=clock)

        assert limiter.idle_timeout == 60.0
        assert limiter.max_keys is None
        assert limiter.block_duration is None

    def test_keyed_starts_empty(self, clock: FakeClock) -> None:
        assert len(keyed(clock)) == 0

    def test_keyed_repr(self, clock: FakeClock) -> None:
        limiter = keyed(clock, max_keys=5)

        assert repr(limiter) == (
            "KeyedLimiter(keys=0, idle_timeout=10.0, max_keys=5, block_duration=None)"
        )

    @pytest.mark.parametrize(
        ("value", "error"),
        [
            (0, ValueError),
            (-1, ValueError),
            (math.nan, ValueError),
            (math.inf, ValueError),
            (True, TypeError),
            ("1", TypeError),
        ],
    )
    def test_keyed_rejects_idle_timeout(
        self, clock: FakeClock, value: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="idle_timeout"):
            KeyedLimiter(bucket_factory(clock), idle_timeout=value, clock=clock)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("value", "error"),
        [
            (0, ValueError),
            (-1, ValueError),
            (1.5, TypeError),
            (True, TypeError),
            ("3", TypeError),
        ],
    )
    def test_keyed_rejects_max_keys(
        self, clock: FakeClock, value: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="max_keys"):
            KeyedLimiter(bucket_factory(clock), max_keys=value, clock=clock)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("value", "error"),
        [
            (0, ValueError),
            (-1, ValueError),
            (math.nan, ValueError),
            (math.inf, ValueError),
            (False, TypeError),
            ("1", TypeError),
        ],
    )
    def test_keyed_rejects_block_duration(
        self, clock: FakeClock, value: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="block_duration"):
            KeyedLimiter(bucket_factory(clock), block_duration=value, clock=clock)  # type: ignore[arg-type]

    def test_keyed_rejects_non_callable_factory(self, clock: FakeClock) -> None:
        with pytest.raises(TypeError, match="factory must be a callable"):
            KeyedLimiter(object(), clock=clock)  # type: ignore[arg-type]

    def test_keyed_rejects_limiter_as_factory(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1, clock=clock)

        with pytest.raises(TypeError, match="not a limiter"):
            KeyedLimiter(bucket, clock=clock)  # type: ignore[arg-type]

    def test_keyed_rejects_factory_of_non_limiter(self, clock: FakeClock) -> None:
        with pytest.raises(TypeError, match="factory must return a limiter"):
            KeyedLimiter(lambda: 5, clock=clock)  # type: ignore[arg-type, return-value]

    def test_keyed_rejects_factory_of_shared_limiter(self, clock: FakeClock) -> None:
        shared = TokenBucket(1, clock=clock)

        with pytest.raises(ValueError, match="new limiter on each call"):
            KeyedLimiter(lambda: shared, clock=clock)

    def test_keyed_rejects_non_clock(self, clock: FakeClock) -> None:
        with pytest.raises(TypeError, match="clock must provide"):
            KeyedLimiter(bucket_factory(clock), clock=object())  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("value", "error"),
        [
            (0, ValueError),
            (-1, ValueError),
            (math.nan, ValueError),
            (True, TypeError),
            ("1", TypeError),
            (3, ValueError),
        ],
    )
    def test_keyed_rejects_burst(
        self, clock: FakeClock, value: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="burst"):
            KeyedLimiter(bucket_factory(clock), burst=value, clock=clock)  # type: ignore[arg-type]

    def test_keyed_rejects_burst_not_granted_at_once(self, clock: FakeClock) -> None:
        with pytest.raises(ValueError, match="cannot grant burst=5"):
            KeyedLimiter(lambda: QuotaLimiter(2, clock), burst=5, clock=clock)

    def test_keyed_burst_from_limit_attribute(self, clock: FakeClock) -> None:
        limiter: KeyedLimiter[str] = KeyedLimiter(
            lambda: QuotaLimiter(2, clock), clock=clock
        )

        assert limiter.try_acquire("a", 2)

    def test_keyed_requires_burst_without_capacity(self, clock: FakeClock) -> None:
        with pytest.raises(TypeError, match="burst must be given for BareLimiter"):
            KeyedLimiter(lambda: BareLimiter(2, clock), clock=clock)

    def test_keyed_accepts_explicit_burst(self, clock: FakeClock) -> None:
        limiter: KeyedLimiter[str] = KeyedLimiter(
            lambda: BareLimiter(2, clock), burst=2, clock=clock
        )

        assert limiter.try_acquire("a")


class TestKeyedLimiterKeys:
    def test_keyed_first_request_adds_key(self, clock: FakeClock) -> None:
        limiter = keyed(clock)

        limiter.try_acquire("a")

        assert "a" in limiter
        assert len(limiter) == 1

    def test_keyed_keys_are_independent(self, clock: FakeClock) -> None:
        limiter = keyed(clock, capacity=2)
        assert limiter.try_acquire("a", 2)

        assert limiter.try_acquire("b", 2)

    def test_keyed_drained_key_rejects(self, clock: FakeClock) -> None:
        limiter = keyed(clock, capacity=2)
        limiter.try_acquire("b", 1)
        assert limiter.try_acquire("a", 2)

        assert not limiter.try_acquire("a")

    def test_keyed_key_refills_at_its_rate(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=2.0, capacity=2)
        assert limiter.try_acquire("a", 2)

        clock.advance(0.5)

        assert limiter.try_acquire("a")

    def test_keyed_accepts_any_hashable_key(self, clock: FakeClock) -> None:
        limiter: KeyedLimiter[tuple[str, int]] = KeyedLimiter(
            bucket_factory(clock), clock=clock
        )

        assert limiter.try_acquire(("host", 443))

    def test_keyed_rejects_unhashable_key(self, clock: FakeClock) -> None:
        limiter = keyed(clock)

        with pytest.raises(TypeError, match="key must be hashable, got list"):
            limiter.try_acquire(["a"])  # type: ignore[arg-type]

    def test_keyed_retry_after_of_unknown_key(self, clock: FakeClock) -> None:
        assert keyed(clock).retry_after("a") == 0.0

    def test_keyed_retry_after_does_not_add_key(self, clock: FakeClock) -> None:
        limiter = keyed(clock)

        limiter.retry_after("a")

        assert "a" not in limiter

    def test_keyed_retry_after_of_drained_key(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=4.0, capacity=2)
        limiter.try_acquire("a", 2)

        assert limiter.retry_after("a", 1) == pytest.approx(0.25)

    def test_keyed_contains_unknown_key(self, clock: FakeClock) -> None:
        assert "a" not in keyed(clock)


_BAD_N = [
    (0, ValueError),
    (-1, ValueError),
    (math.nan, ValueError),
    (math.inf, ValueError),
    (3, ValueError),
    (True, TypeError),
    ("1", TypeError),
]

_METHODS: dict[str, Callable[[KeyedLimiter[str], object], object]] = {
    "try_acquire": lambda limiter, n: limiter.try_acquire("a", n),  # type: ignore[arg-type]
    "acquire": lambda limiter, n: limiter.acquire("a", n),  # type: ignore[arg-type]
    "reserve": lambda limiter, n: limiter.reserve("a", n),  # type: ignore[arg-type]
    "retry_after": lambda limiter, n: limiter.retry_after("a", n),  # type: ignore[arg-type]
}


class TestKeyedLimiterValidation:
    @pytest.mark.parametrize("method", sorted(_METHODS))
    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_keyed_rejects_n_for_new_key(
        self, clock: FakeClock, method: str, n: object, error: type[Exception]
    ) -> None:
        limiter = keyed(clock, capacity=2)

        with pytest.raises(error, match="n"):
            _METHODS[method](limiter, n)

    @pytest.mark.parametrize("method", sorted(_METHODS))
    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_keyed_rejects_n_for_blocked_key(
        self, clock: FakeClock, method: str, n: object, error: type[Exception]
    ) -> None:
        limiter = keyed(clock, capacity=2, block_duration=5.0)
        limiter.try_acquire("a", 2)
        assert not limiter.try_acquire("a")

        with pytest.raises(error, match="n"):
            _METHODS[method](limiter, n)

    @pytest.mark.parametrize("method", sorted(_METHODS))
    @pytest.mark.parametrize(("n", "error"), _BAD_N)
    def test_keyed_rejects_n_when_table_full(
        self, clock: FakeClock, method: str, n: object, error: type[Exception]
    ) -> None:
        limiter = keyed(clock, capacity=2, max_keys=1)
        limiter.try_acquire("b", 2)

        with pytest.raises(error, match="n"):
            _METHODS[method](limiter, n)

    @pytest.mark.parametrize(
        ("timeout", "error"),
        [(-1, ValueError), (math.nan, ValueError), (True, TypeError), ("1", TypeError)],
    )
    def test_keyed_acquire_rejects_timeout(
        self, clock: FakeClock, timeout: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="timeout"):
            keyed(clock).acquire("a", 1, timeout)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("timeout", "error"),
        [(-1, ValueError), (math.nan, ValueError), (True, TypeError), ("1", TypeError)],
    )
    def test_keyed_reserve_rejects_timeout(
        self, clock: FakeClock, timeout: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="timeout"):
            keyed(clock).reserve("a", 1, timeout=timeout)  # type: ignore[arg-type]


class TestKeyedLimiterAcquire:
    def test_keyed_acquire_sleeps_until_ready(self) -> None:
        clock = FakeClock(auto_advance=True)
        limiter = keyed(clock, rate=4.0, capacity=2)
        limiter.try_acquire("a", 2)

        assert limiter.acquire("a", 1)

        assert clock.sleeps == [pytest.approx(0.25)]

    def test_keyed_acquire_available_does_not_sleep(self, clock: FakeClock) -> None:
        limiter = keyed(clock)

        assert limiter.acquire("a", 2)

        assert clock.sleeps == []

    @pytest.mark.timeout(5)
    def test_keyed_acquire_timeout_returns_false(self, clock: FakeClock) -> None:
        limiter = keyed(clock)
        limiter.try_acquire("a", 2)

        assert limiter.acquire("a", 1, timeout=0.5) is False

    @pytest.mark.timeout(5)
    def test_keyed_acquire_timeout_does_not_wait(self, clock: FakeClock) -> None:
        limiter = keyed(clock)
        limiter.try_acquire("a", 2)

        limiter.acquire("a", 1, timeout=0.5)

        assert clock.sleeps == []

    @pytest.mark.timeout(5)
    def test_keyed_acquire_raises_on_timeout(self, clock: FakeClock) -> None:
        limiter = keyed(clock)
        limiter.try_acquire("a", 2)
        clock.advance(0.25)

        with pytest.raises(RateLimitExceeded) as excinfo:
            limiter.acquire("a", 1, timeout=0.5, raise_on_timeout=True)

        assert excinfo.value.retry_after == pytest.approx(0.75)

    def test_keyed_reserve_ready_at_of_drained_key(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=2.0)
        limiter.try_acquire("a", 2)

        reservation = limiter.reserve("a", 1)

        assert reservation is not None
        assert reservation.ready_at == pytest.approx(0.5)

    def test_keyed_acquire_cancels_when_sleep_raises(self) -> None:
        clock = InterruptingClock()
        limiter: KeyedLimiter[str] = KeyedLimiter(
            bucket_factory(clock, capacity=1), clock=clock
        )
        limiter.try_acquire("a")

        with pytest.raises(_InterruptedSleep):
            limiter.acquire("a")

        assert limiter.retry_after("a") == pytest.approx(1.0)

    @pytest.mark.timeout(10)
    def test_keyed_waiting_key_does_not_block_others(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=1.0, capacity=1)
        limiter.try_acquire("slow")
        barrier = threading.Barrier(2)
        granted = threading.Event()

        def wait_for_slow() -> None:
            barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
            if limiter.acquire("slow"):
                granted.set()

        thread = threading.Thread(target=wait_for_slow, name="test-keyed-waiter")
        thread.start()
        barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
        clock.wait_for_sleepers(1)
        other_granted = limiter.try_acquire("fast")
        slow_granted_early = granted.is_set()
        clock.advance(1.0)
        thread.join(THREAD_JOIN_TIMEOUT)

        assert not thread.is_alive()
        assert other_granted
        assert not slow_granted_early
        assert granted.is_set()


class TestKeyedLimiterIdleExpiry:
    def test_keyed_drops_idle_key_at_rest(self, clock: FakeClock) -> None:
        limiter = keyed(clock, idle_timeout=10.0)
        limiter.try_acquire("a")
        clock.advance(10.0)

        limiter.try_acquire("b")

        assert "a" not in limiter

    def test_keyed_keeps_key_before_idle_timeout(self, clock: FakeClock) -> None:
        limiter = keyed(clock, idle_timeout=10.0)
        limiter.try_acquire("a")
        clock.advance(9.0)

        limiter.try_acquire("b")

        assert "a" in limiter

    def test_keyed_request_restarts_idle_timeout(self, clock: FakeClock) -> None:
        limiter = keyed(clock, idle_timeout=10.0)
        limiter.try_acquire("a")
        clock.advance(6.0)
        limiter.try_acquire("a")
        clock.advance(6.0)

        limiter.try_acquire("b")

        assert "a" in limiter

    def test_keyed_keeps_idle_key_not_at_rest(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=0.1, capacity=2, idle_timeout=10.0)
        limiter.try_acquire("a", 2)
        clock.advance(10.0)

        limiter.try_acquire("b")

        assert "a" in limiter

    def test_keyed_idle_key_keeps_its_debt(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=0.1, capacity=2, idle_timeout=1.0)
        limiter.try_acquire("a", 2)
        for _ in range(5):
            clock.advance(2.0)
            limiter.try_acquire("other")

        assert limiter.retry_after("a", 2) == pytest.approx(10.0)

    def test_keyed_keeps_key_with_pending_reservation(self, clock: FakeClock) -> None:
        limiter: KeyedLimiter[str] = KeyedLimiter(
            lambda: LateLimiter(10.0, clock), idle_timeout=1.0, clock=clock
        )
        limiter.reserve("a")
        clock.advance(5.0)

        limiter.try_acquire("b")

        assert "a" in limiter

    def test_keyed_drops_key_once_reservation_due(self, clock: FakeClock) -> None:
        limiter: KeyedLimiter[str] = KeyedLimiter(
            lambda: LateLimiter(10.0, clock), idle_timeout=1.0, clock=clock
        )
        limiter.reserve("a")
        clock.advance(5.0)
        limiter.try_acquire("b")
        clock.advance(5.0)

        limiter.try_acquire("c")

        assert "a" not in limiter

    def test_keyed_busy_key_does_not_stall_expiry(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=1.0, capacity=2, idle_timeout=1.0)
        limiter.try_acquire("busy", 2)
        limiter.try_acquire("idle")
        clock.advance(1.0)

        limiter.try_acquire("c")

        assert "idle" not in limiter

    def test_keyed_dropped_key_starts_full(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=1.0, capacity=2, idle_timeout=5.0)
        limiter.try_acquire("a", 2)
        clock.advance(5.0)
        limiter.try_acquire("b")
        assert "a" not in limiter

        assert limiter.try_acquire("a", 2)

    @pytest.mark.timeout(20)
    def test_keyed_many_keys_stay_bounded(self, clock: FakeClock) -> None:
        # 200,000 rather than 1,000,000 keys, so the test takes about 2 s: each
        # new key builds a TokenBucket, which costs several microseconds.
        limiter = keyed(clock, rate=10.0, capacity=10, idle_timeout=1.0)
        largest = 0
        started = time.monotonic()

        for index in range(200_000):
            if index % 125 == 0:
                clock.advance(0.125)
            assert limiter.try_acquire(f"user-{index}")
            largest = max(largest, len(limiter))
        elapsed = time.monotonic() - started

        # A key is at rest 0.1 s after its grant, and each new key's request
        # drops up to two expired keys, so the table holds about the keys of
        # the last idle_timeout (1,000), plus at most one clock step (125).
        assert largest <= 1_125
        assert elapsed < 15.0


class TestKeyedLimiterWindows:
    @pytest.mark.parametrize("window_class", [FixedWindow, SlidingWindow])
    def test_keyed_window_key_kept_while_window_counts(
        self, clock: FakeClock, window_class: type[FixedWindow | SlidingWindow]
    ) -> None:
        limiter: KeyedLimiter[str] = KeyedLimiter(
            lambda: window_class(2, 100.0, clock=clock), idle_timeout=10.0, clock=clock
        )
        limiter.try_acquire("a")
        clock.advance(10.0)

        limiter.try_acquire("b")

        assert "a" in limiter

    @pytest.mark.parametrize("window_class", [FixedWindow, SlidingWindow])
    def test_keyed_window_key_dropped_once_window_empties(
        self, clock: FakeClock, window_class: type[FixedWindow | SlidingWindow]
    ) -> None:
        limiter: KeyedLimiter[str] = KeyedLimiter(
            lambda: window_class(2, 5.0, clock=clock), idle_timeout=10.0, clock=clock
        )
        limiter.try_acquire("a")
        clock.advance(10.0)

        limiter.try_acquire("b")

        assert "a" not in limiter


class TestKeyedLimiterMaxKeys:
    def test_keyed_evicts_key_at_rest(self, clock: FakeClock) -> None:
        limiter = keyed(clock, max_keys=2)
        limiter.try_acquire("a")
        limiter.try_acquire("b")
        clock.advance(1.0)

        assert limiter.try_acquire("c")

        assert len(limiter) == 2

    def test_keyed_evicts_least_recently_used(self, clock: FakeClock) -> None:
        limiter = keyed(clock, max_keys=2)
        limiter.try_acquire("a")
        limiter.try_acquire("b")
        clock.advance(1.0)
        limiter.try_acquire("a")
        clock.advance(1.0)

        limiter.try_acquire("c")

        assert "b" not in limiter
        assert "a" in limiter

    def test_keyed_eviction_skips_key_not_at_rest(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=0.1, idle_timeout=100.0, max_keys=2)
        limiter.try_acquire("a", 2)
        limiter.try_acquire("b")
        clock.advance(10.0)

        limiter.try_acquire("c")

        assert "a" in limiter
        assert "b" not in limiter

    def test_keyed_full_table_rejects_new_key(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=0.1, max_keys=1)
        limiter.try_acquire("a", 2)

        assert not limiter.try_acquire("b")

        assert "b" not in limiter

    def test_keyed_full_table_serves_held_key(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=0.1, max_keys=1)
        limiter.try_acquire("a", 1)

        assert limiter.try_acquire("a", 1)

    def test_keyed_full_table_reserve_returns_none(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=0.1, max_keys=1)
        limiter.try_acquire("a", 2)

        assert limiter.reserve("b") is None

    @pytest.mark.timeout(5)
    def test_keyed_full_table_acquire_returns_false(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=0.1, max_keys=1)
        limiter.try_acquire("a", 2)

        assert limiter.acquire("b", timeout=1.0) is False

    @pytest.mark.timeout(5)
    def test_keyed_full_table_acquire_raises(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=0.1, max_keys=1)
        limiter.try_acquire("a", 2)

        with pytest.raises(RateLimitExceeded, match="max_keys=1") as excinfo:
            limiter.acquire("b")

        assert excinfo.value.retry_after == pytest.approx(20.0)

    def test_keyed_full_table_retry_after_waits(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=0.1, max_keys=1)
        limiter.try_acquire("a", 2)
        clock.advance(5.0)

        assert limiter.retry_after("b") == pytest.approx(15.0)

    def test_keyed_full_table_admits_after_refill(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=0.1, max_keys=1)
        limiter.try_acquire("a", 2)
        clock.advance(20.0)

        assert limiter.try_acquire("b")


class TestKeyedLimiterBlock:
    def test_keyed_rejection_blocks_key(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=1.0, capacity=2, block_duration=5.0)
        limiter.try_acquire("a", 2)
        assert not limiter.try_acquire("a")
        clock.advance(4.0)

        assert not limiter.try_acquire("a")

    def test_keyed_block_ends_after_duration(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=1.0, capacity=2, block_duration=5.0)
        limiter.try_acquire("a", 2)
        assert not limiter.try_acquire("a")
        clock.advance(5.0)

        assert limiter.try_acquire("a")

    def test_keyed_retry_after_reports_block(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=1.0, capacity=2, block_duration=5.0)
        limiter.try_acquire("a", 2)
        limiter.try_acquire("a")
        clock.advance(1.5)

        assert limiter.retry_after("a") == pytest.approx(3.5)

    def test_keyed_block_not_extended_while_blocked(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=1.0, capacity=2, block_duration=5.0)
        limiter.try_acquire("a", 2)
        limiter.try_acquire("a")
        clock.advance(3.0)
        limiter.try_acquire("a")
        clock.advance(2.0)

        assert limiter.try_acquire("a")

    def test_keyed_block_leaves_other_keys(self, clock: FakeClock) -> None:
        limiter = keyed(clock, capacity=2, block_duration=5.0)
        limiter.try_acquire("a", 2)
        limiter.try_acquire("a")

        assert limiter.try_acquire("b")

    @pytest.mark.timeout(5)
    def test_keyed_acquire_timeout_blocks_key(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=1.0, capacity=2, block_duration=5.0)
        limiter.try_acquire("a", 2)
        assert not limiter.acquire("a", timeout=0.5)
        clock.advance(3.0)

        assert not limiter.try_acquire("a")

    @pytest.mark.timeout(5)
    def test_keyed_blocked_acquire_raises_with_block(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=1.0, capacity=2, block_duration=5.0)
        limiter.try_acquire("a", 2)
        limiter.try_acquire("a")
        clock.advance(3.0)

        with pytest.raises(RateLimitExceeded) as excinfo:
            limiter.acquire("a", timeout=1.0, raise_on_timeout=True)

        assert excinfo.value.retry_after == pytest.approx(2.0)

    def test_keyed_blocked_reserve_due_at_block_end(self, clock: FakeClock) -> None:
        limiter = keyed(clock, rate=1.0, capacity=2, block_duration=5.0)
        limiter.try_acquire("a", 2)
        limiter.try_acquire("a")

        reservation = limiter.reserve("a")

        assert reservation is not None
        assert reservation.ready_at == 5.0

    def test_keyed_blocked_acquire_waits_out_block(self) -> None:
        clock = FakeClock(auto_advance=True)
        limiter = keyed(clock, rate=1.0, capacity=2, block_duration=5.0)
        limiter.try_acquire("a", 2)
        limiter.try_acquire("a")

        assert limiter.acquire("a", timeout=6.0)

        assert clock.sleeps == [5.0]

    def test_keyed_blocked_key_is_not_dropped(self, clock: FakeClock) -> None:
        limiter = keyed(
            clock, rate=10.0, capacity=2, idle_timeout=1.0, block_duration=30.0
        )
        limiter.try_acquire("a", 2)
        limiter.try_acquire("a")
        clock.advance(10.0)

        limiter.try_acquire("b")

        assert "a" in limiter


def assert_within_bucket_bound(
    grants: list[tuple[float, float]], rate: float, capacity: float
) -> None:
    """Assert that (time, n) grants in any [a, b] total <= capacity + rate*(b-a)."""
    for first, (start, _) in enumerate(grants):
        total = 0.0
        for end, tokens in grants[first:]:
            total += tokens
            bound = capacity + rate * (end - start)
            assert total <= bound + 1e-9 * (bound + 1.0), (start, end, total)


_STEPS = st.lists(
    st.tuples(
        st.sampled_from("abcd"),
        st.floats(min_value=0.0, max_value=2.0),
        st.floats(min_value=0.05, max_value=1.0),
    ),
    max_size=80,
)


class TestKeyedLimiterProperties:
    @settings(max_examples=100, deadline=None)
    @given(
        rate=st.floats(min_value=0.5, max_value=10.0),
        idle_timeout=st.floats(min_value=0.01, max_value=3.0),
        max_keys=st.one_of(st.none(), st.integers(min_value=1, max_value=3)),
        steps=_STEPS,
    )
    def test_keyed_expiry_never_loosens_limit(
        self,
        rate: float,
        idle_timeout: float,
        max_keys: int | None,
        steps: list[tuple[str, float, float]],
    ) -> None:
        clock = FakeClock()
        capacity = 2.0
        limiter = keyed(
            clock,
            rate=rate,
            capacity=capacity,
            idle_timeout=idle_timeout,
            max_keys=max_keys,
        )
        grants: dict[str, list[tuple[float, float]]] = defaultdict(list)

        for key, elapsed, fraction in steps:
            clock.advance(elapsed)
            n = fraction * capacity
            if limiter.try_acquire(key, n):
                grants[key].append((clock.monotonic(), n))

        for key_grants in grants.values():
            assert_within_bucket_bound(key_grants, rate, capacity)

    @settings(max_examples=100, deadline=None)
    @given(
        rate=st.floats(min_value=0.5, max_value=10.0),
        idle_timeout=st.floats(min_value=0.01, max_value=3.0),
        steps=_STEPS,
    )
    def test_keyed_grants_when_key_has_tokens(
        self, rate: float, idle_timeout: float, steps: list[tuple[str, float, float]]
    ) -> None:
        clock = FakeClock()
        capacity = 2.0
        limiter = keyed(clock, rate=rate, capacity=capacity, idle_timeout=idle_timeout)
        # Buckets that are never dropped: the behaviour expiry must not change.
        reference: dict[str, TokenBucket] = {}

        for key, elapsed, fraction in steps:
            clock.advance(elapsed)
            n = fraction * capacity
            if key not in reference:
                reference[key] = TokenBucket(rate, capacity, clock=clock)
            expected = reference[key].try_acquire(n)

            assert limiter.try_acquire(key, n) == expected, (key, n)


def hammer(
    limiter: KeyedLimiter[int],
    index: int,
    barrier: threading.Barrier,
    stop_at: list[float],
    grants: dict[int, list[tuple[float, float]]],
) -> None:
    """Take tokens for one of four keys until `stop_at[0]`, recording spans.

    Each grant happened between the recorded (before, after) real-clock times.
    """
    key = index % 4
    use_acquire = index % 8 < 4
    barrier.wait(timeout=THREAD_JOIN_TIMEOUT)
    while time.monotonic() < stop_at[0]:
        before = time.monotonic()
        if use_acquire:
            granted = limiter.acquire(key, 1, timeout=0.2)
        else:
            granted = limiter.try_acquire(key)
        after = time.monotonic()
        if granted:
            grants[key].append((before, after))


def assert_spans_within_bucket_bound(
    spans: list[tuple[float, float]], rate: float, capacity: float
) -> None:
    """Assert the bound for grants known only to lie within (before, after).

    Every grant whose whole span lies inside [a, b] was granted inside it, so
    their count must not exceed capacity + rate * (b - a).
    """
    by_start = sorted(spans)
    for index, (start, _) in enumerate(by_start):
        ends = sorted(end for _, end in by_start[index:])
        for count, end in enumerate(ends, start=1):
            bound = capacity + rate * (end - start)
            assert count <= bound + 1e-6, (start, end, count)


class TestKeyedLimiterStress:
    @pytest.mark.slow
    @pytest.mark.timeout(20)
    def test_keyed_threads_stay_within_bound(self) -> None:
        rate, capacity, duration = 100.0, 10.0, 1.0
        # A short idle_timeout and a table of three for four keys make keys
        # expire and get evicted while the threads run.
        limiter: KeyedLimiter[int] = KeyedLimiter(
            lambda: TokenBucket(rate, capacity),
            idle_timeout=0.01,
            max_keys=3,
        )
        barrier = threading.Barrier(33)
        stop_at = [math.inf]
        grants: dict[int, list[tuple[float, float]]] = {key: [] for key in range(4)}
        threads = [
            threading.Thread(
                target=hammer,
                args=(limiter, index, barrier, stop_at, grants),
                name=f"test-keyed-hammer-{index}",
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
        assert len(limiter) <= 3
        total = sum(len(spans) for spans in grants.values())
        assert total >= capacity + rate * duration / 4
        for spans in grants.values():
            assert len(spans) <= capacity + rate * (ended - started) + 1e-6
            assert_spans_within_bucket_bound(spans, rate, capacity)
