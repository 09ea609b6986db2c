"""A token bucket with continuous refill and first-come, first-served waiters."""

from __future__ import annotations

import functools

from syncq._checks import check_positive
from syncq.clock import Clock
from syncq.limiters._rate import RateSpec, parse_rate
from syncq.limiters._two_phase import TwoPhaseLimiter, Undo
from syncq.limiters.base import Reservation

__all__ = ["TokenBucket"]


class TokenBucket(TwoPhaseLimiter):
    """A limiter that allows bursts up to `capacity` and refills at `rate`.

    The bucket starts full and refills continuously:
    ``tokens = min(capacity, tokens + elapsed * rate)``, so over any interval of
    length T it grants at most ``capacity + rate * T`` tokens. The bound holds
    for the times at which `try_acquire` succeeds and at which reservations fall
    due. A caller that wakes late from its sleep proceeds later than that.

    `reserve` and `acquire` may take more tokens than the bucket has, so the
    count goes negative. That debt is what orders waiters: each one's
    reservation is due when the tokens it took have been refilled, after every
    earlier reservation. `try_acquire` cannot succeed while there is a debt,
    so it never overtakes a waiter.

    An `AllOf` that contains the bucket may take tokens at a later time than
    the bucket alone would, because another limit makes it wait. The bucket
    counts that grant at the later time. Until then, other callers may take
    tokens that the grant leaves, as long as the grant still finds its
    tokens when it falls due.

    Args:
        rate: Tokens per second as a number, or a string such as ``"5/s"``,
            ``"100/min"``, ``"60/h"`` or ``"100/15min"``.
        capacity: The maximum number of tokens the bucket holds, which is also
            the largest burst and the largest request. By default, the count of
            a rate string (60 for ``"60/h"``), or the rate of a number, but at
            least 1.0 either way.
        clock: The clock to read and sleep on. By default, the system clock.

    Raises:
        TypeError: `rate`, `capacity` or `clock` has the wrong type.
        ValueError: `rate` or `capacity` is zero, negative, NaN or infinite, or
            `rate` is a string of an unknown form.
    """

    __slots__ = ("_capacity", "_last", "_rate", "_tokens")

    def __init__(
        self,
        rate: RateSpec,
        capacity: float | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(clock)
        parsed = parse_rate(rate)
        if capacity is None:
            written = parsed.per_second if parsed.limit is None else parsed.limit
            capacity = max(1.0, written)
        self._rate = parsed.per_second
        self._capacity = check_positive("capacity", capacity)

        # Tokens at time _last, guarded by _lock. Negative while reservations
        # wait for refill. _last is later than now after an AllOf took tokens
        # at a later time, and the tokens before it are then
        # ``_tokens - (_last - t) * rate``.
        self._tokens = self._capacity
        self._last = self._monotonic()

    @property
    def rate(self) -> float:
        """The refill rate in tokens per second."""
        return self._rate

    @property
    def capacity(self) -> float:
        """The maximum number of tokens the bucket holds."""
        return self._capacity

    @property
    def tokens(self) -> float:
        """The tokens available now, negative while reservations wait.

        The value is a snapshot that other threads may change at once.
        """
        with self._lock:
            tokens = self._tokens + (self._monotonic() - self._last) * self._rate
        return tokens if tokens < self._capacity else self._capacity

    def try_acquire(self, n: float = 1) -> bool:
        """Take `n` tokens if the bucket has them now (see `Limiter`)."""
        # An int that fits needs no further checks, and the default n=1 is one.
        if type(n) is not int or n <= 0 or n > self._capacity:
            n = self._check_n(n)
        # NOTE: contended by several threads, this lock makes the call about 3x
        # slower than a bucket without one, but such a bucket can grant more
        # than its capacity (see docs/benchmarks.md, "Exactness").
        with self._lock:
            now = self._monotonic()
            tokens = self._tokens + (now - self._last) * self._rate
            # NOTE: a conditional expression, not min(), caps the tokens here:
            # on CPython 3.11, min() of two floats costs about 80 ns against
            # about 10 ns (timeit, one machine), and a whole call about 350 ns.
            tokens = tokens if tokens < self._capacity else self._capacity
            if tokens >= n:
                self._tokens = tokens - n
                self._last = now
                return True
            # A rejected request leaves the state as it was, which lets the
            # cancel of a grant made for a later time tell whether anything
            # was granted since (see _undo_take).
            return False

    def retry_after(self, n: float = 1) -> float:
        """Return the seconds until the bucket has `n` tokens (see `Limiter`).

        While reservations wait, this includes the time to repay their debt.
        """
        n = self._check_n(n)
        missing = n - self.tokens
        return missing / self._rate if missing > 0 else 0.0

    def reserve(
        self, n: float = 1, *, timeout: float | None = None
    ) -> Reservation | None:
        """Take `n` tokens now, going into debt if needed (see `Limiter`).

        Cancelling the reservation before it is due returns its tokens only if
        no reservation was made after it. Otherwise the tokens are forfeited,
        because later reservations keep their ready times, and tokens returned
        from the middle of the queue would let grants bunch up beyond the rate.
        """
        return self._reserve_earliest(n, timeout)

    def _largest_n(self) -> float:
        return self._capacity

    def _earliest(self, n: float, now: float, not_before: float) -> float:
        start = not_before if not_before > now else now
        tokens = self._tokens + (start - self._last) * self._rate
        if tokens >= n:
            return start
        return start + (n - tokens) / self._rate

    def _take_at(self, n: float, at: float, now: float) -> Undo:
        previous = (self._tokens, self._last)
        tokens = self._tokens + (now - self._last) * self._rate
        tokens = tokens if tokens < self._capacity else self._capacity
        if at > now and tokens + (at - now) * self._rate > self._capacity:
            # The bucket fills up before `at`, so the grant starts from a full
            # bucket then. Counting it from now instead would spend tokens
            # that the refill until `at` would have replaced anyway.
            self._tokens = self._capacity - n
            self._last = at
        else:
            self._tokens = tokens - n
            self._last = now
        self._serial += 1
        states = (previous, (self._tokens, self._last))
        return functools.partial(self._undo_take, self._serial, n, at, states)

    def _take_now(self, n: float, now: float) -> None:
        tokens = self._tokens + (now - self._last) * self._rate
        tokens = tokens if tokens < self._capacity else self._capacity
        self._tokens = tokens - n
        self._last = now

    def _undo_take(
        self,
        serial: int,
        n: float,
        ready_at: float,
        states: tuple[tuple[float, float], tuple[float, float]],
        now: float,
    ) -> None:
        """Undo a grant, given (_tokens, _last) before and after it in `states`."""
        if serial != self._serial or now >= ready_at:
            return
        previous, after = states
        if (self._tokens, self._last) == after:
            # Nothing was granted since, so the state from before is exact.
            self._tokens, self._last = previous
        else:
            # try_acquire granted tokens in the meantime, counted after this
            # grant's. Adding `n` back now leaves the bucket no fuller than
            # if this grant had never been made, so the bound still holds.
            tokens = self._tokens + (now - self._last) * self._rate + n
            self._tokens = tokens if tokens < self._capacity else self._capacity
            self._last = now
        # Move past this number, so a second cancel of the same reservation
        # finds no match and returns nothing.
        self._serial += 1

    def _check_n(self, n: object) -> float:
        tokens = check_positive("n", n)
        if tokens > self._capacity:
            raise ValueError(
                f"n={n!r} is larger than the bucket's capacity={self._capacity!r}, "
                "so it can never be granted"
            )
        return tokens

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self._rate!r}, capacity={self._capacity!r})"
