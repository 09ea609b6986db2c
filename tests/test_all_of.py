"""Tests of AllOf: several limits enforced at once, taking from all or from none."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import defaultdict
from typing import Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncq.clock import SYSTEM_CLOCK
from syncq.errors import RateLimitExceeded
from syncq.limiters import (
    AllOf,
    FixedWindow,
    KeyedLimiter,
    LeakyBucket,
    Limiter,
    Reservation,
    SlidingWindow,
    TokenBucket,
)
from syncq.limiters.base import wait_for
from syncq.testing import FakeClock

WAIT = 5.0  # real seconds a thread in these tests may take before the test fails

Part = Union[TokenBucket, FixedWindow, SlidingWindow, LeakyBucket]


class InterruptedClock(FakeClock):
    """A fake clock whose sleep raises KeyboardInterrupt, as Ctrl-C would."""

    def sleep(self, seconds: float) -> None:
        raise KeyboardInterrupt


class ForeignLimiter:
    """A limiter from outside syncq: it has the methods of `Limiter` only."""

    def try_acquire(self, n: float = 1) -> bool:
        return True

    def acquire(
        self,
        n: float = 1,
        timeout: float | None = None,
        *,
        raise_on_timeout: bool = False,
    ) -> bool:
        return True

    def retry_after(self, n: float = 1) -> float:
        return 0.0

    def reserve(
        self, n: float = 1, *, timeout: float | None = None
    ) -> Reservation | None:
        return None


def state(part: Part) -> list[float]:
    """Return what a caller can observe of a part: its waits, tokens and queue."""
    if isinstance(part, TokenBucket):
        largest = part.capacity
    elif isinstance(part, LeakyBucket):
        largest = math.inf
    else:
        largest = part.limit
    observed = [part.retry_after(n) for n in (0.5, 1, 2, 3) if n <= largest]
    if isinstance(part, TokenBucket):
        observed.append(part.tokens)
    if isinstance(part, LeakyBucket):
        observed.append(part.waiting)
    return observed


def states(parts: tuple[Part, ...]) -> list[float]:
    """Return the `state` of every part, in one list."""
    return [value for part in parts for value in state(part)]


def four_parts(clock: FakeClock) -> tuple[Part, ...]:
    """Return a part of each kind, on `clock`, each able to grant 3 at once."""
    return (
        TokenBucket(1.0, capacity=3, clock=clock),
        FixedWindow(3, 2.0, clock=clock),
        SlidingWindow(3, 2.0, clock=clock),
        LeakyBucket(2.0, burst=2, clock=clock),
    )


def used_window(clock: FakeClock, window: float, limit: float = 1) -> SlidingWindow:
    """Return a sliding window of `limit` per `window`, used up at the current time.

    It lets nothing through until `window` seconds from now.
    """
    limiter = SlidingWindow(limit, window, clock=clock)
    assert limiter.try_acquire(limit)
    return limiter


class TestAllOfConstruction:
    def test_all_of_rejects_no_limiters(self) -> None:
        with pytest.raises(ValueError, match="at least one limiter"):
            AllOf()

    @pytest.mark.parametrize("limiter", [5, None, "5/s", TokenBucket])
    def test_all_of_rejects_non_limiter(self, limiter: object) -> None:
        with pytest.raises(TypeError, match="AllOf takes TokenBucket"):
            AllOf(limiter)  # type: ignore[arg-type]

    def test_all_of_rejects_foreign_limiter(self) -> None:
        foreign = ForeignLimiter()
        assert isinstance(foreign, Limiter)

        with pytest.raises(TypeError, match="outside syncq"):
            AllOf(foreign)

    def test_all_of_rejects_keyed_limiter(self) -> None:
        keyed: KeyedLimiter[str] = KeyedLimiter(lambda: TokenBucket("5/s"))

        with pytest.raises(TypeError, match=r"KeyedLimiter.*takes a key"):
            AllOf(keyed)  # type: ignore[arg-type]

    def test_all_of_rejects_same_limiter_twice(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, clock=clock)

        with pytest.raises(ValueError, match="more than once"):
            AllOf(bucket, bucket)

    def test_all_of_rejects_limiter_repeated_in_nested(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, clock=clock)
        inner = AllOf(bucket, SlidingWindow(1, 1.0, clock=clock))

        with pytest.raises(ValueError, match="more than once"):
            AllOf(inner, bucket)

    def test_all_of_rejects_different_clocks(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, clock=clock)
        window = SlidingWindow(1, 1.0, clock=FakeClock())

        with pytest.raises(ValueError, match="share one clock"):
            AllOf(bucket, window)

    def test_all_of_rejects_system_and_fake_clock(self, clock: FakeClock) -> None:
        with pytest.raises(ValueError, match="share one clock"):
            AllOf(TokenBucket(1.0), TokenBucket(1.0, clock=clock))

    def test_all_of_accepts_parts_on_system_clock(self) -> None:
        limiter = AllOf(TokenBucket(1.0), SlidingWindow(1, 1.0))

        assert limiter.try_acquire()

    def test_all_of_flattens_nested(self, clock: FakeClock) -> None:
        bucket, fixed, sliding, leaky = four_parts(clock)

        limiter = AllOf(AllOf(bucket, fixed), AllOf(sliding), leaky)

        assert limiter.parts == (bucket, fixed, sliding, leaky)

    def test_all_of_single_part_acts_as_part(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, capacity=2, clock=clock)
        limiter = AllOf(bucket)

        assert limiter.try_acquire(2)
        assert not limiter.try_acquire()
        assert bucket.tokens == 0.0

    def test_all_of_repr_lists_parts(self, clock: FakeClock) -> None:
        limiter = AllOf(
            TokenBucket(1.0, clock=clock), SlidingWindow(2, 3.0, clock=clock)
        )

        assert repr(limiter) == (
            "AllOf(TokenBucket(rate=1.0, capacity=1.0), "
            "SlidingWindow(limit=2.0, window=3.0))"
        )


class TestAllOfArguments:
    def test_all_of_rejects_n_beyond_a_part(self, clock: FakeClock) -> None:
        limiter = AllOf(
            TokenBucket(10.0, capacity=10, clock=clock),
            SlidingWindow(4, 1.0, clock=clock),
        )

        with pytest.raises(ValueError, match=r"SlidingWindow\(limit=4.0"):
            limiter.try_acquire(5)

    @pytest.mark.parametrize("method", ["try_acquire", "retry_after", "reserve"])
    def test_all_of_n_check_names_part(self, clock: FakeClock, method: str) -> None:
        limiter = AllOf(
            SlidingWindow(9, 1.0, clock=clock),
            TokenBucket(1.0, capacity=2, clock=clock),
        )

        with pytest.raises(ValueError, match=r"TokenBucket\(rate=1.0, capacity=2.0\)"):
            getattr(limiter, method)(3)

    def test_all_of_n_check_takes_nothing(self, clock: FakeClock) -> None:
        parts = four_parts(clock)
        limiter = AllOf(*parts)
        before = states(parts)

        with pytest.raises(ValueError):
            limiter.reserve(4)

        assert states(parts) == before

    @pytest.mark.parametrize("n", [0, -1, math.nan, math.inf])
    def test_all_of_rejects_bad_n_value(self, clock: FakeClock, n: float) -> None:
        limiter = AllOf(*four_parts(clock))

        with pytest.raises(ValueError, match="n"):
            limiter.reserve(n)

    @pytest.mark.parametrize("n", [True, "1", None, [1]])
    def test_all_of_rejects_bad_n_type(self, clock: FakeClock, n: object) -> None:
        limiter = AllOf(*four_parts(clock))

        with pytest.raises(TypeError, match="n"):
            limiter.try_acquire(n)  # type: ignore[arg-type]

    @pytest.mark.parametrize("timeout", [-1.0, math.nan])
    def test_all_of_rejects_bad_timeout_value(
        self, clock: FakeClock, timeout: float
    ) -> None:
        limiter = AllOf(*four_parts(clock))

        with pytest.raises(ValueError, match="timeout"):
            limiter.reserve(timeout=timeout)

    @pytest.mark.parametrize("timeout", [True, "1"])
    def test_all_of_rejects_bad_timeout_type(
        self, clock: FakeClock, timeout: object
    ) -> None:
        limiter = AllOf(*four_parts(clock))

        with pytest.raises(TypeError, match="timeout"):
            limiter.acquire(timeout=timeout)  # type: ignore[arg-type]

    def test_all_of_accepts_float_n(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, capacity=3, clock=clock)
        limiter = AllOf(bucket, SlidingWindow(3, 1.0, clock=clock))

        assert limiter.try_acquire(1.5)
        assert bucket.tokens == 1.5


class TestAllOfTryAcquire:
    def test_all_of_try_acquire_takes_from_every_part(self, clock: FakeClock) -> None:
        parts = four_parts(clock)
        limiter = AllOf(*parts)
        # The same limiters, each granted 2 tokens on its own.
        alone = four_parts(clock)
        for part in alone:
            assert part.try_acquire(2)

        assert limiter.try_acquire(2)

        assert states(parts) == states(alone)

    def test_all_of_refused_try_acquire_takes_nothing(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, capacity=3, clock=clock)
        window = used_window(clock, 1.0)
        limiter = AllOf(bucket, window)
        before = states((bucket, window))

        assert not limiter.try_acquire()

        assert states((bucket, window)) == before
        assert bucket.tokens == 3.0

    def test_all_of_try_acquire_waits_for_slowest(self, clock: FakeClock) -> None:
        limiter = AllOf(
            TokenBucket(10.0, capacity=5, clock=clock), used_window(clock, 1.0)
        )

        clock.advance(0.5)
        assert not limiter.try_acquire()
        clock.advance(0.5)
        assert limiter.try_acquire()

    def test_all_of_try_acquire_never_overtakes_waiter(self, clock: FakeClock) -> None:
        limiter = AllOf(
            TokenBucket(10.0, capacity=5, clock=clock), used_window(clock, 1.0)
        )
        reservation = limiter.reserve()
        assert reservation is not None

        clock.advance(1.0)

        assert not limiter.try_acquire()


class TestAllOfReserve:
    def test_all_of_reserve_due_at_latest_part(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, capacity=1, clock=clock)
        assert bucket.try_acquire()
        limiter = AllOf(bucket, used_window(clock, 2.5))

        reservation = limiter.reserve()

        assert reservation is not None
        assert reservation.ready_at == 2.5

    def test_all_of_reserve_now_when_all_have_room(self, clock: FakeClock) -> None:
        limiter = AllOf(*four_parts(clock))

        reservation = limiter.reserve(3)

        assert reservation is not None
        assert reservation.ready_at == 0.0

    def test_all_of_unmet_timeout_returns_none(self, clock: FakeClock) -> None:
        limiter = AllOf(TokenBucket(1.0, clock=clock), used_window(clock, 2.0))

        assert limiter.reserve(timeout=1.5) is None

    def test_all_of_unmet_timeout_takes_nothing(self, clock: FakeClock) -> None:
        parts = (*four_parts(clock), used_window(clock, 2.0))
        limiter = AllOf(*parts)
        before = states(parts)

        limiter.reserve(timeout=1.5)

        assert states(parts) == before

    def test_all_of_met_timeout_reserves(self, clock: FakeClock) -> None:
        limiter = AllOf(TokenBucket(1.0, clock=clock), used_window(clock, 2.0))

        reservation = limiter.reserve(timeout=2.0)

        assert reservation is not None
        assert reservation.ready_at == 2.0

    def test_all_of_token_bucket_counts_grant_when_due(self, clock: FakeClock) -> None:
        # Reserved in the bucket alone, the full bucket would be spent now and
        # refill by t=10, granting 2 * capacity at t=10.
        bucket = TokenBucket(1.0, capacity=5, clock=clock)
        limiter = AllOf(bucket, used_window(clock, 10.0, limit=5))
        reservation = limiter.reserve(5)
        assert reservation is not None
        assert reservation.ready_at == 10.0

        clock.advance(10.0)

        assert not bucket.try_acquire()
        assert bucket.tokens == 0.0

    def test_all_of_token_bucket_refills_after_due_grant(
        self, clock: FakeClock
    ) -> None:
        bucket = TokenBucket(1.0, capacity=5, clock=clock)
        limiter = AllOf(bucket, used_window(clock, 10.0, limit=5))
        assert limiter.reserve(5) is not None

        clock.advance(12.0)

        assert bucket.tokens == pytest.approx(2.0)

    def test_all_of_token_bucket_lends_spare_tokens(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, capacity=10, clock=clock)
        limiter = AllOf(bucket, used_window(clock, 5.0))
        assert limiter.reserve(1) is not None

        # The grant at t=5 starts from a full bucket, so 4 tokens are left now.
        assert bucket.try_acquire(4)
        assert not bucket.try_acquire(0.5)

    def test_all_of_fixed_window_counts_due_window(self, clock: FakeClock) -> None:
        fixed = FixedWindow(2, 10.0, clock=clock)
        limiter = AllOf(fixed, used_window(clock, 15.0))
        assert limiter.reserve() is not None

        clock.advance(15.0)

        assert not fixed.try_acquire(2)
        assert fixed.try_acquire(1)

    def test_all_of_fixed_window_refuses_before_due_window(
        self, clock: FakeClock
    ) -> None:
        fixed = FixedWindow(2, 10.0, clock=clock)
        limiter = AllOf(fixed, used_window(clock, 15.0))
        assert limiter.reserve() is not None

        clock.advance(5.0)

        assert not fixed.try_acquire()

    def test_all_of_sliding_window_counts_from_due_time(self, clock: FakeClock) -> None:
        sliding = SlidingWindow(1, 4.0, clock=clock)
        limiter = AllOf(sliding, used_window(clock, 3.0))
        assert limiter.reserve() is not None

        assert sliding.retry_after() == 7.0

    def test_all_of_leaky_bucket_slot_at_due_time(self, clock: FakeClock) -> None:
        leaky = LeakyBucket(1.0, clock=clock)
        limiter = AllOf(leaky, used_window(clock, 3.0))
        assert limiter.reserve() is not None

        assert leaky.retry_after() == 4.0

    def test_all_of_leaky_bucket_grants_nothing_before_due(
        self, clock: FakeClock
    ) -> None:
        # The burst would allow a grant now, but it would come before the
        # grant counted at t=3 and break the spacing in time order.
        leaky = LeakyBucket(1.0, burst=5, clock=clock)
        limiter = AllOf(leaky, used_window(clock, 3.0))
        assert limiter.reserve() is not None

        clock.advance(2.0)

        assert not leaky.try_acquire()

    def test_all_of_leaky_burst_after_due(self, clock: FakeClock) -> None:
        leaky = LeakyBucket(1.0, burst=5, clock=clock)
        limiter = AllOf(leaky, used_window(clock, 3.0))
        assert limiter.reserve() is not None

        clock.advance(3.0)

        assert leaky.try_acquire()


class TestAllOfAcquire:
    def test_all_of_acquire_sleeps_until_due(self) -> None:
        clock = FakeClock(auto_advance=True)
        limiter = AllOf(TokenBucket(1.0, clock=clock), used_window(clock, 2.0))

        assert limiter.acquire()

        assert clock.sleeps == [2.0]

    def test_all_of_unmet_timeout_returns_false_at_once(self, clock: FakeClock) -> None:
        limiter = AllOf(TokenBucket(1.0, clock=clock), used_window(clock, 2.0))

        assert not limiter.acquire(timeout=1.0)

        assert clock.sleeps == []

    def test_all_of_unmet_timeout_can_raise(self, clock: FakeClock) -> None:
        limiter = AllOf(TokenBucket(1.0, clock=clock), used_window(clock, 2.0))

        with pytest.raises(RateLimitExceeded, match=r"timeout=1\.0") as caught:
            limiter.acquire(timeout=1.0, raise_on_timeout=True)

        assert caught.value.retry_after == 2.0

    def test_all_of_context_manager_takes_from_all(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, capacity=2, clock=clock)
        window = SlidingWindow(2, 1.0, clock=clock)
        limiter = AllOf(bucket, window)

        with limiter:
            pass

        assert bucket.tokens == 1.0
        assert window.try_acquire()
        assert not window.try_acquire()

    def test_all_of_decorator_takes_per_call(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, capacity=2, clock=clock)
        limiter = AllOf(bucket, SlidingWindow(2, 1.0, clock=clock))

        @limiter
        def call() -> str:
            return "called"

        assert call() == "called"
        assert call() == "called"
        assert bucket.tokens == 0.0


class TestAllOfCancel:
    def test_all_of_cancel_returns_tokens_to_all(self, clock: FakeClock) -> None:
        parts = (*four_parts(clock), used_window(clock, 2.0))
        limiter = AllOf(*parts)
        before = states(parts)
        reservation = limiter.reserve(1)
        assert reservation is not None
        assert reservation.ready_at == 2.0

        reservation.cancel()

        assert states(parts) == before

    def test_all_of_cancel_after_due_does_nothing(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, capacity=3, clock=clock)
        limiter = AllOf(bucket, used_window(clock, 2.0))
        reservation = limiter.reserve(1)
        assert reservation is not None
        clock.advance(2.0)

        reservation.cancel()

        assert bucket.tokens == 2.0

    def test_all_of_cancel_twice_returns_once(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, capacity=3, clock=clock)
        limiter = AllOf(bucket, used_window(clock, 2.0))
        first = limiter.reserve(1)
        assert first is not None
        first.cancel()
        assert limiter.try_acquire(1) is False
        second = limiter.reserve(1)
        assert second is not None

        first.cancel()

        assert not bucket.try_acquire(3)

    def test_all_of_cancel_forfeits_behind_other_reservation(
        self, clock: FakeClock
    ) -> None:
        bucket = TokenBucket(1.0, capacity=3, clock=clock)
        window = used_window(clock, 2.0)
        limiter = AllOf(bucket, window)
        reservation = limiter.reserve(1)
        assert reservation is not None
        assert window.reserve() is not None
        window_after_reserve = state(window)

        reservation.cancel()

        assert bucket.tokens == 3.0
        assert state(window) == window_after_reserve

    def test_all_of_cancel_after_direct_grant_stays_bounded(
        self, clock: FakeClock
    ) -> None:
        bucket = TokenBucket(1.0, capacity=10, clock=clock)
        limiter = AllOf(bucket, used_window(clock, 5.0))
        reservation = limiter.reserve(1)
        assert reservation is not None
        assert bucket.try_acquire(4)

        reservation.cancel()

        # The grant comes back, but not the refill until t=5 that the grant
        # was counted against: no more than without the grant.
        assert bucket.tokens == 1.0

    def test_all_of_cancel_keeps_direct_grants_in_window(
        self, clock: FakeClock
    ) -> None:
        fixed = FixedWindow(3, 10.0, clock=clock)
        limiter = AllOf(fixed, used_window(clock, 2.0))
        reservation = limiter.reserve()
        assert reservation is not None
        assert fixed.try_acquire(2)

        reservation.cancel()

        assert not fixed.try_acquire(2)
        assert fixed.try_acquire(1)

    def test_all_of_keyboard_interrupt_returns_tokens(self) -> None:
        clock = InterruptedClock()
        parts = (
            TokenBucket(1.0, capacity=3, clock=clock),
            FixedWindow(3, 2.0, clock=clock),
            SlidingWindow(3, 2.0, clock=clock),
            LeakyBucket(2.0, burst=2, max_waiting=1, clock=clock),
            used_window(clock, 2.0, limit=3),
        )
        limiter = AllOf(*parts)
        before = states(parts)

        with pytest.raises(KeyboardInterrupt):
            limiter.acquire(2)

        assert states(parts) == before

    def test_all_of_cancel_from_threads_returns_once(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, capacity=3, clock=clock)
        limiter = AllOf(bucket, used_window(clock, 2.0))
        reservation = limiter.reserve(1)
        assert reservation is not None
        barrier = threading.Barrier(8)

        def cancel() -> None:
            barrier.wait(WAIT)
            reservation.cancel()

        threads = [threading.Thread(target=cancel) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)

        assert not any(thread.is_alive() for thread in threads)
        assert bucket.tokens == 3.0


class TestAllOfLeakyQueue:
    def test_all_of_rejects_wait_when_queue_full(self, clock: FakeClock) -> None:
        parts = (LeakyBucket(1.0, max_waiting=1, clock=clock), used_window(clock, 2.0))
        limiter = AllOf(*parts)
        assert limiter.reserve() is not None
        before = states(parts)

        assert limiter.reserve() is None

        assert states(parts) == before

    def test_all_of_full_queue_error_names_part(self, clock: FakeClock) -> None:
        leaky = LeakyBucket(1.0, max_waiting=1, clock=clock)
        limiter = AllOf(leaky, used_window(clock, 2.0))
        assert limiter.reserve() is not None

        with pytest.raises(RateLimitExceeded, match="max_waiting=1"):
            limiter.acquire(raise_on_timeout=True)

    def test_all_of_full_queue_allows_no_wait(self, clock: FakeClock) -> None:
        leaky = LeakyBucket(1.0, burst=3, max_waiting=0, clock=clock)
        limiter = AllOf(leaky, TokenBucket(1.0, capacity=3, clock=clock))

        assert limiter.reserve() is not None

    def test_all_of_counts_waiting_in_leaky_part(self, clock: FakeClock) -> None:
        leaky = LeakyBucket(1.0, burst=3, clock=clock)
        limiter = AllOf(leaky, used_window(clock, 2.0))

        assert limiter.reserve() is not None

        assert leaky.waiting == 1


class TestAllOfWaiters:
    def test_all_of_serves_waiters_in_order(self, clock: FakeClock) -> None:
        bucket = TokenBucket(1.0, capacity=3, clock=clock)
        assert bucket.try_acquire(3)
        limiter = AllOf(bucket, SlidingWindow(10, 2.0, clock=clock))
        # A large request first, then small ones that would fit sooner alone.
        sizes = [3, 1, 1]
        due = [3.0, 4.0, 5.0]
        order: list[int] = []
        lock = threading.Lock()

        def acquire(number: int, barrier: threading.Barrier) -> None:
            barrier.wait(WAIT)
            limiter.acquire(sizes[number])
            with lock:
                order.append(number)

        threads = []
        for number in range(len(sizes)):
            barrier = threading.Barrier(2)
            thread = threading.Thread(target=acquire, args=(number, barrier))
            thread.start()
            threads.append(thread)
            barrier.wait(WAIT)
            clock.wait_for_sleepers(number + 1, timeout=WAIT)
        assert clock.sleeps == due
        for thread, ready_at in zip(threads, due):
            clock.advance(ready_at - clock.monotonic())
            thread.join(WAIT)
        for thread in threads:
            thread.join(WAIT)

        assert not any(thread.is_alive() for thread in threads)
        assert order == [0, 1, 2]

    def test_all_of_waiters_keep_order_across_parts(self, clock: FakeClock) -> None:
        # The window binds the first waiter, the bucket would let the second
        # one go sooner on its own.
        limiter = AllOf(
            TokenBucket(10.0, capacity=10, clock=clock), used_window(clock, 1.0)
        )

        first = limiter.reserve()
        second = limiter.reserve()

        assert first is not None
        assert second is not None
        assert first.ready_at == 1.0
        assert second.ready_at == 2.0


class TestAllOfSharedParts:
    def test_all_of_waits_for_direct_caller_of_part(self, clock: FakeClock) -> None:
        window = SlidingWindow(1, 2.0, clock=clock)
        limiter = AllOf(TokenBucket(1.0, clock=clock), window)
        assert window.reserve() is not None

        reservation = limiter.reserve()

        assert reservation is not None
        assert reservation.ready_at == 2.0

    def test_all_of_shared_part_between_two(self, clock: FakeClock) -> None:
        shared = TokenBucket(1.0, capacity=2, clock=clock)
        first = AllOf(shared, SlidingWindow(5, 1.0, clock=clock))
        second = AllOf(FixedWindow(5, 1.0, clock=clock), shared)

        assert first.try_acquire()
        assert second.try_acquire()

        assert not first.try_acquire()
        assert not second.try_acquire()


# Each op: seconds to advance the clock first, the target ("all" and "pair"
# are AllOf objects, the others parts used directly), the kind of call, the
# number of tokens, and a number that picks the reservation to cancel.
_TARGETS_SHARED = ("all", "all", "all", "pair", "bucket", "fixed", "sliding", "leaky")
_KINDS = ("try", "reserve", "reserve", "timeout", "cancel")
_OPS = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from((0.0, 0.0, 0.1, 0.25, 0.5, 1.0)),
            st.floats(min_value=0.0, max_value=3.0),
        ),
        st.sampled_from(_TARGETS_SHARED),
        st.sampled_from(_KINDS),
        st.sampled_from((1, 2, 3, 0.5, 1.5)),
        st.integers(min_value=0, max_value=1000),
    ),
    max_size=60,
)
# Direct callers that only try_acquire, so a reservation of the AllOf stays the
# newest in its parts and its cancel gives tokens back. A pick of -1 cancels the
# newest reservation.
_OPS_DIRECT = st.lists(
    st.tuples(
        st.sampled_from((0.0, 0.0, 0.1, 0.25, 0.5, 1.0)),
        st.sampled_from(("all", "bucket", "fixed", "sliding", "leaky")),
        st.sampled_from(("try", "try", "reserve", "cancel")),
        st.sampled_from((0.5, 1, 3)),
        st.just(-1),
    ),
    max_size=40,
)
_PARAMS = st.fixed_dictionaries(
    {
        "bucket_rate": st.sampled_from((0.5, 1.0, 2.0, 5.0)),
        "bucket_capacity": st.sampled_from((3.0, 4.0, 6.0)),
        "fixed_limit": st.sampled_from((3.0, 4.0, 5.0)),
        "fixed_window": st.sampled_from((1.0, 2.5, 4.0)),
        "sliding_limit": st.sampled_from((3.0, 4.0, 6.0)),
        "sliding_window": st.sampled_from((1.0, 2.0, 3.5)),
        "leaky_rate": st.sampled_from((1.0, 2.0, 4.0)),
        "leaky_burst": st.sampled_from((0.0, 1.0, 3.0)),
    }
)


@dataclasses.dataclass
class Grant:
    """A grant as one part counts it: when, how many tokens, and if still used."""

    time: float
    tokens: float
    sequence: int
    used: bool = True


@dataclasses.dataclass
class Scenario:
    """Four parts, two AllOf objects over them, and the grants of each part."""

    clock: FakeClock
    params: dict[str, float]
    parts: dict[str, Part]
    limiters: dict[str, AllOf]
    grants: dict[str, list[Grant]] = dataclasses.field(
        default_factory=lambda: defaultdict(list)
    )
    pending: list[tuple[Reservation, list[Grant]]] = dataclasses.field(
        default_factory=list
    )
    sequence: int = 0

    @classmethod
    def build(cls, params: dict[str, float]) -> Scenario:
        clock = FakeClock()
        parts: dict[str, Part] = {
            "bucket": TokenBucket(
                params["bucket_rate"], params["bucket_capacity"], clock=clock
            ),
            "fixed": FixedWindow(
                params["fixed_limit"], params["fixed_window"], clock=clock
            ),
            "sliding": SlidingWindow(
                params["sliding_limit"], params["sliding_window"], clock=clock
            ),
            "leaky": LeakyBucket(
                params["leaky_rate"], burst=params["leaky_burst"], clock=clock
            ),
        }
        limiters = {
            "all": AllOf(*parts.values()),
            "pair": AllOf(parts["sliding"], parts["bucket"]),
        }
        return cls(clock, params, parts, limiters)

    def names(self, target: str) -> list[str]:
        """Return the names of the parts that a grant by `target` takes from."""
        if target == "all":
            return list(self.parts)
        if target == "pair":
            return ["sliding", "bucket"]
        return [target]

    def limiter(self, target: str) -> AllOf | Part:
        return self.limiters[target] if target in self.limiters else self.parts[target]

    def record(self, target: str, at: float, tokens: float) -> list[Grant]:
        self.sequence += 1
        recorded = [Grant(at, tokens, self.sequence) for _ in self.names(target)]
        for name, grant in zip(self.names(target), recorded):
            self.grants[name].append(grant)
        return recorded

    def cancel(self, pick: int) -> None:
        if not self.pending:
            return
        reservation, recorded = self.pending.pop(pick % len(self.pending))
        not_due = self.clock.monotonic() < reservation.ready_at
        reservation.cancel()
        if not_due:
            for grant in recorded:
                grant.used = False

    def run(self, op: tuple[float, str, str, float, int]) -> None:
        elapsed, target, kind, tokens, pick = op
        self.clock.advance(elapsed)
        if kind == "cancel":
            self.cancel(pick)
            return
        limiter = self.limiter(target)
        now = self.clock.monotonic()
        if kind == "try":
            if limiter.try_acquire(tokens):
                self.record(target, now, tokens)
            return
        timeout = None if kind == "reserve" else float(pick % 4) / 2
        reservation = limiter.reserve(tokens, timeout=timeout)
        if reservation is not None:
            recorded = self.record(target, reservation.ready_at, tokens)
            self.pending.append((reservation, recorded))

    def used(self, name: str) -> list[Grant]:
        grants = [grant for grant in self.grants[name] if grant.used]
        return sorted(grants, key=lambda grant: (grant.time, grant.sequence))


def assert_bucket_bound(
    grants: list[Grant], rate: float, capacity: float, slack: float = 1e-9
) -> None:
    """Assert at most capacity + rate * T tokens in every interval of length T.

    `grants` are in time order. `slack` is the relative rounding error allowed.
    """
    for first, start in enumerate(grants):
        if first > 0 and grants[first - 1].time == start.time:
            continue
        total = 0.0
        for end in grants[first:]:
            total += end.tokens
            bound = capacity + rate * (end.time - start.time)
            assert total <= bound + slack * (bound + 1.0), (start, end, total)


def assert_fixed_bound(grants: list[Grant], limit: float, window: float) -> None:
    """Assert at most `limit` tokens in every aligned window."""
    totals: dict[int, float] = defaultdict(float)
    for grant in grants:
        totals[math.floor(grant.time / window)] += grant.tokens
    for index, total in totals.items():
        assert total <= limit + 1e-9, (index, total)


def assert_sliding_bound(grants: list[Grant], limit: float, window: float) -> None:
    """Assert at most `limit` tokens in every half-open interval of `window`."""
    for first, start in enumerate(grants):
        total = sum(
            grant.tokens for grant in grants[first:] if grant.time < start.time + window
        )
        total += sum(
            grant.tokens for grant in grants[:first] if grant.time == start.time
        )
        assert total <= limit + 1e-9, (start, total)


def assert_leaky_bound(
    grants: list[Grant], rate: float, burst: float, slack: float = 1e-9
) -> None:
    """Assert t_j - t_i >= (n_i + ... + n_(j-1) - burst) / rate in time order.

    `grants` are in time order. `slack` is the rounding error allowed, in
    seconds.
    """
    for first, start in enumerate(grants):
        total = 0.0
        for later in range(first + 1, len(grants)):
            total += grants[later - 1].tokens
            needed = (total - burst) / rate
            gap = grants[later].time - start.time
            assert gap >= needed - slack, (start, later, total)


def assert_every_bound(scenario: Scenario) -> None:
    params = scenario.params
    assert_bucket_bound(
        scenario.used("bucket"), params["bucket_rate"], params["bucket_capacity"]
    )
    assert_fixed_bound(
        scenario.used("fixed"), params["fixed_limit"], params["fixed_window"]
    )
    assert_sliding_bound(
        scenario.used("sliding"), params["sliding_limit"], params["sliding_window"]
    )
    assert_leaky_bound(
        scenario.used("leaky"), params["leaky_rate"], params["leaky_burst"]
    )


class TestAllOfProperties:
    @settings(max_examples=150, deadline=None)
    @given(params=_PARAMS, ops=_OPS)
    def test_all_of_keeps_every_part_bound(
        self, params: dict[str, float], ops: list[tuple[float, str, str, float, int]]
    ) -> None:
        scenario = Scenario.build(params)

        for op in ops:
            scenario.run(op)

        assert_every_bound(scenario)

    @settings(max_examples=150, deadline=None)
    @given(params=_PARAMS, ops=_OPS_DIRECT)
    def test_all_of_cancel_among_direct_grants_keeps_bounds(
        self, params: dict[str, float], ops: list[tuple[float, str, str, float, int]]
    ) -> None:
        scenario = Scenario.build(params)

        for elapsed, target, kind, tokens, pick in ops:
            direct_kind = kind if target == "all" else "try"
            scenario.run((elapsed, target, direct_kind, tokens, pick))

        assert_every_bound(scenario)

    @settings(max_examples=150, deadline=None)
    @given(params=_PARAMS, ops=_OPS)
    def test_all_of_refusal_leaves_parts_unchanged(
        self, params: dict[str, float], ops: list[tuple[float, str, str, float, int]]
    ) -> None:
        scenario = Scenario.build(params)
        parts = tuple(scenario.parts.values())

        for elapsed, target, kind, tokens, pick in ops:
            if kind == "cancel" or target not in scenario.limiters:
                scenario.run((elapsed, target, kind, tokens, pick))
                continue
            scenario.clock.advance(elapsed)
            limiter = scenario.limiters[target]
            before = states(parts)
            if kind == "try":
                granted = limiter.try_acquire(tokens)
            else:
                granted = limiter.reserve(tokens, timeout=pick % 4 / 2) is not None

            if not granted:
                assert states(parts) == pytest.approx(before)

    @settings(max_examples=150, deadline=None)
    @given(params=_PARAMS, ops=_OPS)
    def test_all_of_wastes_no_capacity(
        self, params: dict[str, float], ops: list[tuple[float, str, str, float, int]]
    ) -> None:
        scenario = Scenario.build(params)
        limiter = scenario.limiters["all"]
        parts = tuple(scenario.parts.values())

        for elapsed, _, kind, tokens, pick in ops:
            if kind == "cancel":
                scenario.run((elapsed, "all", kind, tokens, pick))
                continue
            scenario.clock.advance(elapsed)
            now = scenario.clock.monotonic()
            waits = [part.retry_after(tokens) for part in parts]
            if kind == "try":
                assert limiter.try_acquire(tokens) == (max(waits) == 0.0)
                continue
            reservation = limiter.reserve(tokens)
            assert reservation is not None
            scenario.pending.append((reservation, []))

            assert reservation.ready_at == pytest.approx(now + max(waits), abs=1e-9)


def stress(
    limiter: AllOf | Part,
    requests: int,
    barrier: threading.Barrier,
    grants: list[tuple[float, float]],
    lock: threading.Lock,
) -> None:
    """Reserve and wait `requests` times, recording each grant's due time."""
    barrier.wait(WAIT)
    for request in range(requests):
        tokens = 1.0 if request % 3 else 2.0
        timeout = 0.0 if request % 4 == 0 else None
        reservation = limiter.reserve(tokens, timeout=timeout)
        if reservation is None:
            continue
        with lock:
            grants.append((reservation.ready_at, tokens))
        wait_for(reservation, SYSTEM_CLOCK)


class TestAllOfStress:
    @pytest.mark.timeout(30)
    def test_all_of_keeps_bounds_under_32_threads(self) -> None:
        bucket = TokenBucket(600.0, capacity=20)
        sliding = SlidingWindow(60, 0.1)
        fixed = FixedWindow(80, 0.1)
        leaky = LeakyBucket(800.0, burst=4)
        limiters: list[AllOf | Part] = [
            AllOf(bucket, sliding, fixed),
            AllOf(fixed, leaky, bucket),
            AllOf(sliding, leaky),
            bucket,
        ]
        names = {id(bucket): "bucket", id(sliding): "sliding"}
        names.update({id(fixed): "fixed", id(leaky): "leaky"})
        thread_count = 32
        barrier = threading.Barrier(thread_count)
        lock = threading.Lock()
        per_limiter: list[list[tuple[float, float]]] = [[] for _ in limiters]
        threads = [
            threading.Thread(
                target=stress,
                args=(
                    limiters[index % len(limiters)],
                    6,
                    barrier,
                    per_limiter[index % len(limiters)],
                    lock,
                ),
                name=f"all-of-stress-{index}",
            )
            for index in range(thread_count)
        ]

        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20.0)

        assert not any(thread.is_alive() for thread in threads)
        grants: dict[str, list[Grant]] = defaultdict(list)
        for limiter, recorded in zip(limiters, per_limiter):
            parts = limiter.parts if isinstance(limiter, AllOf) else (limiter,)
            for sequence, (at, tokens) in enumerate(recorded):
                for part in parts:
                    grants[names[id(part)]].append(Grant(at, tokens, sequence))
        # Grants at the same time keep no order here, so the largest goes
        # last, the order in which the leaky bound is loosest.
        for part_grants in grants.values():
            part_grants.sort(key=lambda grant: (grant.time, grant.tokens))
        assert sum(len(recorded) for recorded in per_limiter) > 0
        # The times are large monotonic readings, so rounding is larger too.
        assert_bucket_bound(grants["bucket"], 600.0, 20.0, slack=1e-6)
        assert_sliding_bound(grants["sliding"], 60.0, 0.1)
        assert_fixed_bound(grants["fixed"], 80.0, 0.1)
        assert_leaky_bound(grants["leaky"], 800.0, 4.0, slack=1e-6)

    @pytest.mark.timeout(30)
    def test_all_of_opposite_orders_do_not_deadlock(self) -> None:
        first = TokenBucket(1e9, capacity=1e9)
        second = SlidingWindow(1e9, 1.0)
        forward = AllOf(first, second)
        backward = AllOf(second, first)
        barrier = threading.Barrier(8)

        def hammer(limiter: AllOf) -> None:
            barrier.wait(WAIT)
            for _ in range(2_000):
                limiter.try_acquire()

        threads = [
            threading.Thread(target=hammer, args=(forward if index % 2 else backward,))
            for index in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20.0)

        assert not any(thread.is_alive() for thread in threads)
