"""One body of tests for the `Limiter` protocol, run against every limiter."""

from __future__ import annotations

import math
import threading
from typing import Callable

import pytest

from syncq.errors import RateLimitExceeded
from syncq.limiters import (
    AllOf,
    FixedWindow,
    LeakyBucket,
    Limiter,
    LimiterBase,
    SlidingWindow,
    TokenBucket,
)
from syncq.testing import FakeClock

WAIT = 5.0  # real seconds a thread in these tests may take before the test fails

# Each factory builds a limiter that grants one token now and then one token
# per second, so the same expectations hold for every algorithm.
Factory = Callable[[FakeClock], LimiterBase]
FACTORIES: dict[str, Factory] = {
    "token_bucket": lambda clock: TokenBucket(1.0, capacity=1, clock=clock),
    "fixed_window": lambda clock: FixedWindow(1, 1.0, clock=clock),
    "sliding_window": lambda clock: SlidingWindow(1, 1.0, clock=clock),
    "leaky_bucket": lambda clock: LeakyBucket(1.0, clock=clock),
    # The bucket allows a burst of 5, so the window sets the pace.
    "all_of": lambda clock: AllOf(
        TokenBucket(10.0, capacity=5, clock=clock), SlidingWindow(1, 1.0, clock=clock)
    ),
}


@pytest.fixture(params=sorted(FACTORIES))
def limiter(request: pytest.FixtureRequest, clock: FakeClock) -> LimiterBase:
    """Return each limiter in turn, on the test's fake clock."""
    return FACTORIES[request.param](clock)


class TestLimiterContract:
    def test_limiter_follows_protocol(self, limiter: LimiterBase) -> None:
        assert isinstance(limiter, Limiter)

    def test_limiter_grants_first_token(self, limiter: LimiterBase) -> None:
        assert limiter.try_acquire()

    def test_limiter_refuses_second_token_at_once(self, limiter: LimiterBase) -> None:
        limiter.try_acquire()

        assert not limiter.try_acquire()

    def test_limiter_grants_again_after_a_second(
        self, limiter: LimiterBase, clock: FakeClock
    ) -> None:
        limiter.try_acquire()

        clock.advance(1.0)

        assert limiter.try_acquire()

    def test_limiter_retry_after_counts_down(
        self, limiter: LimiterBase, clock: FakeClock
    ) -> None:
        limiter.try_acquire()
        clock.advance(0.25)

        retry_after = limiter.retry_after()

        assert 0 < retry_after <= 1.0

    def test_limiter_retry_after_zero_when_available(
        self, limiter: LimiterBase
    ) -> None:
        assert limiter.retry_after() == 0.0

    def test_limiter_unmet_timeout_returns_false_at_once(
        self, limiter: LimiterBase, clock: FakeClock
    ) -> None:
        limiter.try_acquire()

        granted = limiter.acquire(timeout=0.5)

        assert not granted
        assert clock.sleeps == []
        assert clock.monotonic() == 0.0

    def test_limiter_unmet_timeout_takes_nothing(
        self, limiter: LimiterBase, clock: FakeClock
    ) -> None:
        limiter.try_acquire()
        limiter.acquire(timeout=0.5)

        clock.advance(1.0)

        assert limiter.try_acquire()

    def test_limiter_unmet_timeout_can_raise(self, limiter: LimiterBase) -> None:
        limiter.try_acquire()

        with pytest.raises(RateLimitExceeded) as caught:
            limiter.acquire(timeout=0.5, raise_on_timeout=True)

        assert 0 < caught.value.retry_after <= 1.0

    def test_limiter_reserve_with_unmet_timeout_returns_none(
        self, limiter: LimiterBase
    ) -> None:
        limiter.try_acquire()

        assert limiter.reserve(timeout=0.5) is None

    def test_limiter_reservation_due_when_token_exists(
        self, limiter: LimiterBase
    ) -> None:
        limiter.try_acquire()

        reservation = limiter.reserve()

        assert reservation is not None
        assert reservation.ready_at == pytest.approx(1.0)

    def test_limiter_try_acquire_never_overtakes_reservation(
        self, limiter: LimiterBase, clock: FakeClock
    ) -> None:
        limiter.try_acquire()
        limiter.reserve()

        clock.advance(1.0)

        assert not limiter.try_acquire()

    def test_limiter_serves_blocked_callers_in_order(
        self, limiter: LimiterBase, clock: FakeClock
    ) -> None:
        limiter.try_acquire()
        order: list[int] = []
        lock = threading.Lock()

        def acquire(number: int) -> None:
            limiter.acquire()
            with lock:
                order.append(number)

        threads = []
        for number in range(3):
            thread = threading.Thread(target=acquire, args=(number,))
            thread.start()
            threads.append(thread)
            clock.wait_for_sleepers(number + 1, timeout=WAIT)
        for woken in range(1, 4):
            clock.advance(1.0)
            threads[woken - 1].join(WAIT)
        for thread in threads:
            thread.join(WAIT)

        assert not any(thread.is_alive() for thread in threads)
        assert order == [0, 1, 2]

    def test_limiter_context_manager_takes_a_token(self, limiter: LimiterBase) -> None:
        with limiter:
            pass

        assert not limiter.try_acquire()

    def test_limiter_decorator_takes_a_token_per_call(
        self, limiter: LimiterBase
    ) -> None:
        @limiter
        def call() -> str:
            return "called"

        assert call() == "called"
        assert not limiter.try_acquire()

    @pytest.mark.parametrize("n", [0, -1, math.nan, math.inf])
    def test_limiter_rejects_bad_n_value(self, limiter: LimiterBase, n: float) -> None:
        with pytest.raises(ValueError, match="n"):
            limiter.try_acquire(n)

    @pytest.mark.parametrize("n", [True, "1", None])
    def test_limiter_rejects_bad_n_type(self, limiter: LimiterBase, n: object) -> None:
        with pytest.raises(TypeError, match="n"):
            limiter.try_acquire(n)  # type: ignore[arg-type]

    @pytest.mark.parametrize("timeout", [-1.0, math.nan])
    def test_limiter_rejects_bad_timeout(
        self, limiter: LimiterBase, timeout: float
    ) -> None:
        with pytest.raises(ValueError, match="timeout"):
            limiter.acquire(timeout=timeout)
